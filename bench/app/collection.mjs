// Opening and estimating a static collection of 20,000 item files in the real
// app (tauri-driver, WebKitWebDriver, Xvfb): from pressing Open to every item
// counted in the table ("20,000 items"), and from pressing Estimate to the
// estimate shown. The collection is served by a loopback nginx from files on
// disk (bench/app/run.sh): one file per item, three assets each, no
// file:size, as big static catalogs are.
//
//   CAIRN_BENCH_COLLECTION=http://127.0.0.1:PORT/c0/collection.json node collection.mjs [RUNS]
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeApp, openApp, startDriver } from "../../ui/e2e/driver.mjs";

const url = process.env.CAIRN_BENCH_COLLECTION;
const runs = Number(process.argv[2] ?? 3);
if (!url) throw new Error("set CAIRN_BENCH_COLLECTION to the collection's address");

async function once() {
  const home = mkdtempSync(join(tmpdir(), "cairn-bench-"));
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    const $ = (id) => browser.$(`[data-testid="${id}"]`);
    await (await $("source-address")).waitForDisplayed({ timeout: 60000 });
    await (await $("source-address")).setValue(url);
    const opened = Date.now();
    await (await $("source-open")).click();
    await browser.waitUntil(async () => (await browser.$("strong=20,000 items").isExisting()), {
      timeout: 600000,
      interval: 50,
      timeoutMsg: "the 20,000 items did not all show",
    });
    const open = (Date.now() - opened) / 1000;
    await (await $("destination")).setValue(join(home, "mirror"));
    const asked = Date.now();
    await (await $("estimate")).click();
    await (await $("estimate-result")).waitForDisplayed({ timeout: 600000, interval: 50 });
    const estimate = (Date.now() - asked) / 1000;
    const said = await (await $("estimate-result")).getText();
    if (!/20,000 items/.test(said)) throw new Error(`the estimate says: ${said}`);
    return { open, estimate };
  } finally {
    await closeApp(browser, driver);
  }
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = [];
for (let i = 0; i < runs; i++) results.push(await once());
console.log(`\nA static collection of 20,000 item files (three assets each, no file:size), nginx on loopback, real app under Xvfb, ${runs} runs`);
console.log(`  open to all 20,000 items counted (s): ${results.map((r) => r.open.toFixed(1)).join(" ")}  median ${median(results.map((r) => r.open)).toFixed(1)}`);
console.log(`  estimate (s):                         ${results.map((r) => r.estimate.toFixed(1)).join(" ")}  median ${median(results.map((r) => r.estimate)).toFixed(1)}`);
