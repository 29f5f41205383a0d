import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import type { ItemSummary } from "../lib/bindings";
import { ipc } from "../lib/ipc";
import ItemPage from "./ItemPage.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    openAddress: vi.fn(async (address: string) => {
      if (address.includes("refused")) throw new Error("no browser could open it; copy the address into one by hand");
    }),
  },
  explain: (e: unknown) => String(e),
}));

function scene(): ItemSummary {
  return {
    id: "LC09_L2SP_042034",
    collection: "landsat-c2-l2",
    href: "https://example.org/items/LC09_L2SP_042034.json",
    bbox: null,
    geometry: null,
    datetime: "2024-05-01T18:00:00Z",
    thumbnail: null,
    assets: [],
    properties: [
      { name: "eo:cloud_cover", value: "12.5" },
      { name: "instruments", value: "oli, tirs" },
    ],
    links: [
      { rel: "license", href: "https://www.usgs.gov/license", title: null },
      { rel: "via", href: "https://refused.example.org/scene", title: "USGS LandsatLook" },
      { rel: "alternate", href: "file:///home/someone/.netrc", title: null },
    ],
    detailed: true,
  };
}

describe("ItemPage", () => {
  it("shows the properties and opens only web links, through the engine", async () => {
    render(ItemPage, { item: scene(), onclose: () => {} });
    const properties = screen.getByTestId("item-properties");
    expect(properties.textContent).toContain("eo:cloud_cover");
    expect(properties.textContent).toContain("oli, tirs");

    await fireEvent.click(screen.getByText("The license"));
    expect(ipc.openAddress).toHaveBeenCalledWith("https://www.usgs.gov/license");
    await fireEvent.click(screen.getByTestId("item-original"));
    expect(ipc.openAddress).toHaveBeenCalledWith("https://example.org/items/LC09_L2SP_042034.json");

    // A link to a file on this computer is shown, never offered to open.
    const local = screen.getByText("Another form of it");
    expect(local.tagName).toBe("SPAN");
    expect(vi.mocked(ipc.openAddress).mock.calls.flat()).not.toContain("file:///home/someone/.netrc");

    // A refusal is said on the page.
    await fireEvent.click(screen.getByText("USGS LandsatLook"));
    expect(await screen.findByText(/copy the address into one by hand/)).toBeTruthy();
    expect(screen.queryByTestId("item-brief")).toBeNull();
  });

  it("says why an item far down a long list has no properties, and forgets the last item's problem", async () => {
    const { rerender } = render(ItemPage, { item: scene(), onclose: () => {} });
    await fireEvent.click(screen.getByText("USGS LandsatLook"));
    expect(await screen.findByText(/copy the address into one by hand/)).toBeTruthy();
    await rerender({ item: { ...scene(), id: "far-down", properties: [], links: [], detailed: false }, onclose: () => {} });
    expect(screen.getByTestId("item-brief").textContent).toContain("first 2,000 items");
    expect(screen.queryByText(/copy the address into one by hand/)).toBeNull();
  });
});
