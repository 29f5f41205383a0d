// Which rows of a long list are on screen: only those are drawn, so a table
// of 100,000 rows scrolls like one of 20.

export interface Window {
  /** First row to draw. */
  start: number;
  /** One past the last row to draw. */
  end: number;
  /** Space above the first drawn row, in pixels. */
  before: number;
  /** Space below the last drawn row, in pixels. */
  after: number;
}

export function visibleRows(
  count: number,
  rowHeight: number,
  scrollTop: number,
  viewport: number,
  overscan = 8,
): Window {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(viewport / rowHeight);
  const start = Math.max(0, Math.min(count, first - overscan));
  const end = Math.min(count, first + shown + overscan);
  return { start, end, before: start * rowHeight, after: (count - end) * rowHeight };
}
