// The jobs list, kept up to date from the engine's events: progress four
// times a second, and each step (the engine keeps its sentence in the log).
import type { Event, JobStatus, Snapshot } from "./bindings";

export class JobsState {
  list = $state<JobStatus[]>([]);
  progress = $state<Record<number, Snapshot>>({});
  /** How many steps (not progress samples) each job has taken in this session:
   * its kept log is read again when this moves. */
  steps = $state<Record<number, number>>({});
  /** The servers each running job waits for (they cannot be reached), with
   * what the engine said of each. */
  waiting = $state<Record<number, Record<string, string>>>({});

  running = $derived(this.list.filter((j) => j.running).length);

  /** Replaces the list (after a refresh from the engine). */
  set(list: JobStatus[]) {
    this.list = list;
  }

  #asked = 0;

  /** Reads the list with `read` and keeps it, unless a later read was asked
   * for meanwhile: answers can come back out of order, and an older one
   * would show a finished job as still copying. */
  async refresh(read: () => Promise<JobStatus[]>) {
    const ticket = ++this.#asked;
    const list = await read();
    if (ticket === this.#asked) this.set(list);
  }

  job(id: number): JobStatus | undefined {
    return this.list.find((j) => j.job.id === id);
  }

  /** Applies one engine event; returns true when the list should be read again. */
  apply(event: Event): boolean {
    if (event.type === "progress") {
      this.progress[event.job] = event;
      // A job the engine runs that the list has not caught up with yet; not
      // one that is winding down after a pause or a cancel.
      const job = this.job(event.job);
      if (job && job.job.state === "running") job.running = true;
      return false;
    }
    // Every other event is a step the engine keeps in the job's log.
    this.steps[event.job] = (this.steps[event.job] ?? 0) + 1;
    switch (event.type) {
      case "waiting": {
        const servers = { ...(this.waiting[event.job] ?? {}) };
        if (!event.waiting) delete servers[event.server];
        else servers[event.server] = event.reason;
        this.waiting[event.job] = servers;
        return false;
      }
      // The list says why a job stopped (kept in the state file).
      case "started":
      case "stopped":
        delete this.waiting[event.job];
        return true;
      case "flagged":
        return true;
      case "finished": {
        delete this.waiting[event.job];
        const job = this.job(event.job);
        if (job) {
          job.running = false;
          job.counts = event.counts;
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
    failed: c.failed + c.items_failed,
    rate: 0,
    eta: null,
  };
}

export const jobs = new JobsState();
