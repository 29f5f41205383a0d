// Scroll benchmark of the desktop app's items table: a loopback item
// collection of 100,000 items is opened in the real app (tauri-driver,
// WebKitWebDriver, Xvfb), all of them are loaded into the table and onto the
// map, the table is scrolled from the first row to the last in 300 animation
// frames, and sorted by item id. Prints how long the load took, the frame
// times while scrolling and the time to sort.
//
// On a machine without a GPU render node the app turns off WebKitGTK's
// DMA-BUF renderer (src-tauri/src/rendering.rs); the run is then repeated
// with it on (WEBKIT_DISABLE_DMABUF_RENDERER=0) to show what that choice is
// worth.
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeApp, openApp, startDriver } from "../../ui/e2e/driver.mjs";

const COUNT = 100_000;

function collection(count) {
  const features = [];
  for (let i = 0; i < count; i++) {
    const x = -180 + (i % 3600) / 10, y = -60 + Math.floor(i / 3600) / 2;
    features.push({
      type: "Feature", stac_version: "1.1.0", id: `item-${String(i).padStart(6, "0")}`, collection: "many",
      bbox: [x, y, x, y], geometry: { type: "Point", coordinates: [x, y] },
      properties: { datetime: "2024-01-01T00:00:00Z" }, links: [],
      assets: { data: { href: `https://example.org/${i}.tif`, "file:size": 1000 + i } },
    });
  }
  return JSON.stringify({ type: "FeatureCollection", features });
}

const body = collection(COUNT);
const server = createServer((req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
});
await new Promise((done) => server.listen(0, "127.0.0.1", done));
const url = `http://127.0.0.1:${server.address().port}/items.json`;

// Scrolls the table from the first row to the last in 300 frames (about 330
// rows a frame, every row replaced each time): frame times in ms.
function scroll(browser) {
  return browser.executeAsync((done) => {
    const table = document.querySelector('[data-testid="items-table"]');
    table.scrollTop = 0;
    const steps = 300;
    const times = [];
    let i = 0;
    let last = performance.now();
    const step = (now) => {
      times.push(now - last);
      last = now;
      table.scrollTop = (i / steps) * (table.scrollHeight - table.clientHeight);
      i += 1;
      if (i <= steps) requestAnimationFrame(step);
      else done({ times: times.slice(2), rows: document.querySelectorAll('[data-testid="item-row"]').length });
    };
    requestAnimationFrame(step);
  });
}

// Sorts the table by item id, descending (two clicks): ms from the second
// click to the second frame after it, and the first row then.
function sortById(browser) {
  return browser.executeAsync((done) => {
    const header = document.querySelector('[data-testid="sort-id"]');
    header.click();
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        const start = performance.now();
        header.click();
        requestAnimationFrame(() =>
          requestAnimationFrame(() =>
            done({
              ms: performance.now() - start,
              first: document.querySelector('[data-testid="item-row"] span').textContent,
            }),
          ),
        );
      }),
    );
  });
}

function report(what, frames) {
  const sorted = [...frames.times].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  console.log(
    `  ${what}: median ${at(0.5).toFixed(0)} ms, 95th percentile ${at(0.95).toFixed(0)} ms, worst ${sorted.at(-1).toFixed(0)} ms per frame (${frames.rows} rows in the page)`,
  );
}

async function measure(env) {
  const home = mkdtempSync(join(tmpdir(), "cairn-bench-"));
  const driver = await startDriver({ CAIRN_HOME: home, ...env });
  const browser = await openApp(driver.port);
  try {
    const $ = (id) => browser.$(`[data-testid="${id}"]`);
    await (await $("source-address")).waitForDisplayed({ timeout: 60000 });
    await (await $("source-address")).setValue(url);
    // An item collection is one document: all its items are read at once.
    const started = Date.now();
    await (await $("source-open")).click();
    await browser.waitUntil(async () => (await browser.$("strong*=100,000 items").isExisting()), {
      timeout: 600000,
      interval: 250,
    });
    console.log(`  from Open to all of them in the table and on the map: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await browser.setTimeout({ script: 240000 });
    // Let the map finish its first drawing before frames are counted.
    await browser.pause(2000);
    report("scrolling first to last row, map showing all items", await scroll(browser));
    const sorted = await sortById(browser);
    console.log(`  sorting by item id, descending: ${sorted.ms.toFixed(0)} ms to the frame showing it (first row ${sorted.first})`);
    report("scrolling the sorted table", await scroll(browser));
    await browser.execute(() => {
      document.querySelector('[data-testid="map"]').style.display = "none";
    });
    report("scrolling with the map hidden", await scroll(browser));
  } finally {
    await closeApp(browser, driver);
  }
}

const gpu = existsSync("/dev/dri") && readdirSync("/dev/dri").some((name) => name.startsWith("renderD"));
const chosen = process.env.WEBKIT_DISABLE_DMABUF_RENDERER;
console.log(`\nItems table, ${COUNT.toLocaleString("en")} items (real app under Xvfb)`);
try {
  if (gpu || chosen != null) {
    console.log(`WebKitGTK's own choice of renderer (${gpu ? "a GPU render node is present" : `WEBKIT_DISABLE_DMABUF_RENDERER=${chosen}`}):`);
    await measure({});
  } else {
    console.log("no GPU render node: the app paints on the CPU, without WebKit's DMA-BUF renderer (its default here):");
    await measure({});
    console.log("the same with WebKit's DMA-BUF renderer on (WEBKIT_DISABLE_DMABUF_RENDERER=0), compositing in software OpenGL:");
    // A comparison only: a run that cannot finish is said, and the
    // benchmark goes on.
    await measure({ WEBKIT_DISABLE_DMABUF_RENDERER: "0" }).catch((error) =>
      console.log(`  did not finish: ${String(error.message ?? error).split("\n")[0]}`),
    );
  }
} finally {
  server.close();
}
