// What a person picks before starting a mirror: an area, a time range, asset
// filters and a destination. Checked here so mistakes are said before any
// request is made.
import type { JobRequest, Selection } from "./bindings";

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

/** "2024-01-01" and "" -> "2024-01-01/.."; both empty -> null. */
export function dateRange(from: string, to: string): string | null | { error: string } {
  if (!from && !to) return null;
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

  /** What is wrong with the selection, in words; empty when it can run. */
  problems = $derived.by(() => {
    const out: string[] = [];
    if (!this.source) out.push("Pick a catalog first.");
    const range = dateRange(this.from, this.to);
    if (range && typeof range === "object") out.push(range.error);
    if (!this.destination.trim()) out.push("Choose where the copy goes: a folder, or a bucket address.");
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
    };
  }

  request(): JobRequest {
    return {
      source: this.source,
      destination: this.destination.trim(),
      selection: this.selection(),
      limit_rate: null,
      concurrency: 8,
      per_host: 6,
    };
  }

  /** A new source clears what belonged to the old one. */
  setSource(url: string) {
    if (url === this.source) return;
    this.source = url;
    this.collections = [];
    this.assets = [];
  }
}

export const selection = new SelectionState();
