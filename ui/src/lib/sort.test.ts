import { describe, expect, it } from "vitest";
import type { ItemSummary } from "./bindings";
import { declaredSize, next, sorted } from "./sort";

function item(id: string, datetime: string | null, sizes: (number | null)[]): ItemSummary {
  const item: ItemSummary = {
    id,
    collection: "c",
    href: null,
    bbox: null,
    geometry: null,
    datetime,
    thumbnail: null,
    properties: [],
    links: [],
    detailed: true,
    assets: sizes.map((size, i) => ({ key: `a${i}`, href: "", title: null, media_type: null, roles: [], size, alternates: [] })),
  };
  return item;
}

const items = [
  item("item-10", "2024-03-01T00:00:00Z", [5, 5]),
  item("item-9", null, [null]),
  item("item-2", "2023-01-01T00:00:00Z", [100]),
  item("item-1", "2024-03-01T00:00:00Z", []),
];
const ids = (list: ItemSummary[]) => list.map((i) => i.id);

describe("the items table's order", () => {
  it("is by id when none is picked, whatever order the items came in", () => {
    expect(ids(sorted(items, null))).toEqual(["item-1", "item-2", "item-9", "item-10"]);
    expect(ids(sorted([...items].reverse(), null))).toEqual(["item-1", "item-2", "item-9", "item-10"]);
  });

  it("puts numbered ids in number order", () => {
    expect(ids(sorted(items, { column: "id", descending: false }))).toEqual(["item-1", "item-2", "item-9", "item-10"]);
    expect(ids(sorted(items, { column: "id", descending: true }))).toEqual(["item-10", "item-9", "item-2", "item-1"]);
  });

  it("keeps items without a value last either way, and ties by id", () => {
    expect(ids(sorted(items, { column: "datetime", descending: false }))).toEqual(["item-2", "item-1", "item-10", "item-9"]);
    expect(ids(sorted(items, { column: "datetime", descending: true }))).toEqual(["item-1", "item-10", "item-2", "item-9"]);
    expect(ids(sorted(items, { column: "size", descending: true }))).toEqual(["item-2", "item-10", "item-1", "item-9"]);
    expect(ids(sorted(items, { column: "size", descending: false }))).toEqual(["item-10", "item-2", "item-1", "item-9"]);
  });

  it("adds only the sizes assets declare", () => {
    expect(declaredSize(items[0])).toBe(10);
    expect(declaredSize(items[1])).toBeNull();
    expect(declaredSize(items[3])).toBeNull();
  });

  it("goes ascending, descending, then back to by id on clicks", () => {
    let order = next(null, "size");
    expect(order).toEqual({ column: "size", descending: false });
    order = next(order, "size");
    expect(order).toEqual({ column: "size", descending: true });
    expect(next(order, "size")).toBeNull();
    expect(next(order, "id")).toEqual({ column: "id", descending: false });
  });

  it("sorts 100,000 items", () => {
    const many = Array.from({ length: 100_000 }, (_, i) => item(`item-${(i * 7919) % 100_000}`, null, [i]));
    const out = ids(sorted(many, { column: "id", descending: false }));
    expect(out[0]).toBe("item-0");
    expect(out[99_999]).toBe("item-99999");
    expect(out[500]).toBe("item-500");
  });
});
