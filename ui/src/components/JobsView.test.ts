import { fireEvent, render, screen } from "@testing-library/svelte";
import { flushSync } from "svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { JobStatus } from "../lib/bindings";
import { ipc } from "../lib/ipc";
import { jobs } from "../lib/jobs.svelte";
import JobsView from "./JobsView.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    pauseJob: vi.fn(async () => null),
    resumeJob: vi.fn(async () => null),
    cancelJob: vi.fn(async () => null),
    setJobLimit: vi.fn(async () => null),
    limitNow: vi.fn(async () => ({ bytes_per_second: 1048576, until: "18:00" })),
    failures: vi.fn(async () => [
      { href: "http://127.0.0.1/a.bin", path: "c/i/a.bin", attempts: 5, reason: "the server kept answering 503" },
    ]),
    openFolder: vi.fn(async () => undefined),
    removeJob: vi.fn(async () => null),
    clearFinished: vi.fn(async () => 1),
    jobLog: vi.fn(async () => [
      { at: "2026-01-01T10:00:00Z", kind: "info", text: "Planned 1 item, 10 assets, 1000 B; 0 already there." },
      { at: "2026-01-01T10:05:00Z", kind: "failed", text: "Stopped: the disk at /tmp/mirror is full" },
    ]),
  },
  explain: (e: unknown) => String(e),
}));

function running(): JobStatus {
  return {
    job: {
      id: 4,
      source_url: "http://127.0.0.1/catalog.json",
      destination: "/tmp/mirror",
      selection: {},
      state: "running",
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
    counts: { items: 1, assets: 10, done: 0, skipped: 0, failed: 0, pending: 10, bytes_expected: 1000, bytes_done: 0, items_failed: 0, bytes_kept: 0 },
    running: true,
    flags: [],
    flag_count: 0,
  };
}

describe("the jobs screen", () => {
  beforeEach(() => {
    jobs.set([running()]);
    jobs.progress = {};
    vi.clearAllMocks();
  });

  it("says the limit the schedule in Settings sets for all jobs now", async () => {
    render(JobsView, { onchange: () => {} });
    expect(await screen.findByTestId("shared-limit")).toHaveProperty(
      "textContent",
      expect.stringContaining("All jobs together: at most 1M per second until 18:00"),
    );
  });

  it("moves the bar with progress events", () => {
    render(JobsView, { onchange: () => {} });
    const bar = screen.getByTestId("progress");
    expect(bar.getAttribute("aria-valuenow")).toBe("0");
    jobs.apply({ type: "progress", job: 4, bytes_done: 250, bytes_total: 1000, files_done: 2, files_total: 10, files_failed: 1, rate: 2_000_000, eta_seconds: 90 });
    flushSync();
    expect(bar.getAttribute("aria-valuenow")).toBe("25");
    const figures = screen.getByTestId("figures").textContent ?? "";
    expect(figures).toContain("2 of 10 files");
    expect(figures).toContain("2.0 MB/s");
    expect(figures).toContain("1 min 30 s left");
  });

  it("says which server a job waits for, until it answers", () => {
    render(JobsView, { onchange: () => {} });
    expect(screen.queryByTestId("waiting")).toBeNull();
    jobs.apply({ type: "progress", job: 4, bytes_done: 250, bytes_total: 1000, files_done: 2, files_total: 10, files_failed: 0, rate: 2_000_000, eta_seconds: 90 });
    flushSync();
    expect(screen.getByTestId("figures").textContent).toContain("1 min 30 s left");
    const reason =
      "cannot be reached (it may be down, or this computer may be offline). Its files wait for it, and none counts as failed";
    jobs.apply({ type: "waiting", job: 4, server: "https://data.example.org", waiting: true, reason });
    flushSync();
    const text = screen.getByTestId("waiting").textContent ?? "";
    expect(text).toContain("Waiting for https://data.example.org: it cannot be reached");
    expect(text).toContain("none counts as failed");
    const figures = () => screen.getByTestId("figures").textContent ?? "";
    expect(figures()).toContain("waiting for its server");
    expect(figures()).not.toContain("left");
    jobs.apply({ type: "waiting", job: 4, server: "https://data.example.org", waiting: false, reason: "answers again; its files are copied" });
    flushSync();
    expect(screen.queryByTestId("waiting")).toBeNull();
    expect(figures()).toContain("left");
  });

  it("pauses, sets a limit and shows failures with their reasons", async () => {
    const onchange = vi.fn();
    render(JobsView, { onchange });
    await fireEvent.click(screen.getByTestId("pause"));
    expect(ipc.pauseJob).toHaveBeenCalledWith(4);
    expect(onchange).toHaveBeenCalled();

    await fireEvent.input(screen.getByTestId("limit"), { target: { value: "5M" } });
    await fireEvent.click(screen.getByTestId("set-limit"));
    expect(ipc.setJobLimit).toHaveBeenCalledWith(4, "5M");

    jobs.apply({ type: "progress", job: 4, bytes_done: 10, bytes_total: 1000, files_done: 0, files_total: 10, files_failed: 1, rate: 0, eta_seconds: null });
    flushSync();
    await fireEvent.click(screen.getByTestId("failures"));
    expect(await screen.findByText("the server kept answering 503")).toBeTruthy();
  });

  it("removes a job only once asked twice, and clears the finished ones", async () => {
    const onchange = vi.fn();
    const done = running();
    done.job.id = 5;
    done.running = false;
    done.job.state = "finished";
    jobs.set([running(), done]);
    render(JobsView, { onchange });
    // A running job has no Remove; a finished one asks before it goes.
    expect(screen.getAllByTestId("remove")).toHaveLength(1);
    await fireEvent.click(screen.getByTestId("remove"));
    expect(screen.getByTestId("remove-confirm").textContent).toContain("Its mirror stays");
    expect(ipc.removeJob).not.toHaveBeenCalled();
    await fireEvent.click(screen.getByTestId("remove-yes"));
    expect(ipc.removeJob).toHaveBeenCalledWith(5);
    expect(screen.getByTestId("clear-finished").textContent).toContain("Clear finished (1)");
    await fireEvent.click(screen.getByTestId("clear-finished"));
    expect(ipc.clearFinished).toHaveBeenCalled();
    expect(onchange).toHaveBeenCalled();
  });

  it("offers Resume for a paused job", async () => {
    const paused = running();
    paused.running = false;
    paused.job.state = "paused";
    jobs.set([paused]);
    render(JobsView, { onchange: () => {} });
    expect(screen.queryByTestId("pause")).toBeNull();
    await fireEvent.click(screen.getByTestId("resume"));
    expect(ipc.resumeJob).toHaveBeenCalledWith(4);
  });

  it("reads a job that stopped on its own as stopped, with why, not as paused", () => {
    const stopped = running();
    stopped.running = false;
    stopped.job.state = "paused";
    stopped.job.stop_reason = "No credentials were found for s3://nowhere";
    jobs.set([stopped]);
    render(JobsView, { onchange: () => {} });
    expect(screen.getByTestId("job-state").textContent).toBe("Stopped: needs attention");
    expect(screen.getByTestId("stopped").textContent).toContain("No credentials were found for s3://nowhere");
    expect(screen.getByTestId("resume")).toBeTruthy();
  });

  it("names a job, says what it copies, and when it was made and ended", () => {
    const done = running();
    done.running = false;
    done.job.state = "finished";
    done.job.name = "Alps, summer 2024";
    done.job.selection = { collections: ["s2"], bbox: "5,45,6,46", datetime: null, assets: ["red"], max_items: null };
    done.job.finished_at = "2026-01-02T10:00:00Z";
    jobs.set([done]);
    render(JobsView, { onchange: () => {} });
    expect(screen.getByTestId("job-name").textContent).toBe("Alps, summer 2024");
    expect(screen.getByTestId("job-times").textContent).toMatch(/^\s*Job 4 · made .+ · ended .+/);
    expect(screen.getByTestId("job-selection").textContent).toBe("Collection s2 · area 5, 45, 6, 46 · files: red");
  });

  it("reads a job paused by the person as paused", () => {
    const paused = running();
    paused.running = false;
    paused.job.state = "paused";
    jobs.set([paused]);
    render(JobsView, { onchange: () => {} });
    expect(screen.getByTestId("job-state").textContent).toBe("Paused");
    expect(screen.queryByTestId("stopped")).toBeNull();
  });

  it("shows the job's kept log, and why it stopped", async () => {
    const paused = running();
    paused.running = false;
    paused.job.state = "paused";
    paused.job.stop_reason = "the disk at /tmp/mirror is full; free some space";
    jobs.set([paused]);
    render(JobsView, { onchange: () => {} });
    expect(screen.getByTestId("stopped").textContent).toContain("the disk at /tmp/mirror is full");
    await fireEvent.click(screen.getByText("Show the log"));
    expect(ipc.jobLog).toHaveBeenCalledWith(4);
    const log = await screen.findByTestId("log");
    await vi.waitFor(() => expect(log.textContent).toContain("Stopped: the disk at /tmp/mirror is full"));
  });
});
