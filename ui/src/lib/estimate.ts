// What an estimate means for the person about to start a job.
import type { Estimate } from "./bindings";
import { bytes, plural } from "./format";

/** The lines shown before Start. */
export function describe(estimate: Estimate): string[] {
  const c = estimate.counts;
  const lines = [
    `${plural(c.items, "item")}, ${plural(c.assets, "asset")}`,
    `${bytes(estimate.bytes_to_copy)} to copy`,
  ];
  const already = c.done + c.skipped;
  if (already > 0) lines.push(`${plural(already, "asset")} (${bytes(c.bytes_done)}) already mirrored`);
  if (c.assets === 0) lines.push("Nothing matches this selection: widen the area, the dates or the asset filter.");
  return lines;
}

/** A warning when the destination disk has not got the room; null when it has, or when it cannot be told. */
export function roomWarning(estimate: Estimate): string | null {
  if (estimate.free_bytes == null) return null;
  if (estimate.free_bytes >= estimate.bytes_to_copy) return null;
  return (
    `The destination disk has ${bytes(estimate.free_bytes)} free, but this job needs ` +
    `${bytes(estimate.bytes_to_copy)}. Free some space or choose another place; ` +
    `if you start anyway, the job will pause when the disk is full.`
  );
}

type AssetLike = { key: string; roles: string[]; media_type?: string | null };

/** Asset keys, roles and media types seen in the items, most common first: the filter's choices. */
export function assetChoices(items: { assets: AssetLike[] }[], most = 24): string[] {
  const seen = new Map<string, number>();
  const count = (name: string) => seen.set(name, (seen.get(name) ?? 0) + 1);
  for (const item of items) {
    for (const asset of item.assets) {
      count(asset.key);
      asset.roles.forEach(count);
      if (asset.media_type) count(asset.media_type);
    }
  }
  return [...seen.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, most)
    .map(([name]) => name);
}
