// What a person picks before starting a mirror: an area, a time range, asset
// filters and a destination. Checked here so mistakes are said before any
// request is made.
import { SvelteSet } from "svelte/reactivity";
import type { JobRequest, Selection } from "./bindings";
import { settings } from "./settings.svelte";

export type Bbox = [number, number, number, number];

/** Parses "W,S,E,N"; returns an error sentence or the box. */
export function parseBbox(text: string): Bbox | string {
  const parts = text.split(",").map((p) => p.trim());
  if (parts.length !== 4 || parts.some((p) => p === "")) {
    return "Type the area as four numbers: west, south, east, north (for example -10,35,5,45).";
  }
  const numbers = parts.map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) {
    return "Each of west, south, east and north must be a number.";
  }
  const [w, s, e, n] = numbers;
  if (w < -180 || e > 180 || w > 180 || e < -180) return "West and east must be between -180 and 180.";
  if (s < -90 || n > 90 || s > 90 || n < -90) return "South and north must be between -90 and 90.";
  if (s > n) return "South must be below north.";
  return [w, s, e, n];
}

export function formatBbox(b: Bbox): string {
  return b.map((v) => Number(v.toFixed(4))).join(",");
}

/** Whether `text` is a real calendar day written as YYYY-MM-DD. */
function isDay(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const day = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(day.getTime()) && day.toISOString().slice(0, 10) === text;
}

/** "2024-01-01" and "" -> "2024-01-01/.."; both empty -> null. Spaces
 * around a date do not matter; a date that is not a day is said in words. */
export function dateRange(fromText: string, toText: string): string | null | { error: string } {
  const [from, to] = [fromText.trim(), toText.trim()];
  if (!from && !to) return null;
  for (const [name, day] of [["start", from], ["end", to]]) {
    if (day && !isDay(day)) return { error: `The ${name} date "${day}" is not a day written as YYYY-MM-DD (for example 2024-01-31).` };
  }
  if (from && to && from > to) return { error: "The start date is after the end date." };
  return `${from || ".."}/${to || ".."}`;
}

export class SelectionState {
  source = $state("");
  collections = $state<string[]>([]);
  bbox = $state<Bbox | null>(null);
  from = $state("");
  to = $state("");
  assets = $state<string[]>([]);
  destination = $state("");
  limitRate = $state("");
  /** The job's name as typed (empty: the catalog's title is offered). */
  name = $state("");
  /** The CQL2 filter on the items' properties, as applied (the map and table show what it keeps). */
  filter = $state("");
  /** Which of an asset's addresses to read: "auto" (the one that needs no
   * sign-in), "main" (its own href), or the name of an alternate. */
  alternate = $state("auto");
  /** Whether S3 buckets are read as requester-pays: the person's AWS account is billed. */
  requesterPays = $state(false);
  /** Items ticked one by one: every item but those marked ("all-but"), or
   * only those marked ("only"). */
  pickMode = $state<"all-but" | "only">("all-but");
  marked = new SvelteSet<string>();
  /** The collections of a catalog unticked one by one, by id: left out,
   * with their items (what else the catalog holds is copied). */
  excludeCollections = $state<string[]>([]);
  /** Whether the catalog would be copied with nothing in it: every
   * collection unticked, and nothing else under it. */
  noCollection = $state(false);

  /** Whether the collection `id` is ticked (copied with the catalog). */
  keepsCollection(id: string): boolean {
    return !this.excludeCollections.includes(id);
  }

  /** Ticks or unticks the collection `id` of a catalog whose collections
   * are `all` and which holds `others` besides (catalogs, documents not
   * read). */
  toggleCollection(id: string, all: string[], others = false) {
    this.excludeCollections = this.keepsCollection(id)
      ? [...this.excludeCollections, id]
      : this.excludeCollections.filter((c) => c !== id);
    this.settleCollections(all, others);
  }

  /** Says whether anything is left to copy of a catalog whose collections
   * are `all` and which holds `others` besides (again as its children are read). */
  settleCollections(all: string[], others: boolean) {
    this.noCollection = !others && all.length > 0 && all.every((c) => !this.keepsCollection(c));
  }

  /** Whether the item `id` is ticked (copied, if the rest of the selection keeps it). */
  keeps(id: string): boolean {
    return this.pickMode === "all-but" ? !this.marked.has(id) : this.marked.has(id);
  }

  /** Ticks or unticks the item `id`. */
  toggle(id: string) {
    if (this.marked.has(id)) this.marked.delete(id);
    else this.marked.add(id);
  }

  /** Ticks every item (`true`) or none (`false`). */
  tickAll(all: boolean) {
    this.pickMode = all ? "all-but" : "only";
    this.marked.clear();
  }

  /** What is wrong with the selection, in words; empty when it can run. */
  problems = $derived.by(() => {
    const out: string[] = [];
    if (!this.source) out.push("Pick a catalog first.");
    const range = dateRange(this.from, this.to);
    if (range && typeof range === "object") out.push(range.error);
    if (!this.destination.trim()) out.push("Choose where the copy goes: a folder, or a bucket address.");
    if (this.pickMode === "only" && this.marked.size === 0) out.push("No item is ticked: tick the items to copy, or tick them all.");
    if (this.noCollection) out.push("No collection is ticked: tick the collections to copy.");
    return out;
  });

  selection(): Selection {
    const range = dateRange(this.from, this.to);
    return {
      collections: [...this.collections],
      bbox: this.bbox ? formatBbox(this.bbox) : null,
      datetime: typeof range === "string" ? range : null,
      assets: [...this.assets],
      max_items: null,
      filter: this.filter.trim() || null,
      ids: this.pickMode === "only" ? [...this.marked] : [],
      exclude: this.pickMode === "all-but" ? [...this.marked] : [],
      // In one order, whatever the order of the clicks: the same choice
      // finds the same job.
      exclude_collections: [...new Set(this.excludeCollections)].sort(),
      alternate: this.alternate,
    };
  }

  /** The job to ask for; named `defaultName` unless a name was typed. */
  request(defaultName = ""): JobRequest {
    return {
      source: this.source,
      destination: this.destination.trim(),
      selection: this.selection(),
      limit_rate: null,
      concurrency: settings.saved.concurrency,
      per_host: settings.saved.per_host,
      name: this.name.trim() || defaultName.trim() || null,
      // The sign-in itself is the source's (the engine adds it).
      access: { requester_pays: this.requesterPays },
    };
  }

  /** A new source clears what belonged to the old one. */
  setSource(url: string) {
    if (url === this.source) return;
    this.source = url;
    this.collections = [];
    this.excludeCollections = [];
    this.noCollection = false;
    this.assets = [];
    this.name = "";
    this.filter = "";
    this.alternate = "auto";
    this.requesterPays = false;
    this.tickAll(true);
  }
}

export const selection = new SelectionState();
