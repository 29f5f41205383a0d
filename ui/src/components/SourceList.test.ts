import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { Entry } from "../lib/bindings";
import { ipc } from "../lib/ipc";
import SourceList from "./SourceList.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    sources: vi.fn(async () => []),
    windowReady: vi.fn(async () => null),
    look: vi.fn(),
    setBookmark: vi.fn(async () => null),
  },
  explain: (e: unknown) => String(e),
}));

describe("opening a catalog", () => {
  it("can be cancelled while the server has not answered, and its late answer is dropped", async () => {
    let answer: (entry: Entry) => void = () => {};
    vi.mocked(ipc.look).mockImplementationOnce(() => new Promise<Entry>((resolve) => (answer = resolve)));
    const onopen = vi.fn();
    render(SourceList, { onopen });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://slow.example/catalog.json" } });
    await fireEvent.click(screen.getByTestId("source-open"));
    expect(screen.getByTestId("source-open").textContent).toContain("Opening…");

    await fireEvent.click(await screen.findByTestId("source-cancel"));
    expect(screen.getByTestId("source-open").textContent).toContain("Open");
    expect(screen.queryByTestId("source-cancel")).toBeNull();
    answer({ url: "https://slow.example/catalog.json" } as Entry);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(onopen).not.toHaveBeenCalled();
  });
});
