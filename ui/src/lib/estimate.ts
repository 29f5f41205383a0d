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
  if (estimate.requester_pays) {
    lines.push("Requester pays: any S3 bucket this job reads bills your AWS account for the reads, not its owner.");
  }
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

/** The asset filter's choices, each kind apart and most common first: the
 * assets' names (keys), their roles, and their file types (media types). */
export type AssetChoices = { keys: string[]; roles: string[]; types: string[] };

export function assetChoices(items: { assets: AssetLike[] }[], most = 16): AssetChoices {
  const keys = new Map<string, number>();
  const roles = new Map<string, number>();
  const types = new Map<string, number>();
  const count = (seen: Map<string, number>, name: string) => seen.set(name, (seen.get(name) ?? 0) + 1);
  for (const item of items) {
    for (const asset of item.assets) {
      count(keys, asset.key);
      asset.roles.forEach((role) => count(roles, role));
      if (asset.media_type) count(types, asset.media_type);
    }
  }
  const top = (seen: Map<string, number>) =>
    [...seen.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, most)
      .map(([name]) => name);
  return { keys: top(keys), roles: top(roles), types: top(types) };
}

/** A media type in words where it is a common one ("image/tiff; application=geotiff" is "GeoTIFF"). */
export function typeName(mediaType: string): string {
  const t = mediaType.toLowerCase().replace(/\s+/g, "");
  if (t.includes("cloud-optimized")) return `Cloud-optimized GeoTIFF (${mediaType})`;
  if (t.includes("geotiff")) return `GeoTIFF (${mediaType})`;
  const known: Record<string, string> = {
    "image/tiff": "TIFF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "application/json": "JSON",
    "application/geo+json": "GeoJSON",
    "application/x-parquet": "Parquet",
    "application/vnd.apache.parquet": "Parquet",
    "application/x-netcdf": "NetCDF",
    "application/x-hdf5": "HDF5",
    "application/xml": "XML",
    "text/xml": "XML",
    "text/html": "web page",
    "text/plain": "text",
    "application/zip": "ZIP archive",
  };
  const name = known[t.split(";")[0]];
  return name ? `${name} (${mediaType})` : mediaType;
}

/** Where the loaded items' files can be read from: the names of the other
 * addresses their assets offer (most common first), and whether any is in
 * an S3 bucket (where requester-pays applies). */
export type ReadingChoices = { alternates: string[]; s3: boolean };

export function readingChoices(items: { assets: { href: string; alternates: string[] }[] }[]): ReadingChoices {
  const counts = new Map<string, number>();
  let s3 = false;
  for (const item of items) {
    for (const asset of item.assets) {
      if (asset.href.startsWith("s3://")) s3 = true;
      for (const name of asset.alternates) {
        counts.set(name, (counts.get(name) ?? 0) + 1);
        if (/^s3/i.test(name)) s3 = true;
      }
    }
  }
  const alternates = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([name]) => name);
  return { alternates, s3 };
}
