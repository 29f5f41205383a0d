// Bucket destinations: which service an address names, and its login.
import type { BucketLogin } from "./bindings";

export type BucketKind = "s3" | "az" | "gs";

/** The service a destination names, or null for a folder. */
export function bucketKind(destination: string): BucketKind | null {
  const scheme = destination.trim().match(/^([a-z0-9]+):\/\//i)?.[1]?.toLowerCase();
  return scheme === "s3" || scheme === "az" || scheme === "gs" ? scheme : null;
}

/** `scheme://bucket` of a bucket address ("" for a folder). */
export function bucketOf(destination: string): string {
  if (!bucketKind(destination)) return "";
  const [scheme, rest] = destination.trim().split("://");
  return `${scheme.toLowerCase()}://${rest.split("/")[0]}`;
}

export function emptyLogin(): BucketLogin {
  return { key_id: "", secret: "", region: "", endpoint: "", key_file: "" };
}

/** Whether anything was typed. */
export function hasLogin(login: BucketLogin): boolean {
  return Object.values(login).some((v) => v.trim() !== "");
}
