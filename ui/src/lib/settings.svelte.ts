// The settings as the Settings screen edits them: a draft beside what is
// saved, the bandwidth schedule's lines checked as typed, and the defaults a
// new job takes from them (where it goes, how many transfers).
import type { AppSettings, Slot } from "./bindings";

export const DEFAULTS: AppSettings = {
  destination: "",
  concurrency: 8,
  per_host: 6,
  schedule: [],
  start_with_system: false,
  notifications: true,
};

/** The most transfers at once the engine accepts in Settings. */
export const MOST_TRANSFERS = 64;

const TIME = /^([01]?\d|2[0-3]):([0-5]\d)$/;
// As the engine reads a rate: 500K, 10M, 1.5G, 250000, 10MB/s, 10MiB; off for none.
const RATE = /^(\d+(\.\d+)?|\.\d+)\s*([kmg])?(i?b)?(\/s)?$/i;
const NO_LIMIT = ["", "0", "off", "none", "unlimited"];

/** Minutes since midnight for "HH:MM", or null. */
export function minuteOf(time: string): number | null {
  const found = TIME.exec(time.trim());
  return found ? Number(found[1]) * 60 + Number(found[2]) : null;
}

/** "7:5"-free form of a minute of the day: 425 -> "07:05". */
export function clock(minute: number): string {
  return `${String(Math.floor(minute / 60)).padStart(2, "0")}:${String(minute % 60).padStart(2, "0")}`;
}

/** Whether `rate` means no limit. */
export function unlimited(rate: string): boolean {
  return NO_LIMIT.includes(rate.trim().toLowerCase());
}

/** What is wrong with the schedule's lines, in words; empty when it can be saved. */
export function scheduleProblems(slots: Slot[]): string[] {
  const out: string[] = [];
  const seen = new Set<number>();
  slots.forEach((slot, i) => {
    const line = `Line ${i + 1}`;
    const minute = minuteOf(slot.from);
    if (minute === null) out.push(`${line}: "${slot.from}" is not a time of day like 08:00 or 18:30.`);
    else if (seen.has(minute)) out.push(`${line}: ${clock(minute)} is given twice; keep one limit for each time.`);
    else seen.add(minute);
    if (!unlimited(slot.rate) && !(RATE.test(slot.rate.trim()) && parseFloat(slot.rate.trim().replace(/^\./, "0.")) > 0))
      out.push(`${line}: "${slot.rate}" is not a rate like 500K, 10M or 1G (leave it empty for no limit).`);
  });
  return out;
}

/** The schedule in words, one line per stretch of the day, in order of time. */
export function describeSchedule(slots: Slot[]): string[] {
  const timed = slots
    .map((slot) => ({ minute: minuteOf(slot.from), rate: slot.rate.trim() }))
    .filter((s): s is { minute: number; rate: string } => s.minute !== null)
    .sort((a, b) => a.minute - b.minute);
  const limit = (rate: string) => (unlimited(rate) ? "no limit" : `at most ${rate.replace(/\/s$/i, "")} per second`);
  if (timed.length === 0) return ["No limit at any time."];
  if (timed.length === 1) return [`All day: ${limit(timed[0].rate)}.`];
  return timed.map((s, i) => {
    const next = timed[(i + 1) % timed.length];
    return `${clock(s.minute)} to ${clock(next.minute)}: ${limit(s.rate)}.`;
  });
}

/** The folder a new mirror of `title` goes to under the settings' folder. */
export function mirrorFolder(base: string, title: string): string {
  const trimmed = base.trim();
  if (!trimmed) return "";
  const slug =
    title
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .replace(/[^\p{L}\p{N}]+/gu, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 60)
      .replace(/-+$/, "") || "mirror";
  const windows = trimmed.includes("\\") && !trimmed.includes("/");
  const separator = windows ? "\\" : "/";
  return trimmed.endsWith("/") || trimmed.endsWith("\\") ? `${trimmed}${slug}` : `${trimmed}${separator}${slug}`;
}

function copy(settings: AppSettings): AppSettings {
  return { ...settings, schedule: settings.schedule.map((s) => ({ ...s })) };
}

export class SettingsState {
  /** As saved (what new jobs use). */
  saved = $state<AppSettings>(copy(DEFAULTS));
  /** As the Settings screen shows them, unsaved changes included. */
  draft = $state<AppSettings>(copy(DEFAULTS));

  /** The destination last filled in from the settings' folder (a place
   * typed by the person is never replaced). */
  filled = "";

  changed = $derived(JSON.stringify(this.draft) !== JSON.stringify(this.saved));

  /** What keeps the draft from being saved, in words. */
  problems = $derived.by(() => {
    const out: string[] = [];
    for (const [value, what] of [
      [this.draft.concurrency, "Transfers at once"],
      [this.draft.per_host, "Transfers from one server"],
    ] as const) {
      if (!Number.isInteger(value) || value < 1 || value > MOST_TRANSFERS)
        out.push(`${what} must be a number from 1 to ${MOST_TRANSFERS}.`);
    }
    return [...out, ...scheduleProblems(this.draft.schedule)];
  });

  /** Takes settings as the app has them (at start, and after a save). */
  take(settings: AppSettings) {
    this.saved = copy(settings);
    this.draft = copy(settings);
  }

  /** Reads them with `read` (ipc.settings). */
  async load(read: () => Promise<AppSettings>) {
    this.take(await read());
  }

  /** Saves the draft with `send` (ipc.saveSettings); what comes back is what holds. */
  async save(send: (settings: AppSettings) => Promise<AppSettings>) {
    const draft = copy(this.draft);
    draft.destination = draft.destination.trim();
    draft.schedule = draft.schedule
      .map((s) => ({ from: clock(minuteOf(s.from) ?? 0), rate: unlimited(s.rate) ? "" : s.rate.trim() }))
      .sort((a, b) => a.from.localeCompare(b.from));
    this.take(await send(draft));
  }

  /** Drops the unsaved changes. */
  revert() {
    this.draft = copy(this.saved);
  }

  /** A new line in the schedule, an hour after the last one (08:00 first). */
  addSlot() {
    const minutes = this.draft.schedule.map((s) => minuteOf(s.from)).filter((m): m is number => m !== null);
    let minute = minutes.length ? (Math.max(...minutes) + 60) % 1440 : 8 * 60;
    for (let tries = 0; tries < 1440 && minutes.includes(minute); tries++) minute = (minute + 1) % 1440;
    this.draft.schedule.push({ from: clock(minute), rate: "" });
  }

  removeSlot(index: number) {
    this.draft.schedule.splice(index, 1);
  }
}

export const settings = new SettingsState();
