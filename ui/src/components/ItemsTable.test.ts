import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ItemSummary } from "../lib/bindings";
import { selection } from "../lib/selection.svelte";
import ItemsTable from "./ItemsTable.svelte";

// jsdom has no layout, so no ResizeObserver: the table's height stays 0 and
// it draws its first rows (the overscan), which is all these tests need.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
};

function item(id: string, datetime: string | null, size: number | null): ItemSummary {
  return {
    id, collection: "c", href: null, bbox: null, geometry: null, datetime, thumbnail: null, properties: [], links: [], detailed: true,
    assets: [{ key: "data", href: `http://x/${id}.tif`, title: null, media_type: null, roles: ["data"], size, alternates: [] }],
  };
}

const items = [
  item("b-2", null, 1_500_000),
  item("b-10", "2024-05-01T00:00:00Z", 3000),
  item("a-7", "2021-01-09T00:00:00Z", null),
];
const shown = () => screen.getAllByTestId("item-row").map((row) => row.firstElementChild?.textContent);

describe("the items table", () => {
  it("shows the items by id, then sorts by a column each way and back", async () => {
    render(ItemsTable, { items, selected: null, onchoose: () => {} });
    expect(shown()).toEqual(["a-7", "b-2", "b-10"]);
    expect(screen.getAllByTestId("item-row")[1].textContent).toContain("1.5 MB");
    expect(screen.getAllByTestId("item-row")[0].textContent).toContain("—");

    const header = screen.getByTestId("sort-id");
    await fireEvent.click(header);
    expect(shown()).toEqual(["a-7", "b-2", "b-10"]);
    expect(header.parentElement?.getAttribute("aria-sort")).toBe("ascending");
    await fireEvent.click(header);
    expect(shown()).toEqual(["b-10", "b-2", "a-7"]);
    expect(header.parentElement?.getAttribute("aria-sort")).toBe("descending");
    await fireEvent.click(header);
    expect(shown()).toEqual(["a-7", "b-2", "b-10"]);
    expect(header.parentElement?.getAttribute("aria-sort")).toBe("none");

    await fireEvent.click(screen.getByTestId("sort-datetime"));
    expect(shown()).toEqual(["a-7", "b-10", "b-2"]);
    await fireEvent.click(screen.getByTestId("sort-size"));
    expect(shown()).toEqual(["b-10", "b-2", "a-7"]);
    await fireEvent.click(screen.getByTestId("sort-size"));
    expect(shown()).toEqual(["b-2", "b-10", "a-7"]);
  });

  it("opens an item on a click or Enter", async () => {
    const onchoose = vi.fn();
    render(ItemsTable, { items, selected: "b-10", onchoose });
    const rows = screen.getAllByTestId("item-row");
    expect(rows.map((r) => r.classList.contains("selected"))).toEqual([false, false, true]);
    await fireEvent.click(rows[0]);
    await fireEvent.keyDown(rows[1], { key: "Enter" });
    expect(onchoose.mock.calls.map(([i]) => i.id)).toEqual(["a-7", "b-2"]);
  });

  it("ticks and unticks an item without opening it", async () => {
    const onchoose = vi.fn();
    selection.tickAll(true);
    render(ItemsTable, { items, selected: null, onchoose });
    const boxes = screen.getAllByTestId("keep") as HTMLInputElement[];
    expect(boxes.every((b) => b.checked)).toBe(true);
    await fireEvent.click(boxes[1]);
    expect(selection.keeps("b-2")).toBe(false);
    expect(onchoose).not.toHaveBeenCalled();
    selection.tickAll(true);
  });
});
