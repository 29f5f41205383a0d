import { describe, expect, it } from "vitest";
import { SelectionState, dateRange, formatBbox, parseBbox } from "./selection.svelte";

describe("the area typed as W,S,E,N", () => {
  it("reads four numbers", () => {
    expect(parseBbox(" -10, 35.5 ,5,45")).toEqual([-10, 35.5, 5, 45]);
  });

  it("says what is wrong in words", () => {
    expect(parseBbox("1,2,3")).toMatch(/four numbers/);
    expect(parseBbox("a,2,3,4")).toMatch(/must be a number/);
    expect(parseBbox("0,50,10,40")).toMatch(/South must be below north/);
    expect(parseBbox("-200,0,10,10")).toMatch(/between -180 and 180/);
    expect(parseBbox("0,-95,10,10")).toMatch(/between -90 and 90/);
  });

  it("is written back without noise", () => {
    expect(formatBbox([1.234567, 2, 3.1, 4])).toBe("1.2346,2,3.1,4");
  });
});

describe("the time range", () => {
  it("is open on the side left empty", () => {
    expect(dateRange("2024-01-01", "")).toBe("2024-01-01/..");
    expect(dateRange("", "2024-02-01")).toBe("../2024-02-01");
    expect(dateRange("", "")).toBeNull();
  });

  it("refuses an end before its start", () => {
    expect(dateRange("2024-03-01", "2024-02-01")).toEqual({ error: "The start date is after the end date." });
  });

  it("takes typed days with spaces around them, and says when a date is not a day", () => {
    expect(dateRange(" 2024-01-01 ", "")).toBe("2024-01-01/..");
    expect(dateRange("2024-02-30", "")).toEqual({ error: expect.stringContaining('"2024-02-30" is not a day') });
    expect(dateRange("", "31/01/2024")).toEqual({ error: expect.stringContaining("The end date") });
  });
});

describe("a selection", () => {
  it("becomes the job request the engine takes", () => {
    const s = new SelectionState();
    s.setSource("http://127.0.0.1:8000/catalog.json");
    s.bbox = [0, 40, 10, 50];
    s.from = "2024-01-01";
    s.assets = ["data"];
    s.destination = "  /tmp/mirror ";
    expect(s.problems).toEqual([]);
    expect(s.request("Sentinel-2 L2A")).toEqual({
      source: "http://127.0.0.1:8000/catalog.json",
      destination: "/tmp/mirror",
      selection: { collections: [], bbox: "0,40,10,50", datetime: "2024-01-01/..", assets: ["data"], max_items: null, filter: null, ids: [], exclude: [], exclude_collections: [], alternate: "auto" },
      limit_rate: null,
      concurrency: 8,
      per_host: 6,
      name: "Sentinel-2 L2A",
      access: { requester_pays: false },
    });
    // A typed name wins over the one offered; none at all is none.
    s.name = "  Alps, summer 2024 ";
    expect(s.request("Sentinel-2 L2A").name).toBe("Alps, summer 2024");
    s.name = "";
    expect(s.request().name).toBeNull();
  });

  it("names what is missing before anything is asked", () => {
    const s = new SelectionState();
    s.from = "2024-05-01";
    s.to = "2024-01-01";
    expect(s.problems).toEqual([
      "Pick a catalog first.",
      "The start date is after the end date.",
      "Choose where the copy goes: a folder, or a bucket address.",
    ]);
  });

  it("forgets the asset filter when the source changes", () => {
    const s = new SelectionState();
    s.setSource("a");
    s.assets = ["red"];
    s.setSource("b");
    expect(s.assets).toEqual([]);
  });
});

describe("items ticked one by one", () => {
  it("drops the unticked, or keeps only the ticked after Untick all", () => {
    const s = new SelectionState();
    s.setSource("http://127.0.0.1:8000/catalog.json");
    s.destination = "/tmp/m";
    expect(s.keeps("a")).toBe(true);
    s.toggle("a");
    expect(s.keeps("a")).toBe(false);
    expect(s.selection()).toMatchObject({ ids: [], exclude: ["a"] });

    s.tickAll(false);
    expect(s.keeps("a") || s.keeps("b")).toBe(false);
    expect(s.problems).toContain("No item is ticked: tick the items to copy, or tick them all.");
    s.toggle("b");
    expect(s.keeps("b")).toBe(true);
    expect(s.selection()).toMatchObject({ ids: ["b"], exclude: [] });
    expect(s.problems).toEqual([]);

    // Another catalog: everything ticked again.
    s.setSource("http://127.0.0.1:8000/other.json");
    expect(s.keeps("b") && s.keeps("z")).toBe(true);
  });
});

describe("collections of a catalog ticked one by one", () => {
  const all = ["coastlines", "glaciers", "rivers"];

  it("copies every collection but those unticked", () => {
    const s = new SelectionState();
    s.setSource("https://example.test/catalog.json");
    expect(all.every((c) => s.keepsCollection(c))).toBe(true);
    expect(s.selection().exclude_collections).toEqual([]);
    s.toggleCollection("glaciers", all);
    expect(s.keepsCollection("glaciers")).toBe(false);
    expect(s.selection().exclude_collections).toEqual(["glaciers"]);
    // Not "only these": what else the catalog holds is still copied.
    expect(s.selection().collections).toEqual([]);
    s.toggleCollection("glaciers", all);
    expect(s.selection().exclude_collections).toEqual([]);
  });

  it("says when nothing is left to copy, and a new source ticks them all again", () => {
    const s = new SelectionState();
    s.setSource("https://example.test/catalog.json");
    s.destination = "/tmp/mirror";
    for (const c of all) s.toggleCollection(c, all);
    expect(all.some((c) => s.keepsCollection(c))).toBe(false);
    expect(s.problems).toContain("No collection is ticked: tick the collections to copy.");
    s.toggleCollection("rivers", all);
    expect(s.problems).toEqual([]);
    expect(s.selection().exclude_collections).toEqual(["coastlines", "glaciers"]);
    // Unticked in another order, the same choice.
    const t = new SelectionState();
    t.setSource("https://example.test/catalog.json");
    for (const c of ["glaciers", "coastlines"]) t.toggleCollection(c, all);
    expect(t.selection().exclude_collections).toEqual(["coastlines", "glaciers"]);
    s.setSource("https://example.test/other.json");
    expect(s.keepsCollection("coastlines")).toBe(true);
    expect(s.selection().exclude_collections).toEqual([]);
  });

  it("says nothing is left once the last child read turns out to be a collection", () => {
    const s = new SelectionState();
    s.setSource("https://example.test/catalog.json");
    s.destination = "/tmp/mirror";
    // Two collections read and unticked while a third child is read.
    for (const c of ["coastlines", "glaciers"]) s.toggleCollection(c, ["coastlines", "glaciers"], true);
    expect(s.problems).toEqual([]);
    s.settleCollections(all, false);
    expect(s.problems).toEqual([]);
    s.toggleCollection("rivers", all, false);
    expect(s.problems).toContain("No collection is ticked: tick the collections to copy.");
  });

  it("leaves a catalog with more than collections something to copy", () => {
    const s = new SelectionState();
    s.setSource("https://example.test/catalog.json");
    s.destination = "/tmp/mirror";
    for (const c of all) s.toggleCollection(c, all, true);
    expect(s.problems).toEqual([]);
  });
});
