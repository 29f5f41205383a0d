import { describe, expect, it, vi } from "vitest";
import type { ItemBatch, ItemSummary } from "./bindings";

// A channel as Tauri's: the backend calls onmessage with each batch.
vi.mock("@tauri-apps/api/core", () => ({
  Channel: class {
    onmessage: (batch: unknown) => void = () => {};
  },
}));
vi.mock("@tauri-apps/plugin-dialog", () => ({ open: vi.fn() }));
vi.mock("./bindings", () => ({ commands: { searchItems: vi.fn() }, events: {} }));

const { commands } = await import("./bindings");
const { ipc, newSearchId } = await import("./ipc");

const item = (id: string) => ({ id }) as ItemSummary;

describe("reading a collection's items", () => {
  it("gives the items found so far after each batch, and waits for batches that come after the answer", async () => {
    vi.mocked(commands.searchItems).mockImplementation(async (_source, _selection, _max, _id, channel) => {
      const send = (channel as unknown as { onmessage: (b: ItemBatch) => void }).onmessage;
      send({ items: [item("a"), item("b")], read: 2 });
      // A count alone, then the last batch after the command has answered.
      send({ items: [], read: 3 });
      setTimeout(() => send({ items: [item("c")], read: 3 }), 20);
      return { status: "ok", data: { sent: 3, problems: [], more: false } };
    });
    const seen: [number, number][] = [];
    const found = await ipc.searchItems("http://x/collection.json", {} as never, 100, (so, read) => seen.push([so.length, read]));
    expect(found.items.map((i) => i.id)).toEqual(["a", "b", "c"]);
    expect(seen).toEqual([[2, 2], [2, 3], [3, 3]]);
    expect(found.more).toBe(false);
  });

  it("shows nothing more of a search that failed after some batches", async () => {
    let send: (b: ItemBatch) => void = () => {};
    vi.mocked(commands.searchItems).mockImplementation(async (_source, _selection, _max, _id, channel) => {
      send = (channel as unknown as { onmessage: (b: ItemBatch) => void }).onmessage;
      send({ items: [item("a")], read: 1 });
      return { status: "error", error: { code: "unavailable", message: "the server stopped answering" } };
    });
    const seen: number[] = [];
    await expect(ipc.searchItems("http://x/c.json", {} as never, 100, (so) => seen.push(so.length))).rejects.toThrow("stopped answering");
    const channel = vi.mocked(commands.searchItems).mock.calls.at(-1)![4] as unknown as { onmessage: (b: ItemBatch) => void };
    channel.onmessage({ items: [item("late")], read: 2 });
    expect(seen).toEqual([1]);
  });

  it("does not wait for ever for a batch that never comes, and never gives a part as the whole", async () => {
    vi.useFakeTimers();
    vi.mocked(commands.searchItems).mockResolvedValue({ status: "ok", data: { sent: 5, problems: [], more: false } });
    const searched = ipc.searchItems("http://x/c.json", {} as never, 100);
    const failed = expect(searched).rejects.toThrow("Only 0 of the 5 items read reached the window");
    await vi.advanceTimersByTimeAsync(11000);
    await failed;
    vi.useRealTimers();
  });

  it("numbers each search above the last", () => {
    const first = newSearchId();
    expect(newSearchId()).toBeGreaterThan(first);
  });

  it("throws the app's error in words", async () => {
    vi.mocked(commands.searchItems).mockResolvedValue({
      status: "error",
      error: { code: "not_found", message: "http://x/collection.json is not there (HTTP 404)" },
    });
    await expect(ipc.searchItems("http://x/collection.json", {} as never, 100)).rejects.toThrow("is not there");
  });
});
