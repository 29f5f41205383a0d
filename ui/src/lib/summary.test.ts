import { describe, expect, it } from "vitest";
import { describeSelection } from "./summary";

describe("a job's selection in words", () => {
  it("says everything when nothing narrows it", () => {
    expect(describeSelection({})).toBe("Every file of each item");
    expect(describeSelection(null)).toBe("Every file of each item");
  });

  it("names collections, area, dates, files and a limit", () => {
    expect(
      describeSelection({ collections: ["s2"], bbox: "5,45,6,46", datetime: "2024-06-01T00:00:00Z/..", assets: ["red", "nir"], max_items: 5000 }),
    ).toBe("Collection s2 · area 5, 45, 6, 46 · from 2024-06-01 on · files: red, nir · at most 5,000 items");
    expect(describeSelection({ collections: ["a", "b"], datetime: "../2024-01-31" })).toBe("Collections a, b · until 2024-01-31 · every file of each item");
    expect(describeSelection({ datetime: "2024-01-01/2024-02-01" })).toBe("From 2024-01-01 to 2024-02-01 · every file of each item");
    expect(describeSelection({ filter: "eo:cloud_cover < 20" })).toBe("Every file of each item · where eo:cloud_cover < 20");
    expect(describeSelection({ ids: ["a", "b"] })).toBe("Every file of each item · only 2 items picked");
    expect(describeSelection({ exclude: ["a"] })).toBe("Every file of each item · 1 item left out");
    expect(describeSelection({ exclude_collections: ["glaciers"] })).toBe("Without the collection glaciers · every file of each item");
  });
});
