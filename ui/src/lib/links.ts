// Links a catalog gives, as the item page shows them.
import type { LinkSummary } from "./bindings";

/** Whether `href` is an http(s) address, the only kind the app opens. */
export function isWebAddress(href: string): boolean {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

const RELATIONS: Record<string, string> = {
  license: "The license",
  via: "Where it came from",
  alternate: "Another form of it",
  "cite-as": "How to cite it",
  describedby: "Its description",
  preview: "A preview",
  "derived_from": "What it was made from",
};

/** A link's words: its title, else what its relation means, else the relation. */
export function linkName(link: LinkSummary): string {
  return link.title?.trim() || RELATIONS[link.rel] || link.rel;
}
