// The desktop app end to end, as a person uses it: the real binary under
// Xvfb, driven through tauri-driver and WebKitWebDriver, against a catalog
// served on loopback. Screenshots of every screen go to target/screenshots.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { intersects, serveCatalog, tiles } from "./catalog.mjs";
import { closeApp, killApp, openApp, shot, startDriver, verify } from "./driver.mjs";

const LONG = 90000;
let catalog;

before(async () => {
  catalog = await serveCatalog();
});

after(async () => {
  await catalog?.close();
});

const $ = (browser, id) => browser.$(`[data-testid="${id}"]`);

async function openCollection(browser) {
  await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
  await (await $(browser, "source-address")).setValue(catalog.url);
  await (await $(browser, "source-open")).click();
  const collection = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
  await collection.waitForDisplayed({ timeout: LONG });
  await collection.click();
  await browser.waitUntil(async () => (await browser.$$('[data-testid="item-row"]').length) === tiles().length, {
    timeout: LONG,
    timeoutMsg: "the collection's items did not show",
  });
}

async function jobState(browser) {
  const job = await $(browser, "job");
  return job.getAttribute("data-state");
}

async function progress(browser) {
  return Number(await (await $(browser, "progress")).getAttribute("aria-valuenow"));
}

test("a person mirrors an area of a collection, pauses, resumes, and gets a verified copy", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  let expected = [];
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "1-catalogs");
    await openCollection(browser);
    await shot(browser, "2-collection");
    // Sorted by id at a click on its header.
    await (await $(browser, "sort-id")).click();
    const firstIds = await browser.execute(() =>
      [...document.querySelectorAll('[data-testid="item-row"]')].slice(0, 3).map((row) => row.firstElementChild.textContent),
    );
    assert.deepEqual(firstIds, ["tile-0-0", "tile-0-1", "tile-0-2"]);
    // An item's page: its assets, with sizes.
    await (await browser.$$('[data-testid="item-row"]'))[0].click();
    const page = await $(browser, "item-page");
    await page.waitForDisplayed({ timeout: LONG });
    assert.match(await page.getText(), /data\s*application\/octet-stream\s*data\s*3\.1 MB/);
    await page.scrollIntoView();
    await shot(browser, "3-item");
    await (await page.$("button=Close")).click();

    // Draw an area over the middle of the map.
    await (await $(browser, "draw-area")).click();
    const map = await $(browser, "map");
    const size = await map.getSize();
    await browser
      .action("pointer")
      .move({ origin: map, x: Math.round(-size.width * 0.2), y: Math.round(-size.height * 0.25) })
      .down()
      .move({ origin: map, x: Math.round(size.width * 0.05), y: Math.round(size.height * 0.25), duration: 300 })
      .up()
      .perform();
    const bboxText = await (await $(browser, "bbox")).getValue();
    assert.match(bboxText, /^-?[\d.]+,-?[\d.]+,-?[\d.]+,-?[\d.]+$/, "drawing gave no area");
    const drawn = bboxText.split(",").map(Number);
    expected = tiles().filter((t) => intersects(t.bbox, drawn));
    assert.ok(expected.length > 0 && expected.length < tiles().length, `the area ${bboxText} should hold some tiles, not all`);

    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: LONG });
    const text = await estimate.getText();
    assert.match(text, new RegExp(`${expected.length} items?, ${expected.length} assets?`), text);
    await shot(browser, "4-estimate");

    await (await $(browser, "start")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await progress(browser)) > 0, { timeout: LONG, timeoutMsg: "the bar did not move" });
    await shot(browser, "5-job-running");

    await (await $(browser, "pause")).click();
    await browser.waitUntil(async () => (await jobState(browser)) === "paused", { timeout: LONG, timeoutMsg: "the job did not pause" });
    const pausedAt = await progress(browser);
    await shot(browser, "6-job-paused");

    await (await $(browser, "resume")).click();
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not finish",
    });
    assert.ok((await progress(browser)) >= pausedAt);
    assert.equal(await progress(browser), 100);
    await shot(browser, "7-job-finished");

    // A mirrored file is lost: "Check the copy" says which, "Repair" brings
    // it back.
    const lost = join(dest, "europe-tiles", expected[0].id, "data.bin");
    assert.ok(existsSync(lost), lost);
    rmSync(lost);
    await (await $(browser, "check-copy")).click();
    const check = await $(browser, "check");
    await check.waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await check.getAttribute("data-problems")) === "1", {
      timeout: LONG,
      timeoutMsg: "the check did not find the lost file",
    });
    assert.match(await check.getText(), /Missing/);
    await shot(browser, "10-check-damaged");
    await (await $(browser, "repair")).click();
    await browser.waitUntil(async () => (await $(browser, "check-headline")).getText().then((t) => /whole.*put right/.test(t)), {
      timeout: LONG,
      timeoutMsg: "the repair did not make the copy whole",
    });
    assert.ok(existsSync(lost), "the repair did not bring the file back");
    await shot(browser, "11-check-repaired");

    // Back on the map, the mirrored tiles are green.
    await (await $(browser, "tab-catalogs")).click();
    const again = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
    await again.waitForDisplayed({ timeout: LONG });
    await again.click();
    await browser.waitUntil(async () => (await browser.$$('path[stroke="#2e7d4f"]').length) === expected.length, {
      timeout: LONG,
      timeoutMsg: "the mirrored tiles are not shown as mirrored on the map",
    });
    await shot(browser, "8-map-mirrored");
  } finally {
    await closeApp(browser, driver);
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, expected.length);
  // Exactly the tiles in the drawn area were mirrored.
  const folders = readdirSync(join(dest, "europe-tiles"), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  assert.deepEqual(folders, expected.map((t) => t.id).sort());
});

test("a job continues after the app is killed and started again", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const driver = await startDriver({ CAIRN_HOME: home });
  let browser = await openApp(driver.port);
  try {
    await openCollection(browser);
    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "start")).click();
    await browser.waitUntil(async () => (await progress(browser)) > 10, { timeout: LONG, timeoutMsg: "the bar did not move" });
    const before = await progress(browser);
    assert.ok(before < 100, "the job ended before the restart; the server should be slower");

    // A crash: the app is killed mid-job, then started again.
    await browser.deleteSession().catch(() => {});
    killApp();
    browser = await openApp(driver.port);
    await (await $(browser, "tab-jobs")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "tab-jobs")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await jobState(browser)) === "running", { timeout: LONG, timeoutMsg: "the job did not continue by itself" });
    await shot(browser, "9-job-after-restart");
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not finish after the restart",
    });
  } finally {
    await closeApp(browser, driver);
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, tiles().length);
});
