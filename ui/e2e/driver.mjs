// Starts the real app under tauri-driver (which drives WebKitWebDriver) and
// opens a WebDriver session on it. Needs a display: run under xvfb-run.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { remote } from "webdriverio";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, "../..");
export const APP = process.env.CAIRN_APP ?? join(REPO, "target/debug/cairn-app");
export const CLI = process.env.CAIRN_CLI ?? join(REPO, "target/debug/cairn");
export const SHOTS = process.env.CAIRN_SCREENSHOTS ?? join(REPO, "target/screenshots");

async function portOpen(port) {
  return new Promise((done) => {
    const socket = createConnection({ host: "127.0.0.1", port }, () => {
      socket.end();
      done(true);
    });
    socket.on("error", () => done(false));
  });
}

/** Starts tauri-driver on a free port with `env` (CAIRN_HOME...); stops with the returned function. */
export async function startDriver(env) {
  const port = 4400 + Math.floor(Math.random() * 500);
  const driver = spawn("tauri-driver", ["--port", String(port), "--native-port", String(port + 1000)], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; i < 100 && !(await portOpen(port)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop: () => driver.kill() };
}

/** A WebDriver session on a fresh start of the app. */
export async function openApp(port) {
  const browser = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "warn",
    connectionRetryTimeout: 60000,
    capabilities: {
      browserName: "wry",
      "tauri:options": { application: APP },
      "wdio:enforceWebDriverClassic": true,
    },
  });
  await browser.setWindowSize(1280, 860).catch(() => {});
  return browser;
}

/**
 * Saves a screenshot once the page has painted (two animation frames).
 *
 * WebKitGTK takes a WebDriver screenshot after the page's next paint. Without
 * a GPU the app paints only what changes (src-tauri/src/rendering.rs), so a
 * page at rest would never paint again and the screenshot would wait
 * forever: while it is taken, one pixel in the corner flickers between 1% and
 * 2% grey, which no one can see.
 */
export async function shot(browser, name) {
  mkdirSync(SHOTS, { recursive: true });
  // Let bars finish their short transitions.
  await browser.pause(400);
  await browser.executeAsync((done) => requestAnimationFrame(() => requestAnimationFrame(() => done())));
  await browser.execute(() => {
    const dot = document.createElement("div");
    dot.id = "screenshot-tick";
    dot.style.cssText =
      "position:fixed;right:0;bottom:0;width:1px;height:1px;background:#000;opacity:0.01;pointer-events:none;z-index:2147483647";
    document.body.append(dot);
    const tick = () => {
      if (!dot.isConnected) return;
      dot.style.opacity = dot.style.opacity === "0.01" ? "0.02" : "0.01";
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
  try {
    await browser.saveScreenshot(join(SHOTS, `${name}.png`));
  } finally {
    await browser.execute(() => document.getElementById("screenshot-tick")?.remove());
  }
}

/** Ends the session, kills the app and stops tauri-driver. */
export async function closeApp(browser, driver) {
  await browser.deleteSession().catch(() => {});
  killApp();
  driver.stop();
}

/** Kills every running copy of the app at once, as a crash would. */
export function killApp() {
  try {
    execFileSync("pkill", ["-KILL", "-f", APP]);
  } catch {
    // Nothing to kill.
  }
}

/** Runs `cairn verify DEST --json`; returns { code, summary }. */
export function verify(dest, env) {
  try {
    const out = execFileSync(CLI, ["verify", dest, "--json"], { env: { ...process.env, ...env }, encoding: "utf8" });
    return { code: 0, summary: JSON.parse(out.trim().split("\n").at(-1)) };
  } catch (error) {
    return { code: error.status, summary: null, output: `${error.stdout}${error.stderr}` };
  }
}
