// The jobs list, kept up to date from the engine's events: progress four
// times a second, failures as they happen, a line in the log for each step.
import type { Event, JobStatus, Snapshot } from "./bindings";
import { bytes, plural } from "./format";

export interface LogLine {
  at: Date;
  text: string;
  kind: "info" | "problem" | "failed";
}

const LOG_LINES = 500;

export class JobsState {
  list = $state<JobStatus[]>([]);
  progress = $state<Record<number, Snapshot>>({});
  logs = $state<Record<number, LogLine[]>>({});
  /** Why a job stopped on an error, until it runs again. */
  stopped = $state<Record<number, string>>({});

  running = $derived(this.list.filter((j) => j.running).length);

  /** Replaces the list (after a refresh from the engine). */
  set(list: JobStatus[]) {
    this.list = list;
  }

  job(id: number): JobStatus | undefined {
    return this.list.find((j) => j.job.id === id);
  }

  log(id: number, text: string, kind: LogLine["kind"] = "info") {
    const lines = this.logs[id] ?? [];
    lines.push({ at: new Date(), text, kind });
    if (lines.length > LOG_LINES) lines.splice(0, lines.length - LOG_LINES);
    this.logs[id] = lines;
  }

  /** Applies one engine event; returns true when the list should be read again. */
  apply(event: Event): boolean {
    switch (event.type) {
      case "progress": {
        this.progress[event.job] = event;
        const job = this.job(event.job);
        if (job) job.running = true;
        return false;
      }
      case "started":
        delete this.stopped[event.job];
        this.log(event.job, "Copying started.");
        return true;
      case "plan":
        this.log(
          event.job,
          `Planned: ${plural(event.items, "item")}, ${plural(event.assets, "asset")}, ${bytes(event.bytes)}` +
            (event.already_done > 0 ? `, ${event.already_done} already there.` : "."),
        );
        return false;
      case "problem":
        this.log(event.job, `${event.href}: ${event.reason}`, "problem");
        return false;
      case "asset_failed":
        this.log(event.job, `Could not copy ${event.href}: ${event.reason}`, "failed");
        return false;
      case "stopped":
        this.log(event.job, `Stopped: ${event.reason}`, "failed");
        this.stopped[event.job] = event.reason;
        return true;
      case "finished": {
        const c = event.counts;
        this.log(
          event.job,
          event.interrupted
            ? "Stopped. Everything copied so far is kept; Resume continues."
            : `Finished: ${plural(c.done + c.skipped, "asset")} verified` +
                (c.failed > 0 ? `, ${c.failed} failed.` : "."),
          c.failed > 0 ? "failed" : "info",
        );
        const job = this.job(event.job);
        if (job) {
          job.running = false;
          job.counts = c;
        }
        return true;
      }
    }
    return false;
  }
}

/** Done and total for a job's bar: the live snapshot, else its counts. */
export function barOf(job: JobStatus, live: Snapshot | undefined) {
  if (live && job.running) {
    return {
      bytesDone: live.bytes_done,
      bytesTotal: live.bytes_total,
      filesDone: live.files_done,
      filesTotal: live.files_total,
      failed: live.files_failed,
      rate: live.rate,
      eta: live.eta_seconds,
    };
  }
  const c = job.counts;
  return {
    bytesDone: c.bytes_done,
    bytesTotal: c.bytes_expected,
    filesDone: c.done + c.skipped,
    filesTotal: c.assets,
    failed: c.failed,
    rate: 0,
    eta: null,
  };
}

export const jobs = new JobsState();
