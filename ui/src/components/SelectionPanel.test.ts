import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ipc } from "../lib/ipc";
import { selection } from "../lib/selection.svelte";
import SelectionPanel from "./SelectionPanel.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    estimate: vi.fn(async () => ({
      job: 9,
      counts: { items: 2, assets: 2, done: 0, skipped: 0, failed: 0, pending: 2, bytes_expected: 8e9, bytes_done: 0, items_failed: 0, bytes_kept: 0 },
      bytes_to_copy: 8e9,
      free_bytes: 2e9,
      problems: [],
      requester_pays: false,
    })),
    startJob: vi.fn(async () => null),
    chooseFolder: vi.fn(async () => "/media/disk/mirror"),
  },
  explain: (e: unknown) => String(e),
}));

const items = [
  {
    id: "a", collection: "c", href: null, bbox: null, geometry: null, datetime: null, thumbnail: null, properties: [], links: [], detailed: true,
    assets: [{ key: "red", href: "http://x/red.tif", title: null, media_type: "image/tiff", roles: ["data"], size: 4e9, alternates: [] }],
  },
];

describe("the mirror panel", () => {
  beforeEach(() => {
    selection.setSource("http://127.0.0.1/catalog.json");
    selection.destination = "";
    selection.bbox = null;
    vi.clearAllMocks();
  });

  it("takes a typed area, a folder from the dialog, and warns when the disk is too small", async () => {
    const onstarted = vi.fn();
    render(SelectionPanel, { items, onstarted });
    await fireEvent.input(screen.getByTestId("bbox"), { target: { value: "-10,35,5,45" } });
    await fireEvent.change(screen.getByTestId("bbox"));
    expect(selection.bbox).toEqual([-10, 35, 5, 45]);

    await fireEvent.click(screen.getByText("Choose…"));
    await vi.waitFor(() => expect(selection.destination).toBe("/media/disk/mirror"));

    await fireEvent.click(screen.getByTestId("estimate"));
    const warning = await screen.findByTestId("room-warning");
    expect(warning.textContent).toContain("2.0 GB free");
    expect(ipc.estimate).toHaveBeenCalledWith(
      expect.objectContaining({ destination: "/media/disk/mirror", selection: expect.objectContaining({ bbox: "-10,35,5,45" }) }),
    );

    await fireEvent.click(screen.getByTestId("start"));
    expect(ipc.startJob).toHaveBeenCalledWith(9);
    expect(onstarted).toHaveBeenCalled();
    // What was picked stays; the estimate gives way to where the job is.
    expect((await screen.findByTestId("started")).textContent).toContain("Job 9 started");
    expect(screen.queryByTestId("estimate-result")).toBeNull();
    expect(selection.bbox).toEqual([-10, 35, 5, 45]);
    expect(selection.destination).toBe("/media/disk/mirror");
  });

  it("lists the problems an estimate met, the first fifty of them", async () => {
    const problems = Array.from({ length: 60 }, (_, i) => ({ href: `http://x/items/${i}.json`, reason: "it is not valid JSON" }));
    vi.mocked(ipc.estimate).mockResolvedValueOnce({
      job: 9,
      counts: { items: 1, assets: 1, done: 0, skipped: 0, failed: 0, pending: 1, bytes_expected: 10, bytes_done: 0, items_failed: 0, bytes_kept: 0 },
      bytes_to_copy: 10,
      free_bytes: 1e12,
      requester_pays: false,
      problems,
    });
    selection.destination = "/media/disk/mirror";
    render(SelectionPanel, { items, onstarted: () => {} });
    await fireEvent.click(screen.getByTestId("estimate"));
    const list = await screen.findByTestId("estimate-problems");
    expect(list.querySelector("summary")?.textContent).toContain("60 problems in the catalog");
    const shown = list.querySelectorAll("li");
    expect(shown.length).toBe(50);
    expect(shown[0].textContent).toContain("http://x/items/0.json");
    expect(shown[0].textContent).toContain("it is not valid JSON");
    expect(list.textContent).toContain("and 10 more.");
  });

  it("offers where to read the files from only when they offer more than one address", async () => {
    const { unmount } = render(SelectionPanel, { items, onstarted: () => {} });
    expect(screen.queryByTestId("reading")).toBeNull();
    unmount();

    const inBuckets = [
      {
        ...items[0],
        assets: [{ ...items[0].assets[0], href: "https://data.example.org/red.tif", alternates: ["s3"] }],
      },
    ];
    const { rerender } = render(SelectionPanel, { items: inBuckets, onstarted: () => {} });
    expect(screen.getByTestId("reading").textContent).toContain("Its “s3” copy");
    selection.destination = "/media/disk/mirror";
    // The default: the address that needs no sign-in, and nobody billed.
    await fireEvent.click(screen.getByTestId("estimate"));
    expect(ipc.estimate).toHaveBeenLastCalledWith(
      expect.objectContaining({ selection: expect.objectContaining({ alternate: "auto" }), access: { requester_pays: false } }),
    );
    // The bucket itself, paid for by the person.
    await fireEvent.click(screen.getByTestId("read-s3"));
    await fireEvent.click(screen.getByTestId("requester-pays"));
    expect(screen.getByTestId("reading").textContent).toContain("your AWS credentials");
    vi.mocked(ipc.estimate).mockResolvedValueOnce({
      job: 10,
      counts: { items: 1, assets: 1, done: 0, skipped: 0, failed: 0, pending: 1, bytes_expected: 10, bytes_done: 0, items_failed: 0, bytes_kept: 0 },
      bytes_to_copy: 10,
      free_bytes: null,
      problems: [],
      requester_pays: true,
    });
    await fireEvent.click(screen.getByTestId("estimate"));
    expect(ipc.estimate).toHaveBeenLastCalledWith(
      expect.objectContaining({ selection: expect.objectContaining({ alternate: "s3" }), access: { requester_pays: true } }),
    );
    expect((await screen.findByTestId("estimate-result")).textContent).toContain("bills your AWS account");
    // Items that offer neither (another collection) put both back to the default.
    await rerender({ items, onstarted: () => {} });
    expect(screen.queryByTestId("reading")).toBeNull();
    expect([selection.alternate, selection.requesterPays]).toEqual(["auto", false]);
    // Another catalog starts again from the default.
    selection.alternate = "s3";
    selection.setSource("http://127.0.0.1/other.json");
    expect([selection.alternate, selection.requesterPays]).toEqual(["auto", false]);
  });

  it("does not show an estimate answered after the choices changed, nor keep one made before", async () => {
    const made = await vi.mocked(ipc.estimate).getMockImplementation()!({} as never);
    let answer: (value: typeof made) => void = () => {};
    vi.mocked(ipc.estimate).mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    render(SelectionPanel, { items, onstarted: vi.fn() });
    selection.destination = "/mnt/mirror";
    await vi.waitFor(() => expect((screen.getByTestId("estimate") as HTMLButtonElement).disabled).toBe(false));
    await fireEvent.click(screen.getByTestId("estimate"));
    await vi.waitFor(() => expect(ipc.estimate).toHaveBeenCalledTimes(1));
    // A collection left out while the catalog is read: the answer is of the old choices.
    selection.toggleCollection("c", ["c", "d"]);
    answer(made);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.queryByTestId("estimate-result")).toBeNull();
    expect((screen.getByTestId("start") as HTMLButtonElement).disabled).toBe(true);
    // Asked again, it shows; a tick changed after it takes it away.
    await fireEvent.click(screen.getByTestId("estimate"));
    await screen.findByTestId("estimate-result");
    expect(ipc.estimate).toHaveBeenLastCalledWith(expect.objectContaining({ selection: expect.objectContaining({ exclude_collections: ["c"] }) }));
    selection.toggle("a");
    await vi.waitFor(() => expect(screen.queryByTestId("estimate-result")).toBeNull());
    expect((screen.getByTestId("start") as HTMLButtonElement).disabled).toBe(true);
  });

  it("says what is wrong with a typed area", async () => {
    render(SelectionPanel, { items, onstarted: () => {} });
    await fireEvent.input(screen.getByTestId("bbox"), { target: { value: "1,2,3" } });
    await fireEvent.change(screen.getByTestId("bbox"));
    expect(screen.getByText(/four numbers/)).toBeTruthy();
    expect(selection.bbox).toBeNull();
  });
});
