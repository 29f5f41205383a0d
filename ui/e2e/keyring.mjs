// A real Secret Service for the end-to-end tests: a private session bus
// (dbus-daemon) and GNOME Keyring's daemon, its login keyring made and
// unlocked with a test password, in a temporary home.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Starts the bus and the keyring; returns { env, close }. */
export async function startKeyring() {
  const home = mkdtempSync(join(tmpdir(), "cairn-keyring-"));
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], { stdio: ["ignore", "pipe", "ignore"] });
  const address = await new Promise((resolve, reject) => {
    let text = "";
    bus.stdout.on("data", (chunk) => {
      text += chunk;
      if (text.includes("\n")) resolve(text.split("\n")[0].trim());
    });
    bus.on("error", (e) => reject(new Error(`could not start dbus-daemon (${e.message}); run the README's test command, which installs it`)));
  });
  const env = { DBUS_SESSION_BUS_ADDRESS: address };
  const daemon = spawn("gnome-keyring-daemon", ["--foreground", "--unlock", "--components=secrets"], {
    env: { ...process.env, ...env, HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_RUNTIME_DIR: home },
    stdio: ["pipe", "ignore", "ignore"],
  });
  // The login keyring's password, then the end of input.
  daemon.stdin.end("cairn-e2e-keyring");
  for (let i = 0; ; i++) {
    const asked = spawnSync(
      "dbus-send",
      ["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"],
      { env: { ...process.env, ...env }, encoding: "utf8" },
    );
    if (asked.stdout?.includes("boolean true")) break;
    if (i > 300) throw new Error("GNOME Keyring did not start on the test bus in 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    env,
    close() {
      daemon.kill("SIGKILL");
      bus.kill("SIGKILL");
      rmSync(home, { recursive: true, force: true });
    },
  };
}
