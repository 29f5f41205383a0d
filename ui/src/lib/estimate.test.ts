import { describe, expect, it } from "vitest";
import type { Estimate } from "./bindings";
import { assetChoices, describe as lines, readingChoices, roomWarning, typeName } from "./estimate";

function estimate(over: Partial<Estimate> = {}, counts: Partial<Estimate["counts"]> = {}): Estimate {
  return {
    job: 1,
    counts: { items: 3, assets: 6, done: 0, skipped: 0, failed: 0, pending: 6, bytes_expected: 6e9, bytes_done: 0, items_failed: 0, bytes_kept: 0, ...counts },
    bytes_to_copy: 6e9,
    free_bytes: 100e9,
    problems: [],
    requester_pays: false,
    ...over,
  };
}

describe("the estimate", () => {
  it("says what will be copied and what is already there", () => {
    expect(lines(estimate({ bytes_to_copy: 4e9 }, { done: 2, bytes_done: 2e9 }))).toEqual([
      "3 items, 6 assets",
      "4.0 GB to copy",
      "2 assets (2.0 GB) already mirrored",
    ]);
  });

  it("says so when nothing matches", () => {
    expect(lines(estimate({ bytes_to_copy: 0 }, { items: 0, assets: 0 })).at(-1)).toMatch(/Nothing matches/);
  });

  it("warns when the disk has not got the room", () => {
    expect(roomWarning(estimate())).toBeNull();
    expect(roomWarning(estimate({ free_bytes: null }))).toBeNull();
    const warning = roomWarning(estimate({ free_bytes: 1e9 }));
    expect(warning).toMatch(/1.0 GB free/);
    expect(warning).toMatch(/needs 6.0 GB/);
  });
});

describe("the asset filter's choices", () => {
  it("are names, roles and file types apart, most common first", () => {
    const items = [
      { assets: [{ key: "red", roles: ["data"], media_type: "image/tiff" }, { key: "thumbnail", roles: ["thumbnail"] }] },
      { assets: [{ key: "red", roles: ["data"], media_type: null }] },
    ];
    expect(assetChoices(items)).toEqual({ keys: ["red", "thumbnail"], roles: ["data", "thumbnail"], types: ["image/tiff"] });
  });

  it("name common file types in words, with the media type", () => {
    expect(typeName("image/tiff; application=geotiff; profile=cloud-optimized")).toMatch(/^Cloud-optimized GeoTIFF \(/);
    expect(typeName("image/png")).toBe("PNG image (image/png)");
    expect(typeName("application/x-weird")).toBe("application/x-weird");
  });
});

describe("where the files can be read from", () => {
  it("lists the alternates most offered first, and tells when a bucket is in play", () => {
    const asset = (href: string, alternates: string[]) => ({ href, alternates });
    expect(readingChoices([{ assets: [asset("https://x/a.tif", [])] }])).toEqual({ alternates: [], s3: false });
    expect(readingChoices([{ assets: [asset("s3://bucket/a.tif", [])] }])).toEqual({ alternates: [], s3: true });
    expect(
      readingChoices([
        { assets: [asset("https://x/a.tif", ["https", "s3"]), asset("https://x/b.tif", ["s3"])] },
        { assets: [asset("https://x/c.tif", ["s3"])] },
      ]),
    ).toEqual({ alternates: ["s3", "https"], s3: true });
  });

  it("says when the person's account is billed", () => {
    expect(lines(estimate({ requester_pays: true })).join(" ")).toContain("bills your AWS account");
    expect(lines(estimate()).join(" ")).not.toContain("bills");
  });
});
