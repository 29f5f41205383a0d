// How a mirror stands, in words, for the Mirrors screen: what it holds, and
// whether it needs attention (a job still copying, files that failed or
// changed, problems at its last check) or was whole when last checked.
import type { MirrorEntry } from "./bindings";
import { bytes, plural } from "./format";
import { when } from "./summary";

export type Health = "whole" | "attention" | "copying" | "unchecked";

/** The mirror's state and the sentence that says it. */
export function health(mirror: MirrorEntry): { state: Health; words: string } {
  const check = mirror.last_check;
  if (mirror.failed > 0)
    return { state: "attention", words: `${plural(mirror.failed, "file")} could not be copied: open its job to see why and try again.` };
  if (mirror.flagged > 0)
    return { state: "attention", words: `${plural(mirror.flagged, "file")} changed or went missing since copied: check the copy and repair it.` };
  if (check && check.problems > 0)
    return { state: "attention", words: `${plural(check.problems, "problem")} at its last check (${when(check.checked_at)}): check it again and repair it.` };
  if (mirror.unfinished) return { state: "copying", words: "A job is copying into it." };
  if (check && mirror.last_copied && check.checked_at < mirror.last_copied)
    return { state: "unchecked", words: `Copied again since its last check (${when(check.checked_at)}); each file was verified as it was copied.` };
  if (check)
    return { state: "whole", words: `Whole at its last check (${when(check.checked_at)}): ${check.verified.toLocaleString("en")} of ${plural(check.files, "file")} matched their checksums.` };
  return { state: "unchecked", words: "Each file was verified as it was copied; not checked since." };
}

/** "1,204 files, 3.2 GB". */
export function holds(mirror: MirrorEntry): string {
  return `${plural(mirror.files, "file")}, ${bytes(mirror.bytes)}`;
}

/** Its name: the names of the jobs that copy into it. */
export function title(mirror: MirrorEntry): string {
  const names = [...new Set(mirror.names)];
  if (names.length <= 2) return names.join(" and ");
  return `${names.slice(0, 2).join(", ")} and ${names.length - 2} more`;
}
