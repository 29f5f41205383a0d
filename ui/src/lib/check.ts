// What a check of a mirror found, in sentences.
import type { Finding, Report } from "./bindings";
import { plural } from "./format";

/** Findings that leave the mirror not whole: not repaired, not an extra file. */
export function problems(report: Report): Finding[] {
  return report.findings.filter((f) => !f.repaired && f.kind !== "extra");
}

/** Files no entry of the catalog names: said, never touched. */
export function extras(report: Report): Finding[] {
  return report.findings.filter((f) => f.kind === "extra");
}

/** The headline of a check. */
export function headline(report: Report): string {
  const wrong = problems(report).length;
  const checked = `${report.verified.toLocaleString("en")} of ${plural(report.assets, "file")} match their checksums`;
  const repaired = report.repaired > 0 ? `; ${plural(report.repaired, "file")} put right` : "";
  if (wrong === 0) return `The copy is whole: ${checked}${repaired}.`;
  return `${plural(wrong, "problem")}: ${checked}${repaired}.`;
}

const KINDS: Record<string, string> = {
  missing: "Missing",
  changed: "Damaged",
  edited: "Edited",
  extra: "Not in the catalog",
  unchecked: "Cannot be checked",
  catalog: "Catalog",
  not_mirrored: "Not copied",
};

/** The label of a finding. */
export function kindOf(finding: Finding): string {
  return finding.repaired ? "Repaired" : (KINDS[finding.kind] ?? finding.kind);
}
