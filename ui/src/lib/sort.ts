// The order of the items table: by a column, either way, or by id.
import type { ItemSummary } from "./bindings";

export type Column = "id" | "collection" | "datetime" | "assets" | "size";

export interface Order {
  column: Column;
  descending: boolean;
}

/** The sum of the sizes the item's assets declare, or null if none does. */
export function declaredSize(item: ItemSummary): number | null {
  let sum: number | null = null;
  for (const asset of item.assets) if (asset.size != null) sum = (sum ?? 0) + asset.size;
  return sum;
}

// "item-9" before "item-10".
const names = new Intl.Collator("en", { numeric: true });

function key(item: ItemSummary, column: Column): string | number | null {
  switch (column) {
    case "id":
      return item.id;
    case "collection":
      return item.collection;
    case "datetime":
      return item.datetime;
    case "assets":
      return item.assets.length;
    case "size":
      return declaredSize(item);
  }
}

/**
 * The items in `order` (a new array), by id when there is no order. Items
 * without a value (no date, no declared size) come last either
 * way; ties go by id.
 */
export function sorted(items: ItemSummary[], order: Order | null): ItemSummary[] {
  // Without a chosen order, by id: the same rows in the same order on every
  // visit (a catalog's items arrive in the order its servers answer).
  order ??= { column: "id", descending: false };
  const keys = items.map((item) => key(item, order.column));
  const sign = order.descending ? -1 : 1;
  const compare = (a: string | number, b: string | number) =>
    typeof a === "number" && typeof b === "number" ? a - b : names.compare(String(a), String(b));
  const index = items.map((_, i) => i);
  // Ties go by id, so that the order does not depend on the order items arrived in.
  const tie = (i: number, j: number) => names.compare(items[i].id, items[j].id) || i - j;
  index.sort((i, j) => {
    const a = keys[i], b = keys[j];
    if (a == null || b == null) return a == null && b == null ? tie(i, j) : a == null ? 1 : -1;
    return sign * compare(a, b) || tie(i, j);
  });
  return index.map((i) => items[i]);
}

/** The order after a click on `column`: ascending, then descending, then none. */
export function next(order: Order | null, column: Column): Order | null {
  if (order?.column !== column) return { column, descending: false };
  return order.descending ? null : { column, descending: true };
}
