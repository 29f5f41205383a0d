import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { MirrorEntry } from "../lib/bindings";
import { mirrorChecks } from "../lib/checks.svelte";
import { ipc } from "../lib/ipc";
import { jobs } from "../lib/jobs.svelte";
import MirrorsView from "./MirrorsView.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: { mirrors: vi.fn(), checkCopy: vi.fn() },
  explain: (e: unknown) => (e instanceof Error ? e.message : String(e)),
}));

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function mirror(over: Partial<MirrorEntry> = {}): MirrorEntry {
  return {
    destination: "/mnt/archive/tiles",
    jobs: [3, 7],
    names: ["Europe tiles", "Europe tiles"],
    files: 8,
    bytes: 25_165_824,
    failed: 0,
    flagged: 0,
    last_copied: "2026-12-01T10:00:00Z",
    unfinished: false,
    last_check: null,
    catalog: "/mnt/archive/tiles/catalog.json",
    ...over,
  };
}

beforeEach(() => {
  vi.clearAllMocks();
  mirrorChecks.checking = null;
  mirrorChecks.reports = {};
});

describe("the Mirrors screen", () => {
  it("lists each mirror with what it holds and its health, and opens its catalog on the map", async () => {
    vi.mocked(ipc.mirrors).mockResolvedValue([mirror(), mirror({ destination: "s3://bucket/naip", names: ["NAIP"], failed: 1, catalog: "s3://bucket/naip/catalog.json" })]);
    const onopen = vi.fn();
    render(MirrorsView, { onopen });
    await tick();
    const cards = screen.getAllByTestId("mirror");
    expect(cards.map((c) => c.getAttribute("data-health"))).toEqual(["unchecked", "attention"]);
    expect(screen.getAllByTestId("mirror-holds")[0].textContent).toContain("8 files, 25.2 MB");
    expect(screen.getAllByTestId("mirror-health")[1].textContent).toBe("1 file could not be copied: open its job to see why and try again.");
    await fireEvent.click(screen.getAllByTestId("mirror-map")[1]);
    expect(onopen).toHaveBeenCalledWith("s3://bucket/naip/catalog.json");
  });

  it("checks a mirror through its latest job and says what the check found", async () => {
    vi.mocked(ipc.mirrors).mockResolvedValueOnce([mirror()]).mockResolvedValueOnce([
      mirror({ last_check: { checked_at: "2026-12-05T10:00:00Z", files: 8, verified: 8, problems: 0 } }),
    ]);
    vi.mocked(ipc.checkCopy).mockResolvedValue({ items: 8, assets: 8, verified: 8, repaired: 0, documents: 8, findings: [] });
    render(MirrorsView, { onopen: () => {} });
    await tick();
    await fireEvent.click(screen.getByTestId("mirror-check"));
    await tick();
    await tick();
    expect(ipc.checkCopy).toHaveBeenCalledWith(7, false);
    expect(screen.getByTestId("mirror-checked").textContent).toContain("8 of 8 files match their checksums");
    expect(screen.getByTestId("mirror").getAttribute("data-health")).toBe("whole");
  });

  it("keeps a check under way when the screen is left, and reads the list again when the jobs change", async () => {
    let finish: (r: Awaited<ReturnType<typeof ipc.checkCopy>>) => void = () => {};
    vi.mocked(ipc.mirrors).mockResolvedValue([mirror()]);
    vi.mocked(ipc.checkCopy).mockImplementationOnce(() => new Promise((resolve) => (finish = resolve)));
    const first = render(MirrorsView, { onopen: () => {} });
    await tick();
    await fireEvent.click(screen.getByTestId("mirror-check"));
    first.unmount();
    render(MirrorsView, { onopen: () => {} });
    await tick();
    expect(screen.getByTestId("mirror-check").textContent).toContain("Checking…");
    expect((screen.getByTestId("mirror-check") as HTMLButtonElement).disabled).toBe(true);
    finish({ items: 8, assets: 8, verified: 8, repaired: 0, documents: 8, findings: [] });
    await tick();
    await tick();
    expect(screen.getByTestId("mirror-checked").textContent).toContain("8 of 8 files match their checksums");
    const reads = vi.mocked(ipc.mirrors).mock.calls.length;
    jobs.set([]);
    await tick();
    expect(vi.mocked(ipc.mirrors).mock.calls.length).toBeGreaterThan(reads);
  });

  it("says when there are no mirrors yet", async () => {
    vi.mocked(ipc.mirrors).mockResolvedValueOnce([]);
    render(MirrorsView, { onopen: () => {} });
    await tick();
    expect(screen.getByTestId("no-mirrors")).toBeTruthy();
  });
});
