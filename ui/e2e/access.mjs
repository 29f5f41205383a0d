// What a person who does not use a mouse, or hears the screen read aloud,
// needs: the Tab key reaches every control, and every control has a name.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const TAB = "\uE004";
export const ENTER = "\uE007";
export const SPACE = " ";
export const CONTROL = "\uE009";

/** Presses `keys` (a key, or text to type) where the keyboard's focus is. */
export async function press(browser, keys) {
  await browser.keys(keys);
}

/** Types `text` into the control the keyboard is on (as keys sent to it: a
 * repeated letter is not lost, as it can be in a chain of key actions). */
export async function type(browser, text) {
  const focused = await browser.getActiveElement();
  await browser.elementSendKeys(focused["element-6066-11e4-a52e-4f735466cecf"] ?? focused.ELEMENT, text);
}

/** Presses Tab until the focus is on an element that matches `selector`; fails after `most` presses. */
export async function tabTo(browser, selector, most = 200) {
  for (let i = 0; i < most; i++) {
    const there = await browser.execute((s) => document.activeElement?.matches(s) ?? false, selector);
    if (there) return;
    await press(browser, TAB);
  }
  const at = await browser.execute(() => document.activeElement?.outerHTML.slice(0, 200) ?? "nothing");
  assert.fail(`${most} presses of Tab did not reach ${selector}; the focus is on ${at}`);
}

/** Reaches `selector` with Tab and presses `key` (Enter unless said) there. */
export async function activate(browser, selector, key = ENTER) {
  await tabTo(browser, selector);
  await press(browser, key);
}

/**
 * Checks the page with axe-core (Deque's accessibility engine, the one
 * browsers' audits use) against WCAG 2.1 A and AA and its best practices:
 * every control has a name a screen reader says, every image an alternative,
 * text contrasts with its background, and so on. Fails with what is wrong.
 */
export async function accessible(browser, screen) {
  const loaded = await browser.execute(() => typeof window.axe === "object");
  if (!loaded) await browser.execute(AXE);
  const violations = await browser.executeAsync((done) => {
    window.axe
      .run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } })
      .then((result) =>
        done(
          result.violations.map((v) => ({
            rule: v.id,
            help: v.help,
            where: v.nodes.slice(0, 3).map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
          })),
        ),
      )
      .catch((error) => done([{ rule: "axe", help: String(error), where: [] }]));
  });
  assert.deepEqual(violations, [], `${screen}: ${JSON.stringify(violations, null, 2)}`);
}
