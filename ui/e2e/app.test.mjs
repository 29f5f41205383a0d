// The desktop app end to end, as a person uses it: the real binary under
// Xvfb, driven through tauri-driver and WebKitWebDriver, against a catalog
// served on loopback. Screenshots of every screen go to target/screenshots.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ACCOUNT, KEY, startAzurite } from "./azurite.mjs";
import { TILE_BYTES, intersects, serveCatalog, tiles } from "./catalog.mjs";
import { startKeyring } from "./keyring.mjs";
import { serveMany } from "./many.mjs";
import { APP, CLI, closeApp, killApp, openApp, shot, startDriver, verify } from "./driver.mjs";
import { CONTROL, SPACE, accessible, activate, press, tabTo, type } from "./access.mjs";

const LONG = 90000;
let catalog;

before(async () => {
  catalog = await serveCatalog();
});

after(async () => {
  await catalog?.close();
});

const $ = (browser, id) => browser.$(`[data-testid="${id}"]`);

async function openCollection(browser, url = catalog.url) {
  await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
  await (await $(browser, "source-address")).setValue(url);
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

/** Presses Start on the estimate shown and waits for the job to finish. */
async function startAndFinish(browser) {
  await (await $(browser, "start")).click();
  await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
  await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
    timeout: LONG,
    interval: 250,
    timeoutMsg: "the job did not finish",
  });
}

async function progress(browser) {
  return Number(await (await $(browser, "progress")).getAttribute("aria-valuenow"));
}

test("a person mirrors an area of a collection, pauses, resumes, and gets a verified copy", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  // A file manager that writes down what it was asked to open.
  const bin = join(home, "bin");
  const opened = join(home, "opened.txt");
  mkdirSync(bin);
  writeFileSync(join(bin, "xdg-open"), `#!/bin/sh\nprintf '%s\\n' "$@" >> '${opened}'\n`, { mode: 0o755 });
  const driver = await startDriver({ CAIRN_HOME: home, PATH: `${bin}:${process.env.PATH}` });
  const browser = await openApp(driver.port);
  let expected = [];
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    // The first time, a short guide; put away, it stays away.
    await browser.execute(() => localStorage.clear());
    await browser.refresh();
    await (await $(browser, "first-run-guide")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "1-catalogs");
    await (await $(browser, "guide-done")).click();
    await browser.refresh();
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    assert.equal(await (await $(browser, "first-run-guide")).isExisting(), false);
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
    // Its properties, and its links, which open in the browser.
    assert.match(await (await $(browser, "item-properties")).getText(), /platform\s*sentinel-2a\s*eo:cloud_cover\s*\d+/);
    // Once the app's own smooth scroll has settled, the whole page in view.
    await browser.pause(800);
    await browser.execute(() => document.querySelector('[data-testid="item-page"]').scrollIntoView({ block: "end" }));
    await shot(browser, "3-item");
    await (await page.$("button=CC BY 4.0")).click();
    await browser.waitUntil(async () => existsSync(opened) && readFileSync(opened, "utf8").includes("https://creativecommons.org/licenses/by/4.0/"), {
      timeout: LONG,
      timeoutMsg: "the license link did not open in the browser",
    });
    rmSync(opened);
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
    // The table narrows to the area before anything is estimated.
    await browser.waitUntil(async () => (await browser.$$('[data-testid="item-row"]').length) === expected.length, {
      timeout: LONG,
      timeoutMsg: "the table did not narrow to the drawn area",
    });
    assert.equal(await (await $(browser, "items-count")).getText(), `${expected.length} of ${tiles().length} items in the area and dates chosen`);

    await (await $(browser, "destination")).setValue(dest);
    // The tiles have a copy in a bucket too: the web copy, which needs no
    // sign-in, is read unless the person chooses otherwise.
    assert.match(await (await $(browser, "reading")).getText(), /Where no sign-in is needed[\s\S]*Its “s3” copy[\s\S]*Requester pays/);
    assert.equal(await (await $(browser, "read-auto")).isSelected(), true);
    await (await $(browser, "estimate")).click();
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: LONG });
    const text = await estimate.getText();
    assert.match(text, new RegExp(`${expected.length} items?, ${expected.length} assets?`), text);
    await shot(browser, "4-estimate");
    // An estimate is not a job: the list stays empty until Start. Coming
    // back finds the estimate and the choices as they were.
    await (await $(browser, "tab-jobs")).click();
    await (await $(browser, "no-jobs")).waitForDisplayed({ timeout: LONG });
    assert.equal(await (await $(browser, "job")).isExisting(), false, "an estimate made a job");
    await (await $(browser, "tab-catalogs")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    assert.equal(await (await $(browser, "bbox")).getValue(), bboxText);

    await (await $(browser, "start")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await progress(browser)) > 0, { timeout: LONG, timeoutMsg: "the bar did not move" });
    await shot(browser, "5-job-running");

    // A second launch while the job copies: it shows this window and ends,
    // and no second copier starts on the job.
    const second = spawnSync(APP, [], { env: { ...process.env, CAIRN_HOME: home }, encoding: "utf8", timeout: 30000 });
    assert.equal(second.status, 0, `${second.stdout}${second.stderr}`);
    assert.match(`${second.stdout}${second.stderr}`, /already open/);

    await (await $(browser, "pause")).click();
    await browser.waitUntil(async () => (await jobState(browser)) === "paused", { timeout: LONG, timeoutMsg: "the job did not pause" });
    const pausedAt = await progress(browser);
    // What the unfinished downloads hold is kept, and said.
    const kept = await $(browser, "kept");
    await kept.waitForDisplayed({ timeout: LONG });
    assert.match(await kept.getText(), /[\d.]+ (B|KB|kB|MB) of unfinished downloads are kept: Resume continues them/);
    await shot(browser, "6-job-paused");

    await (await $(browser, "resume")).click();
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not finish",
    });
    assert.ok((await progress(browser)) >= pausedAt);
    assert.equal(await progress(browser), 100);
    // One copier: what the server sent is the tiles once (and what a pause
    // cut off in flight), never twice.
    const tileBytes = expected.length * TILE_BYTES;
    assert.ok(catalog.served.bytes < tileBytes * 1.2, `${catalog.served.bytes} bytes sent for ${tileBytes} bytes of tiles`);
    // The finished card says the files were checked, and where the catalog is.
    const ended = await (await $(browser, "ended")).getText();
    assert.match(ended, new RegExp(`All ${expected.length} files? copied and checked`), ended);
    assert.equal(await (await $(browser, "catalog-at")).getText(), join(dest, "catalog.json"));
    await shot(browser, "7-job-finished");

    // "Open the folder" asks the system's file manager for the mirror folder.
    await (await $(browser, "open-folder")).click();
    await browser.waitUntil(async () => existsSync(opened) && readFileSync(opened, "utf8").trim() === dest, {
      timeout: LONG,
      timeoutMsg: `the file manager was not asked to open ${dest}`,
    });

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

    // Sync: the source is read again; nothing in it changed, so nothing is
    // fetched, and the job's history says so.
    const servedBefore = catalog.served.bytes;
    await (await $(browser, "sync")).click();
    await (await $(browser, "show-history")).click();
    const history = await $(browser, "history");
    await browser.waitUntil(async () => /Sync: nothing new or changed in the source; 0 B fetched\./.test(await history.getText()), {
      timeout: LONG,
      interval: 300,
      timeoutMsg: "the history does not show the finished sync",
    });
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", { timeout: LONG, timeoutMsg: "the job did not end as finished" });
    const runs = await history.getText();
    assert.match(runs, /First copy: \d+ new items?/, runs);
    assert.equal(catalog.served.bytes, servedBefore, "the sync fetched bytes again");
    // What a sync does with changes is the job's own choice, kept.
    assert.equal(await (await $(browser, "keep-versions")).isSelected(), true);
    const deletions = await $(browser, "mirror-deletions");
    assert.equal(await deletions.isSelected(), false);
    await deletions.click();
    await browser.waitUntil(async () => (await $(browser, "mirror-deletions")).isSelected(), {
      timeout: LONG,
      timeoutMsg: "the choice to follow deletions was not kept",
    });
    await (await $(browser, "mirror-deletions")).click();
    await browser.waitUntil(async () => !(await (await $(browser, "mirror-deletions")).isSelected()), {
      timeout: LONG,
      timeoutMsg: "the choice to keep removed items was not kept",
    });
    await shot(browser, "12-history");

    // While the app runs, a file deleted from the mirror is flagged on the
    // job's card within 2 s, and its item turns a colour of its own on the
    // map; "Repair" brings it back and the flag goes.
    const gone = join(dest, "europe-tiles", expected[expected.length - 1].id, "data.bin");
    rmSync(gone);
    const deletedAt = Date.now();
    await browser.waitUntil(async () => (await $(browser, "watch-flags")).isExisting(), {
      timeout: 2000,
      interval: 100,
      timeoutMsg: "the deleted file was not flagged within 2 s",
    });
    const flaggedAfter = Date.now() - deletedAt;
    const flags = await (await $(browser, "watch-flags")).getText();
    assert.match(flags, /Gone\s+europe-tiles\/.+\/data\.bin/, flags);
    console.log(`flagged ${flaggedAfter} ms after the file was deleted`);
    await shot(browser, "13-flagged");
    await (await $(browser, "tab-catalogs")).click();
    // The place and the choices made before Start are as they were.
    await (await $(browser, "started")).waitForDisplayed({ timeout: LONG });
    assert.equal(await (await $(browser, "bbox")).getValue(), bboxText);
    assert.equal(await (await $(browser, "destination")).getValue(), dest);
    const tree = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
    await tree.waitForDisplayed({ timeout: LONG });
    await tree.click();
    await browser.waitUntil(async () => (await browser.$$('path[stroke="#7b3fa0"]').length) === 1, {
      timeout: LONG,
      timeoutMsg: "the damaged item is not shown in its own colour on the map",
    });
    await shot(browser, "14-map-damaged");
    await (await $(browser, "tab-jobs")).click();
    await (await $(browser, "repair-flagged")).click();
    await browser.waitUntil(async () => existsSync(gone) && !(await (await $(browser, "watch-flags")).isExisting()), {
      timeout: LONG,
      interval: 200,
      timeoutMsg: "the repair did not bring the flagged file back, or the flag stayed",
    });

    // A BagIt bag of the mirror, beside it: the Library of Congress's
    // bagit.py accepts it.
    await (await $(browser, "bag")).click();
    const place = await (await $(browser, "bag-place")).getValue();
    assert.match(place, /mirror-bag-\d{4}-\d{2}-\d{2}$/, place);
    await (await $(browser, "make-bag")).click();
    const made = await $(browser, "bag-result");
    await made.waitForDisplayed({ timeout: LONG });
    assert.match(await made.getText(), new RegExp(`The bag is at ${place}: \\d+ files`), await made.getText());
    await shot(browser, "15-bag");
    const python = join(import.meta.dirname, "..", "..", ".venv", "bin", "python");
    const validated = spawnSync(existsSync(python) ? python : "python3", ["-m", "bagit", "--validate", place], { encoding: "utf8" });
    assert.equal(validated.status, 0, `${validated.stdout}${validated.stderr}`);

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

    // Another asset filter to the same folder: what is there counts,
    // whichever job copied it.
    await (await $(browser, "destination")).setValue(dest);
    await (await browser.$('[data-testid="asset-group-key"] input')).click();
    await (await $(browser, "estimate")).click();
    const already = new RegExp(`${expected.length} assets? \\([^)]*\\) already mirrored`);
    await browser.waitUntil(async () => already.test(await (await $(browser, "estimate-result")).getText()), {
      timeout: LONG,
      timeoutMsg: "an estimate with another asset filter did not count what is already in the folder",
    });

    // The job can be taken off the list; its mirror stays.
    await (await $(browser, "tab-jobs")).click();
    await (await $(browser, "remove")).click();
    await (await $(browser, "remove-yes")).click();
    await browser.waitUntil(async () => !(await (await $(browser, "job")).isExisting()), {
      timeout: LONG,
      timeoutMsg: "the removed job is still listed",
    });
    assert.ok(existsSync(join(dest, "catalog.json")), "removing the job touched the mirror");
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

test("a job waits for a server that goes away, says so, and goes on by itself when it is back", async () => {
  const flaky = await serveCatalog();
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    await openCollection(browser, flaky.url);
    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "start")).click();
    await browser.waitUntil(async () => (await progress(browser)) > 5, { timeout: LONG, timeoutMsg: "the bar did not move" });
    await flaky.down();
    const waiting = await $(browser, "waiting");
    await waiting.waitForDisplayed({ timeout: LONG });
    assert.match(await waiting.getText(), /Waiting for http:\/\/127\.0\.0\.1:\d+: it cannot be reached/);
    assert.equal(await jobState(browser), "running");
    await shot(browser, "21-job-waiting-for-its-server");
    await flaky.up();
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not go on once its server was back",
    });
    assert.equal(await browser.$$('[data-testid="waiting"]').length, 0);
    assert.match(await (await $(browser, "ended")).getText(), /copied and checked/);
  } finally {
    await closeApp(browser, driver);
    await flaky.close();
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, tiles().length);
});

test("a catalog behind a token opens once signed in, and the connection test says what is wrong", async () => {
  const TOKEN = "e2e-token-4f1a";
  const guarded = await serveCatalog({ rate: 8 * 1024 * 1024, token: TOKEN });
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    const address = await $(browser, "source-address");
    await address.waitForDisplayed({ timeout: LONG });
    await address.setValue(guarded.url);
    await (await $(browser, "source-open")).click();
    const problem = await $(browser, "source-problem");
    await problem.waitForDisplayed({ timeout: LONG });
    assert.match(await problem.getText(), /refused access \(HTTP 401\)/);

    // Refused, the app opens the ways to sign in by itself.
    const tokenKind = await $(browser, "sign-in-token-kind");
    await tokenKind.waitForDisplayed({ timeout: LONG });
    await tokenKind.click();
    await (await $(browser, "sign-in-token")).setValue("not-the-token");
    await (await $(browser, "sign-in-test")).click();
    const result = await $(browser, "sign-in-result");
    await result.waitForDisplayed({ timeout: LONG });
    assert.match(await result.getText(), /The catalog refused the token \(HTTP 401\): check it/);
    await shot(browser, "sign-in-1-wrong-token");

    await (await $(browser, "sign-in-token")).setValue(TOKEN);
    await (await $(browser, "sign-in-test")).click();
    await browser.waitUntil(async () => /signing in works/.test(await (await $(browser, "sign-in-result")).getText()), {
      timeout: LONG,
      timeoutMsg: "the connection test did not pass with the right token",
    });
    await shot(browser, "sign-in-2-tested");

    // Opened with the token: the catalog, its items, an estimate and a copy.
    await (await $(browser, "source-open")).click();
    const collection = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
    await collection.waitForDisplayed({ timeout: LONG });
    await collection.click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="item-row"]').length) === tiles().length, {
      timeout: LONG,
      timeoutMsg: "the collection's items did not show",
    });
    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "start")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not finish",
    });
  } finally {
    await closeApp(browser, driver);
    await guarded.close();
  }
  // Every file was fetched signed in, and the token is nowhere on disk.
  assert.ok(guarded.served.signed >= tiles().length * 2, `${guarded.served.signed} signed requests`);
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  const written = spawnSync("grep", ["-r", "-l", TOKEN, home], { encoding: "utf8" });
  assert.equal(written.stdout, "", `the token was written to: ${written.stdout}`);
});

test("a copy into an Azure container: the connection test says a wrong key in words, the login is kept on this computer, and after a restart the copy goes up with it", async () => {
  const container = "e2e-mirror";
  const azurite = await startAzurite(container);
  const keyring = await startKeyring();
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = `az://${container}/tiles`;
  // Nothing in the app's environment names the container's credentials:
  // only what the person types, then what the keyring keeps.
  let driver = await startDriver({ CAIRN_HOME: home, ...keyring.env });
  let browser = await openApp(driver.port);
  try {
    await openCollection(browser);
    await (await $(browser, "destination")).setValue(dest);
    // No credentials anywhere: refused at Estimate, in words.
    await (await $(browser, "estimate")).click();
    const refused = await $(browser, "selection-problem");
    await refused.waitForDisplayed({ timeout: LONG });
    assert.match(await refused.getText(), /no credentials were found/);
    assert.doesNotMatch(await refused.getText(), /169\.254|Generic|Error performing/);
    const details = await $(browser, "bucket-sign-in");
    await details.waitForDisplayed({ timeout: LONG });
    await (await details.$("summary")).click();
    await (await $(browser, "bucket-key-id")).setValue(ACCOUNT);
    await (await $(browser, "bucket-secret")).setValue("bm90IHRoZSBrZXk=");
    await (await $(browser, "bucket-endpoint")).setValue(`${azurite.endpoint}/${ACCOUNT}`);
    await (await $(browser, "bucket-test")).click();
    const result = await $(browser, "bucket-result");
    await result.waitForDisplayed({ timeout: LONG });
    assert.match(await result.getText(), /refused access with these credentials/);
    await shot(browser, "bucket-1-wrong-key");

    await (await $(browser, "bucket-secret")).setValue(KEY);
    await (await $(browser, "bucket-test")).click();
    await browser.waitUntil(
      async () => /Cairn can list, write and delete under az:\/\/e2e-mirror\/tiles/.test(await (await $(browser, "bucket-result")).getText()),
      { timeout: LONG, timeoutMsg: "the connection test did not pass with the right key" },
    );
    await shot(browser, "bucket-2-tested");
    // Kept in the keyring, for later.
    await (await $(browser, "bucket-remember")).click();
    const kept = await $(browser, "bucket-kept");
    await kept.waitForDisplayed({ timeout: LONG });
    assert.match(await kept.getText(), /Kept on this computer: storage account devstoreaccount1 · a secret · service http/);
    assert.doesNotMatch(await kept.getText(), new RegExp(KEY.slice(0, 12)));
  } finally {
    await closeApp(browser, driver);
  }
  // After a restart, nothing is typed: the kept login is said and used.
  driver = await startDriver({ CAIRN_HOME: home, ...keyring.env });
  browser = await openApp(driver.port);
  try {
    await openCollection(browser);
    await (await $(browser, "destination")).setValue(dest);
    const details = await $(browser, "bucket-sign-in");
    await details.waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => /with the login kept on this computer/.test(await (await details.$("summary")).getText()), {
      timeout: LONG,
      timeoutMsg: "the kept login is not said after a restart",
    });
    await (await details.$("summary")).click();
    await (await $(browser, "bucket-kept")).waitForDisplayed({ timeout: LONG });
    await browser.execute(() => document.querySelector('[data-testid="bucket-sign-in"]').scrollIntoView({ block: "center" }));
    await shot(browser, "bucket-3-kept");

    await (await $(browser, "estimate")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "start")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 500,
      timeoutMsg: "the job did not finish",
    });
  } finally {
    await closeApp(browser, driver);
  }
  try {
    // The mirror in the container verifies on its own, and the key is
    // nowhere on disk.
    const checked = verify(dest, azurite.env);
    assert.equal(checked.code, 0, checked.output);
    assert.equal(checked.summary.verified, tiles().length);
    const written = spawnSync("grep", ["-r", "-l", KEY, home], { encoding: "utf8" });
    assert.equal(written.stdout, "", `the key was written to: ${written.stdout}`);
  } finally {
    azurite.close();
    keyring.close();
  }
});

test("settings: new mirrors go in a folder of their own under the chosen one, the schedule limits all jobs, Cairn starts at log-in, and all is kept after a restart", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const mirrors = join(home, "mirrors");
  const login = join(home, ".config", "autostart", "Cairn.desktop");
  // A fast server: without the schedule's limit the copy takes about a second.
  const fast = await serveCatalog({ rate: 16 * 1024 * 1024 });
  const driver = await startDriver({ CAIRN_HOME: home, HOME: home });
  let browser = await openApp(driver.port);
  const typeInto = (id, value) =>
    browser.execute(
      (id, value) => {
        const input = document.querySelector(`[data-testid="${id}"]`);
        input.value = value;
        input.dispatchEvent(new Event("input", { bubbles: true }));
      },
      id,
      value,
    );
  try {
    await (await $(browser, "tab-settings")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "tab-settings")).click();
    await (await $(browser, "settings-destination")).setValue(mirrors);
    await typeInto("settings-concurrency", "3");
    await (await $(browser, "add-slot")).click();
    await typeInto("slot-from", "00:00");
    await (await $(browser, "slot-rate")).setValue("2M");
    assert.equal(await (await $(browser, "schedule-words")).getText(), "All day: at most 2M per second.");
    await (await $(browser, "settings-autostart")).click();
    await (await $(browser, "settings-notifications")).click();
    await (await $(browser, "save-settings")).click();
    await (await $(browser, "settings-saved")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(
      async () => (await (await $(browser, "limit-now")).getText()) === "Now: at most 2M per second for all jobs together.",
      { timeout: LONG, timeoutMsg: "the limit in force is not said" },
    );
    assert.match(readFileSync(login, "utf8"), /^Exec=\S*cairn-app --hidden$/m, "no login item was written");
    await shot(browser, "16-settings");

    // A new mirror goes in a folder of its own under the settings' folder.
    await (await $(browser, "tab-catalogs")).click();
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "source-address")).setValue(fast.url);
    await (await $(browser, "source-open")).click();
    const collection = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
    await collection.waitForDisplayed({ timeout: LONG });
    await collection.click();
    await (await $(browser, "destination")).waitForDisplayed({ timeout: LONG });
    const dest = join(mirrors, "europe-tiles");
    await browser.waitUntil(async () => (await (await $(browser, "destination")).getValue()) === dest, {
      timeout: LONG,
      timeoutMsg: "the destination was not filled in from the settings",
    });
    await (await $(browser, "estimate")).click();
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    const started = Date.now();
    await (await $(browser, "start")).click();
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    assert.match(await (await $(browser, "shared-limit")).getText(), /All jobs together: at most 2M per second/);
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 250,
      timeoutMsg: "the job did not finish",
    });
    // 24 MiB at 2 MiB/s over all jobs: about 12 s, where the server alone
    // would take about one.
    const seconds = (Date.now() - started) / 1000;
    const total = tiles().length * TILE_BYTES;
    assert.ok(total / seconds < 3 * 1024 * 1024, `${total} bytes in ${seconds} s: the schedule's limit did not hold`);
    const checked = verify(dest);
    assert.equal(checked.code, 0, checked.output);
    assert.equal(checked.summary.verified, tiles().length);
    const listed = spawnSync(CLI, ["jobs", "--json"], { env: { ...process.env, CAIRN_HOME: home }, encoding: "utf8" });
    const job = JSON.parse(listed.stdout.split("\n")[0]);
    assert.equal(job.concurrency, 3, listed.stdout);

    // The mirror is listed under Mirrors: what it holds, checked on asking,
    // and its own catalog opens on the map.
    await (await $(browser, "tab-mirrors")).click();
    const card = await $(browser, "mirror");
    await card.waitForDisplayed({ timeout: LONG });
    assert.match(await (await $(browser, "mirror-holds")).getText(), /^8 files, 25\.2 MB · last copied /);
    assert.equal(await card.getAttribute("data-health"), "unchecked");
    await (await $(browser, "mirror-check")).click();
    await browser.waitUntil(async () => (await card.getAttribute("data-health")) === "whole", {
      timeout: LONG,
      timeoutMsg: "the check did not say the mirror is whole",
    });
    assert.match(await (await $(browser, "mirror-health")).getText(), /8 of 8 files matched their checksums/);
    await shot(browser, "18-mirrors");
    await (await $(browser, "mirror-map")).click();
    const mirrored = await browser.$('[data-testid="tree-node"][data-url$="europe-tiles/collection.json"]');
    await mirrored.waitForDisplayed({ timeout: LONG });
    await mirrored.click();
    await browser.waitUntil(async () => (await (await $(browser, "items-count")).getText()) === "8 items", {
      timeout: LONG,
      timeoutMsg: "the mirror's catalog did not open on the map",
    });

    // After a restart the settings are as saved, and the login item is the system's.
    await browser.deleteSession().catch(() => {});
    killApp();
    browser = await openApp(driver.port);
    await (await $(browser, "tab-settings")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "tab-settings")).click();
    await browser.waitUntil(async () => (await (await $(browser, "settings-destination")).getValue()) === mirrors, {
      timeout: LONG,
      timeoutMsg: "the settings were not kept",
    });
    assert.equal(await (await $(browser, "settings-concurrency")).getValue(), "3");
    assert.equal(await (await $(browser, "slot-rate")).getValue(), "2M");
    assert.equal(await (await $(browser, "settings-autostart")).isSelected(), true);
    assert.equal(await (await $(browser, "settings-notifications")).isSelected(), false);
    await (await $(browser, "settings-autostart")).click();
    await (await $(browser, "save-settings")).click();
    await (await $(browser, "settings-saved")).waitForDisplayed({ timeout: LONG });
    assert.equal(existsSync(login), false, "the login item is still there");
  } finally {
    await closeApp(browser, driver);
    await fast.close();
  }
});

test("a static collection of 20,000 item files loads whole with a running count, and its estimate reads none of them again", async () => {
  const COUNT = 20000;
  const many = await serveMany(COUNT);
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "source-address")).setValue(many.url);
    const opened = Date.now();
    await (await $(browser, "source-open")).click();
    await (await $(browser, "items-count")).waitForExist({ timeout: LONG });
    // The count while the items are read, as the window shows it.
    const seen = [];
    await browser.waitUntil(
      async () => {
        const text = await (await $(browser, "items-count")).getText();
        seen.push(text);
        return text === "20,000 items";
      },
      { timeout: 5 * 60000, interval: 100, timeoutMsg: `the items did not all show: ${seen.at(-1)}` },
    );
    const loaded = (Date.now() - opened) / 1000;
    const running = seen
      .map((text) => /^Reading items… ([\d,]+) of 20,000$/.exec(text))
      .filter(Boolean)
      .map((found) => Number(found[1].replaceAll(",", "")));
    assert.ok(
      running.some((n) => n > 0 && n < COUNT),
      `no running count was shown while reading: ${[...new Set(seen)].join(" | ")}`,
    );
    assert.equal(await (await $(browser, "items-more")).isExisting(), false, "not every item is shown");
    assert.equal(many.served.items, COUNT);
    await shot(browser, "17-many-items");

    await (await $(browser, "destination")).setValue(join(home, "mirror"));
    const asked = Date.now();
    await (await $(browser, "estimate")).click();
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: 5 * 60000 });
    const estimated = (Date.now() - asked) / 1000;
    assert.match(await estimate.getText(), /20,000 items, 20,000 assets/);
    assert.equal(many.served.items, COUNT, "the estimate read the item files again");
    console.log(`20,000 item files: loaded in ${loaded.toFixed(1)} s, estimated in ${estimated.toFixed(1)} s`);
  } finally {
    await closeApp(browser, driver);
    await many.close();
  }
});

test("a whole catalog is mirrored from its root page", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "whole");
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    await (await $(browser, "source-address")).setValue(catalog.url);
    await (await $(browser, "source-open")).click();
    const whole = await $(browser, "whole-catalog");
    await whole.waitForDisplayed({ timeout: LONG });
    assert.match(await whole.getText(), /mirror everything under this catalog here: 1 catalog or collection/);
    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: LONG });
    assert.match(await estimate.getText(), new RegExp(`${tiles().length} items, ${tiles().length} assets`));
    await shot(browser, "19-whole-catalog");
    await startAndFinish(browser);
  } finally {
    await closeApp(browser, driver);
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, tiles().length);
});

/** How the app's window stands on the X display: "IsViewable", "IsUnMapped", or null while there is none. */
function windowState() {
  const found = spawnSync("xwininfo", ["-name", "Cairn"], { encoding: "utf8" });
  return found.status === 0 ? (/Map State: (\w+)/.exec(found.stdout)?.[1] ?? null) : null;
}

async function until(what, check, timeout = LONG) {
  const end = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`${what} did not happen within ${timeout / 1000} s`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

test("started at log-in, the app keeps its window hidden while a job goes on, and launching Cairn again shows it", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const env = { ...process.env, CAIRN_HOME: home };
  // A job the command line began, cut off by a crash.
  const served = catalog.served.bytes;
  const cli = spawn(CLI, ["mirror", catalog.url, dest], { env, stdio: "ignore" });
  await until("the first bytes of the job", () => catalog.served.bytes > served + TILE_BYTES / 2);
  cli.kill("SIGKILL");
  await new Promise((done) => cli.once("exit", done));
  const cut = catalog.served.bytes;

  // Started as the log-in item starts it (no WebDriver: its session shows the window).
  const app = spawn(APP, ["--hidden"], { env, stdio: "ignore" });
  try {
    // Never shown, not even for a moment: looked at every few tenths of a second.
    const seen = new Set();
    await until("the job going on", () => {
      seen.add(windowState());
      return catalog.served.bytes > cut + TILE_BYTES / 2;
    }, LONG);
    // (Made hidden, the window may not be on the display at all yet.)
    assert.ok(!seen.has("IsViewable"), "the window of an app started at log-in shows");
    const second = spawnSync(APP, [], { env, encoding: "utf8", timeout: 30000 });
    assert.equal(second.status, 0, `${second.stdout}${second.stderr}`);
    assert.match(second.stdout, /already open: its window is shown/);
    await until("the window showing after a second launch", () => windowState() === "IsViewable");
    await until("the job finishing", () => {
      const listed = spawnSync(CLI, ["jobs", "--json"], { env, encoding: "utf8" });
      try {
        return JSON.parse(listed.stdout.split("\n")[0]).state === "finished";
      } catch {
        return false;
      }
    });
  } finally {
    app.kill("SIGKILL");
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, tiles().length);
});

test("with the keyboard alone a person mirrors one collection of a catalog of two, and every screen names its controls for a screen reader", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "coastlines-only");
  const driver = await startDriver({ CAIRN_HOME: home });
  const browser = await openApp(driver.port);
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    await accessible(browser, "the first screen");
    // The guide shows until it is put away once (the window's storage
    // outlives a test's state folder).
    if (await (await $(browser, "first-run-guide")).isExisting()) {
      await activate(browser, '[data-testid="guide-done"]');
    }
    // The demo catalog (the first source listed): two collections.
    await activate(browser, '[data-testid="source"]');
    const coastlines = '[data-testid="tree-node"][data-url$="coastlines/collection.json"]';
    await browser.$(coastlines).waitForDisplayed({ timeout: LONG });

    // A collection's page: its items, one opened from the table.
    await activate(browser, coastlines);
    await browser.waitUntil(async () => (await browser.$$('[data-testid="item-row"]').length) === 3, {
      timeout: LONG,
      timeoutMsg: "the collection's items did not show",
    });
    await activate(browser, '[data-testid="item-row"]');
    await (await $(browser, "item-page")).waitForDisplayed({ timeout: LONG });
    await accessible(browser, "a collection's page with an item open");

    // Back to the catalog: the glaciers unticked, the coastlines kept.
    await activate(browser, '[data-testid="tree-node"][data-url$="/catalog.json"]');
    const glaciers = '[data-testid="keep-collection"][data-id="glaciers"]';
    await browser.$(glaciers).waitForDisplayed({ timeout: LONG });
    await accessible(browser, "a catalog's page");
    await activate(browser, glaciers, SPACE);
    assert.equal(await browser.$(glaciers).isSelected(), false);
    assert.equal(await browser.$('[data-testid="keep-collection"][data-id="coastlines"]').isSelected(), true);
    assert.match(await (await $(browser, "whole-catalog")).getText(), /1 of 2 collections ticked/);
    await tabTo(browser, '[data-testid="destination"]');
    await press(browser, [CONTROL, "a"]);
    await type(browser, dest);
    assert.equal(await (await $(browser, "destination")).getValue(), dest);
    await activate(browser, '[data-testid="estimate"]');
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: LONG });
    assert.match(await estimate.getText(), /3 items, 6 assets/);
    assert.match(await estimate.getText(), /Without the collection glaciers · every file of each item/);
    // The keyboard stays where it was while the catalog was read.
    assert.equal(await browser.execute(() => document.activeElement?.getAttribute("data-testid")), "estimate");
    await accessible(browser, "an estimate");
    // A tick changed after the estimate: the estimate goes, and Start with it.
    await activate(browser, glaciers, SPACE);
    await estimate.waitForDisplayed({ reverse: true, timeout: LONG });
    assert.equal(await (await $(browser, "start")).isEnabled(), false);
    await press(browser, SPACE);
    await activate(browser, '[data-testid="estimate"]');
    await (await $(browser, "estimate-result")).waitForDisplayed({ timeout: LONG });
    assert.match(await (await $(browser, "estimate-result")).getText(), /3 items, 6 assets/);
    await shot(browser, "20-collections-ticked");
    await activate(browser, '[data-testid="start"]');
    await (await $(browser, "job")).waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await jobState(browser)) === "finished", {
      timeout: LONG,
      interval: 250,
      timeoutMsg: "the job did not finish",
    });
    await accessible(browser, "the Jobs screen with a finished job");

    await activate(browser, '[data-testid="tab-mirrors"]');
    await (await $(browser, "mirror")).waitForDisplayed({ timeout: LONG });
    await accessible(browser, "the Mirrors screen");
    await activate(browser, '[data-testid="tab-settings"]');
    await (await $(browser, "settings")).waitForDisplayed({ timeout: LONG });
    await accessible(browser, "the Settings screen");
  } finally {
    await closeApp(browser, driver);
  }
  const checked = verify(dest);
  assert.equal(checked.code, 0, checked.output);
  assert.equal(checked.summary.verified, 6);
  assert.ok(existsSync(join(dest, "coastlines")), "the coastlines are mirrored");
  assert.ok(!existsSync(join(dest, "glaciers")), "the glaciers were left out");
});

test("the screens follow the system's dark theme", async () => {
  const home = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const dest = join(home, "mirror");
  const driver = await startDriver({ CAIRN_HOME: home, GTK_THEME: "Adwaita:dark" });
  const browser = await openApp(driver.port);
  try {
    await (await $(browser, "source-address")).waitForDisplayed({ timeout: LONG });
    const dark = await browser.execute(() => matchMedia("(prefers-color-scheme: dark)").matches);
    assert.equal(dark, true, "the window did not follow the system's dark theme");
    const paper = await browser.execute(() => getComputedStyle(document.documentElement).backgroundColor);
    assert.equal(paper, "rgb(22, 28, 32)", "the page is not drawn dark");
    await shot(browser, "dark-1-catalogs");
    await (await $(browser, "sign-in-summary")).click();
    await (await $(browser, "sign-in-netrc-kind")).click();
    await shot(browser, "dark-1-sign-in");
    await accessible(browser, "the sign-in choices, dark");
    // Back to a public catalog: a way chosen stays chosen when folded away.
    await (await $(browser, "sign-in-none-kind")).click();
    await (await $(browser, "sign-in-summary")).click();
    // The catalog's own page, with its collection ticked.
    await (await $(browser, "source-address")).setValue(catalog.url);
    await (await $(browser, "source-open")).click();
    await (await browser.$('[data-testid="keep-collection"][data-id="europe-tiles"]')).waitForDisplayed({ timeout: LONG });
    await shot(browser, "dark-19-whole-catalog");
    await accessible(browser, "a catalog's page, dark");
    const collection = await browser.$('[data-testid="tree-node"][data-url$="tiles/collection.json"]');
    await collection.click();
    await browser.waitUntil(async () => (await browser.$$('[data-testid="item-row"]').length) === tiles().length, {
      timeout: LONG,
      timeoutMsg: "the collection's items did not show",
    });
    await shot(browser, "dark-2-collection");
    await (await browser.$$('[data-testid="item-row"]'))[0].click();
    await (await $(browser, "item-page")).waitForDisplayed({ timeout: LONG });
    await browser.pause(800);
    await browser.execute(() => document.querySelector('[data-testid="item-page"]').scrollIntoView({ block: "end" }));
    await shot(browser, "dark-3-item");
    await accessible(browser, "an item's page, dark");
    await (await (await $(browser, "item-page")).$("button=Close")).click();
    // One item left out by unticking it in the table: the estimate and the
    // job leave it out.
    await (await browser.$$('[data-testid="keep"]'))[0].click();
    // On the map it is drawn dashed, left out.
    await browser.waitUntil(async () => (await browser.$$('path[stroke-dasharray="4 3"]').length) === 1, {
      timeout: LONG,
      timeoutMsg: "the item left out is not drawn apart on the map",
    });
    await (await $(browser, "destination")).setValue(dest);
    await (await $(browser, "estimate")).click();
    const estimate = await $(browser, "estimate-result");
    await estimate.waitForDisplayed({ timeout: LONG });
    const kept = tiles().length - 1;
    assert.match(await estimate.getText(), new RegExp(`${kept} items, ${kept} assets`));
    await shot(browser, "dark-4-estimate");
    await accessible(browser, "an estimate, dark");
    await startAndFinish(browser);
    await shot(browser, "dark-7-job-finished");
    // The check and the bag screens, dark too.
    await (await $(browser, "check-copy")).click();
    const check = await $(browser, "check");
    await check.waitForDisplayed({ timeout: LONG });
    await browser.waitUntil(async () => (await $(browser, "check-headline")).getText().then((t) => /whole/.test(t)), {
      timeout: LONG,
      timeoutMsg: "the check did not say the copy is whole",
    });
    await shot(browser, "dark-10-check");
    await accessible(browser, "a check of the copy, dark");
    await (await $(browser, "bag")).click();
    await (await $(browser, "make-bag")).click();
    await (await $(browser, "bag-result")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "dark-15-bag");
    await accessible(browser, "a bag made, dark");
    await (await $(browser, "tab-settings")).click();
    await (await $(browser, "add-slot")).click();
    await (await $(browser, "slot-rate")).setValue("1M");
    await (await $(browser, "schedule-words")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "dark-16-settings");
    await accessible(browser, "the settings with a schedule, dark");
    await (await $(browser, "tab-mirrors")).click();
    await (await $(browser, "mirror")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "dark-18-mirrors");
    await accessible(browser, "the mirrors, dark");
    // The job's history, and the mirrored tiles on the map, dark.
    await (await $(browser, "tab-jobs")).click();
    await (await $(browser, "show-history")).click();
    await (await $(browser, "history")).waitForDisplayed({ timeout: LONG });
    await shot(browser, "dark-12-history");
    await accessible(browser, "a job's history, dark");
    await (await $(browser, "tab-catalogs")).click();
    await browser.waitUntil(async () => (await browser.$$('path[stroke="#2e7d4f"]').length) === kept, {
      timeout: LONG,
      timeoutMsg: "the mirrored tiles are not shown as mirrored on the map",
    });
    await shot(browser, "dark-8-map-mirrored");
    await accessible(browser, "the map of what is mirrored, dark");
  } finally {
    await closeApp(browser, driver);
  }
  const folders = readdirSync(join(dest, "europe-tiles"), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  assert.deepEqual(folders, tiles().map((t) => t.id).filter((id) => id !== "tile-0-0").sort());
});
