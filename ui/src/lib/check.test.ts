import { describe, expect, it } from "vitest";
import type { Finding, Report } from "./bindings";
import { extras, headline, kindOf, problems } from "./check";

function finding(kind: Finding["kind"], repaired = false): Finding {
  return { kind, path: `c/i/${kind}.bin`, reason: "why", repaired };
}

function report(findings: Finding[], over: Partial<Report> = {}): Report {
  return { items: 3, assets: 3, verified: 3, repaired: 0, documents: 3, findings, ...over };
}

describe("a check of the copy", () => {
  it("says a whole copy is whole, extra files aside", () => {
    const whole = report([finding("extra")]);
    expect(problems(whole)).toEqual([]);
    expect(extras(whole)).toHaveLength(1);
    expect(headline(whole)).toBe("The copy is whole: 3 of 3 files match their checksums.");
  });

  it("counts what is wrong, and what a repair put right", () => {
    const damaged = report([finding("missing"), finding("changed"), finding("extra")], { verified: 1 });
    expect(headline(damaged)).toBe("2 problems: 1 of 3 files match their checksums.");
    const repaired = report([finding("missing", true), finding("edited", true)], { repaired: 2 });
    expect(headline(repaired)).toBe("The copy is whole: 3 of 3 files match their checksums; 2 files put right.");
    expect(kindOf(repaired.findings[0])).toBe("Repaired");
    expect(kindOf(finding("changed"))).toBe("Damaged");
  });
});
