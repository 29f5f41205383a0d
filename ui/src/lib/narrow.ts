// The items the chosen area and dates keep, shown on the map and in the
// table before anything is estimated. An item whose place or date is not
// known is kept: the engine decides about it from its whole document.
import type { ItemSummary } from "./bindings";
import { type Bbox, dateRange } from "./selection.svelte";

/** Whether box `b` (west, south, east, north) meets `area`; a box across the antimeridian (west > east) counts on both sides. */
function meets(b: (number | null)[], area: Bbox): boolean {
  if (b.length < 4 || b.some((v) => v == null)) return true;
  const [w, s, e, n] = b as number[];
  const [aw, as, ae, an] = area;
  if (s > an || n < as) return false;
  const spans: [number, number][] = w <= e ? [[w, e]] : [[w, 180], [-180, e]];
  return spans.some(([x0, x1]) => x0 <= ae && x1 >= aw);
}

/** Whether the day of `datetime` falls in `from`..`to` (YYYY-MM-DD, either may be empty). */
function within(datetime: string, from: string, to: string): boolean {
  const day = datetime.slice(0, 10);
  return (!from || day >= from) && (!to || day <= to);
}

/** The items that `area` and the dates `from`..`to` keep (the list itself when nothing narrows it). */
export function narrow(items: ItemSummary[], area: Bbox | null, from: string, to: string): ItemSummary[] {
  const range = dateRange(from, to);
  const dates = typeof range === "string" ? { from: from.trim(), to: to.trim() } : null;
  if (!area && !dates) return items;
  return items.filter(
    (item) =>
      (!area || !item.bbox || meets(item.bbox, area)) &&
      (!dates || !item.datetime || within(item.datetime, dates.from, dates.to)),
  );
}
