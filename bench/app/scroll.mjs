// Scroll benchmark of the desktop app's items table: a loopback item
// collection of 100,000 items is opened in the real app (tauri-driver,
// WebKitWebDriver, Xvfb), all of them are loaded into the table, and the
// table is scrolled from the first row to the last in 300 animation frames.
// Prints how long the load took and the frame times while scrolling.
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
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

const home = mkdtempSync(join(tmpdir(), "cairn-bench-"));
const driver = await startDriver({ CAIRN_HOME: home });
const browser = await openApp(driver.port);
try {
  const $ = (id) => browser.$(`[data-testid="${id}"]`);
  await (await $("source-address")).waitForDisplayed({ timeout: 60000 });
  await (await $("source-address")).setValue(url);
  await (await $("source-open")).click();
  const more = await browser.$("button=Load up to 100,000");
  await more.waitForDisplayed({ timeout: 120000 });
  const started = Date.now();
  await more.click();
  await browser.waitUntil(async () => (await browser.$("strong*=100,000 items").isExisting()), {
    timeout: 600000,
    interval: 250,
  });
  const loaded = (Date.now() - started) / 1000;
  await browser.setTimeout({ script: 600000 });
  // Scrolls the table from the first row to the last in 300 frames (about
  // 330 rows a frame, every row replaced each time): frame times in ms.
  const scroll = () =>
    browser.executeAsync((done) => {
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
  const report = (what, frames) => {
    const sorted = [...frames.times].sort((a, b) => a - b);
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    console.log(
      `${what}: median ${at(0.5).toFixed(0)} ms, 95th percentile ${at(0.95).toFixed(0)} ms, worst ${sorted.at(-1).toFixed(0)} ms per frame (${frames.rows} rows in the page)`,
    );
  };
  console.log(`\nItems table, ${COUNT.toLocaleString("en")} items (real app under Xvfb, software rendering)`);
  console.log(`loading them into the table and onto the map: ${loaded.toFixed(1)} s`);
  report("scrolling first to last row, map showing all items", await scroll());
  await browser.execute(() => {
    document.querySelector('[data-testid="map"]').style.display = "none";
  });
  report("the same with the map hidden", await scroll());
} finally {
  await closeApp(browser, driver);
  server.close();
}
