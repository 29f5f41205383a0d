import { describe, expect, it } from "vitest";
import type { ItemSummary } from "./bindings";
import { narrow } from "./narrow";

function item(id: string, bbox: ItemSummary["bbox"], datetime: string | null): ItemSummary {
  return { id, collection: "c", href: null, bbox, geometry: null, datetime, assets: [], thumbnail: null, properties: [], links: [], detailed: true };
}

const items = [
  item("paris", [2.2, 48.8, 2.5, 48.9], "2024-01-10T10:00:00Z"),
  item("lagos", [3.3, 6.4, 3.5, 6.6], "2024-03-01T00:00:00Z"),
  item("fiji", [177, -18, -179, -16], "2024-02-01T00:00:00Z"),
  item("nowhere", null, null),
];

describe("narrowing the items to the chosen area and dates", () => {
  it("keeps everything when nothing is chosen, without copying the list", () => {
    expect(narrow(items, null, "", "")).toBe(items);
  });

  it("keeps the items that meet the area, across the antimeridian too, and those without a place", () => {
    expect(narrow(items, [0, 40, 10, 50], "", "").map((i) => i.id)).toEqual(["paris", "nowhere"]);
    expect(narrow(items, [-180, -20, -178, -10], "", "").map((i) => i.id)).toEqual(["fiji", "nowhere"]);
  });

  it("keeps the items of the days chosen, both ends included", () => {
    expect(narrow(items, null, "2024-01-10", "2024-02-01").map((i) => i.id)).toEqual(["paris", "fiji", "nowhere"]);
    expect(narrow(items, null, "", "2024-01-09").map((i) => i.id)).toEqual(["nowhere"]);
  });

  it("does not narrow on dates that are not days yet (being typed)", () => {
    expect(narrow(items, null, "2024-0", "")).toBe(items);
  });
});
