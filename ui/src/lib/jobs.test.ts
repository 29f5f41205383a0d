import { describe, expect, it } from "vitest";
import type { JobStatus } from "./bindings";
import { JobsState, barOf } from "./jobs.svelte";

function status(id: number, running = true): JobStatus {
  return {
    job: {
      id,
      source_url: "http://127.0.0.1/catalog.json",
      destination: "/tmp/m",
      selection: {},
      state: running ? "running" : "paused",
      limit_rate: null,
      concurrency: 8,
      per_host: 6,
      created_at: "2026-01-01T00:00:00Z",
      keep_versions: true,
      mirror_deletions: false,
      stop_reason: null,
      name: null,
      finished_at: null,
      access: {},
    },
    counts: { items: 2, assets: 4, done: 1, skipped: 0, failed: 0, pending: 3, bytes_expected: 400, bytes_done: 100, items_failed: 0, bytes_kept: 0 },
    running,
    flags: [],
    flag_count: 0,
  };
}

describe("the job list", () => {
  it("follows progress events, job by job", () => {
    const jobs = new JobsState();
    jobs.set([status(1), status(2)]);
    const refresh = jobs.apply({
      type: "progress", job: 2, bytes_done: 300, bytes_total: 400, files_done: 3, files_total: 4, files_failed: 0, rate: 50, eta_seconds: 2,
    });
    expect(refresh).toBe(false);
    expect(barOf(jobs.job(2)!, jobs.progress[2])).toMatchObject({ bytesDone: 300, filesDone: 3, eta: 2 });
    expect(barOf(jobs.job(1)!, jobs.progress[1])).toMatchObject({ bytesDone: 100, filesDone: 1, rate: 0 });
  });

  it("keeps the newest read of the list when answers come back out of order", async () => {
    const jobs = new JobsState();
    let answerOld: (list: JobStatus[]) => void = () => {};
    const old = jobs.refresh(() => new Promise((done) => (answerOld = done)));
    await jobs.refresh(async () => [status(1, false)]);
    answerOld([status(1, true)]);
    await old;
    expect(jobs.job(1)!.running).toBe(false);
    expect(jobs.job(1)!.job.state).toBe("paused");
  });

  it("keeps the servers a job waits for until they answer or the job ends", () => {
    const jobs = new JobsState();
    jobs.set([status(1)]);
    const reason = "cannot be reached (it may be down, or this computer may be offline)";
    expect(jobs.apply({ type: "waiting", job: 1, server: "https://a.test", waiting: true, reason })).toBe(false);
    jobs.apply({ type: "waiting", job: 1, server: "https://b.test", waiting: true, reason });
    expect(jobs.waiting[1]).toEqual({ "https://a.test": reason, "https://b.test": reason });
    jobs.apply({ type: "waiting", job: 1, server: "https://a.test", waiting: false, reason: "answers again; its files are copied" });
    expect(jobs.waiting[1]).toEqual({ "https://b.test": reason });
    expect(jobs.steps[1]).toBe(3);
    jobs.apply({ type: "stopped", job: 1, reason: "paused" });
    expect(jobs.waiting[1]).toBeUndefined();
  });

  it("does not take a job winding down after a pause for a running one", () => {
    const jobs = new JobsState();
    jobs.set([status(1, false)]);
    jobs.apply({ type: "progress", job: 1, bytes_done: 1, bytes_total: 2, files_done: 0, files_total: 1, files_failed: 0, rate: 1, eta_seconds: 1 });
    expect(jobs.job(1)!.running).toBe(false);
    expect(jobs.running).toBe(0);
  });

  it("takes the final counts when a job finishes", () => {
    const jobs = new JobsState();
    jobs.set([status(1)]);
    const counts = { items: 2, assets: 4, done: 3, skipped: 0, failed: 1, pending: 0, bytes_expected: 400, bytes_done: 300, items_failed: 0, bytes_kept: 0 };
    expect(jobs.apply({ type: "finished", job: 1, counts, interrupted: false })).toBe(true);
    expect(jobs.job(1)!.running).toBe(false);
    expect(jobs.job(1)!.counts).toEqual(counts);
    expect(jobs.running).toBe(0);
  });

  it("counts each step of a job, not its progress samples, so its log is read again", () => {
    const jobs = new JobsState();
    jobs.apply({ type: "asset_failed", job: 7, href: "http://x/a.tif", reason: "the server answered 404" });
    jobs.apply({ type: "problem", job: 7, href: "http://x/item.json", reason: "it is not valid JSON" });
    jobs.apply({ type: "progress", job: 7, bytes_done: 1, bytes_total: 2, files_done: 0, files_total: 1, files_failed: 1, rate: 1, eta_seconds: 1 });
    expect(jobs.steps[7]).toBe(2);
    expect(jobs.steps[8]).toBeUndefined();
  });

  it("reads the list again when a job stops or starts (the list says why it stopped)", () => {
    const jobs = new JobsState();
    expect(jobs.apply({ type: "stopped", job: 3, reason: "the disk is full" })).toBe(true);
    expect(jobs.apply({ type: "started", job: 3, files_total: 1, bytes_total: 1 })).toBe(true);
  });
});
