// Checks of mirrors asked for on the Mirrors screen. They live here, not in
// the screen, so that leaving the screen neither loses a check under way nor
// lets a second one start beside it.
import type { Report } from "./bindings";

class MirrorChecks {
  /** The destination being checked now, if any. */
  checking = $state<string | null>(null);
  /** What the last check of each destination found, this session. */
  reports = $state<Record<string, Report>>({});
}

export const mirrorChecks = new MirrorChecks();
