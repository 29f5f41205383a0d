import { describe, expect, it } from "vitest";
import { visibleRows } from "./virtual";

describe("the rows drawn of a long table", () => {
  it("are those on screen and a few around them", () => {
    const view = visibleRows(100_000, 28, 28 * 50_000, 280, 8);
    expect(view.start).toBe(49_992);
    expect(view.end).toBe(50_018);
    expect(view.before + (view.end - view.start) * 28 + view.after).toBe(100_000 * 28);
  });

  it("stay inside the list at both ends", () => {
    expect(visibleRows(5, 28, 0, 1000)).toEqual({ start: 0, end: 5, before: 0, after: 0 });
    const last = visibleRows(100, 28, 1e9, 280);
    expect(last.end).toBe(100);
    expect(last.after).toBe(0);
  });
});
