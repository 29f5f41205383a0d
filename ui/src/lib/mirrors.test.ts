import { describe, expect, it } from "vitest";
import type { MirrorEntry } from "./bindings";
import { health, holds, title } from "./mirrors";

function mirror(over: Partial<MirrorEntry> = {}): MirrorEntry {
  return {
    destination: "/mnt/archive/sentinel",
    jobs: [1],
    names: ["Sentinel-2 L2A"],
    files: 1204,
    bytes: 3_200_000_000,
    failed: 0,
    flagged: 0,
    last_copied: "2026-12-01T10:00:00Z",
    unfinished: false,
    last_check: null,
    catalog: "/mnt/archive/sentinel/catalog.json",
    ...over,
  };
}

const check = (problems: number) => ({ checked_at: "2026-12-02T10:00:00Z", files: 1204, verified: 1204 - problems, problems });

describe("a mirror's health", () => {
  it("says a mirror never checked was verified as copied", () => {
    expect(health(mirror())).toEqual({ state: "unchecked", words: "Each file was verified as it was copied; not checked since." });
  });

  it("says whole with how many files matched at the last check", () => {
    const said = health(mirror({ last_check: check(0) }));
    expect(said.state).toBe("whole");
    expect(said.words).toMatch(/^Whole at its last check \(.+\): 1,204 of 1,204 files matched their checksums\.$/);
  });

  it("puts what needs attention first: failed files, then changed ones, then a bad check", () => {
    expect(health(mirror({ failed: 2, flagged: 1, last_check: check(3) })).words).toBe(
      "2 files could not be copied: open its job to see why and try again.",
    );
    expect(health(mirror({ flagged: 1, last_check: check(3) })).words).toBe(
      "1 file changed or went missing since copied: check the copy and repair it.",
    );
    const bad = health(mirror({ last_check: check(3) }));
    expect(bad.state).toBe("attention");
    expect(bad.words).toMatch(/^3 problems at its last check/);
  });

  it("does not call whole a mirror copied into again since its last check", () => {
    const said = health(mirror({ last_check: check(0), last_copied: "2026-12-03T10:00:00Z" }));
    expect(said.state).toBe("unchecked");
    expect(said.words).toMatch(/^Copied again since its last check/);
  });

  it("says a mirror a job still copies into is not done", () => {
    expect(health(mirror({ unfinished: true })).state).toBe("copying");
  });
});

describe("what a mirror is called and holds", () => {
  it("names it after its jobs, each name once", () => {
    expect(title(mirror({ names: ["A", "A"] }))).toBe("A");
    expect(title(mirror({ names: ["A", "B"] }))).toBe("A and B");
    expect(title(mirror({ names: ["A", "B", "C", "D"] }))).toBe("A, B and 2 more");
  });

  it("says its files and bytes in the units used everywhere", () => {
    expect(holds(mirror())).toBe("1,204 files, 3.2 GB");
  });
});
