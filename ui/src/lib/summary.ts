// What a job copies, in a line: the selection it was started with.
import type { Selection } from "./bindings";

/** The selection `value` (a job's, as stored) in words. */
export function describeSelection(value: unknown): string {
  const s = (value ?? {}) as Selection;
  const parts: string[] = [];
  const collections = s.collections ?? [];
  if (collections.length) parts.push(`${collections.length === 1 ? "collection" : "collections"} ${collections.join(", ")}`);
  const left = s.exclude_collections ?? [];
  if (left.length) parts.push(`without the ${left.length === 1 ? "collection" : "collections"} ${left.join(", ")}`);
  if (s.bbox) parts.push(`area ${s.bbox.split(",").join(", ")}`);
  if (s.datetime) {
    const [from, to] = s.datetime.split("/");
    const day = (d: string | undefined) => (!d || d === ".." ? null : d.slice(0, 10));
    const [a, b] = [day(from), day(to)];
    parts.push(a && b ? `from ${a} to ${b}` : a ? `from ${a} on` : b ? `until ${b}` : "any date");
  }
  const assets = s.assets ?? [];
  parts.push(assets.length ? `files: ${assets.join(", ")}` : "every file of each item");
  if (s.filter) parts.push(`where ${s.filter}`);
  const count = (n: number) => `${n.toLocaleString("en")} ${n === 1 ? "item" : "items"}`;
  if (s.ids?.length) parts.push(`only ${count(s.ids.length)} picked`);
  if (s.exclude?.length) parts.push(`${count(s.exclude.length)} left out`);
  if (s.max_items != null) parts.push(`at most ${s.max_items.toLocaleString("en")} items`);
  const text = parts.join(" · ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A moment as a person reads it: the time for today, else the date and time. */
export function when(at: string): string {
  const date = new Date(at);
  return date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}
