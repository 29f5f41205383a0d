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
    setSignIn: vi.fn(async () => null),
    keptSignIn: vi.fn(async () => null),
    forgetSignIn: vi.fn(async () => null),
    testSignIn: vi.fn(async () => ({ ok: true, message: "Cairn opened “Granules”, and one of its files answered: signing in works." })),
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

describe("signing in", () => {
  it("tests the connection with the form as filled in, and opens with it", async () => {
    vi.mocked(ipc.look).mockResolvedValueOnce({ url: "https://data.example/stac/collection.json" } as Entry);
    const onopen = vi.fn();
    render(SourceList, { onopen });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: " https://data.example/stac/collection.json " } });
    await fireEvent.click(screen.getByText("Does it need a sign-in?"));
    await fireEvent.click(screen.getByTestId("sign-in-token-kind"));
    await fireEvent.input(screen.getByTestId("sign-in-token"), { target: { value: "t0ken" } });
    expect((screen.getByTestId("sign-in-token") as HTMLInputElement).type).toBe("password");

    await fireEvent.click(screen.getByTestId("sign-in-test"));
    const form = { kind: "token", token: "t0ken", netrc: "" };
    expect(ipc.testSignIn).toHaveBeenCalledWith("https://data.example/stac/collection.json", form);
    expect((await screen.findByTestId("sign-in-result")).textContent).toContain("signing in works");

    await fireEvent.click(screen.getByTestId("source-open"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ipc.setSignIn).toHaveBeenCalledWith("https://data.example/stac/collection.json", form, false);
    expect(vi.mocked(ipc.setSignIn).mock.invocationCallOrder.at(-1)!).toBeLessThan(vi.mocked(ipc.look).mock.invocationCallOrder.at(-1)!);
    expect(onopen).toHaveBeenCalledWith("https://data.example/stac/collection.json");
  });

  it("says what is wrong when the test fails", async () => {
    vi.mocked(ipc.testSignIn).mockRejectedValueOnce(new Error("https://data.example/stac refused access (HTTP 401)"));
    render(SourceList, { onopen: vi.fn() });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://data.example/stac" } });
    await fireEvent.click(screen.getByTestId("sign-in-test"));
    const result = await screen.findByTestId("sign-in-result");
    expect(result.textContent).toContain("refused access");
    expect(result.classList.contains("ok")).toBe(false);
  });
});

describe("a sign-in kept on this computer", () => {
  it("is kept when Remember is ticked", async () => {
    vi.mocked(ipc.look).mockResolvedValueOnce({ url: "https://data.example/stac" } as Entry);
    render(SourceList, { onopen: vi.fn() });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://data.example/stac" } });
    expect(screen.queryByTestId("sign-in-remember")).toBeNull();
    await fireEvent.click(screen.getByTestId("sign-in-token-kind"));
    await fireEvent.input(screen.getByTestId("sign-in-token"), { target: { value: "t0ken" } });
    await fireEvent.click(screen.getByTestId("sign-in-remember"));
    await fireEvent.click(screen.getByTestId("source-open"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ipc.setSignIn).toHaveBeenLastCalledWith("https://data.example/stac", { kind: "token", token: "t0ken", netrc: "" }, true);
  });

  it("opens the catalog all the same when this computer has no keyring, and says so", async () => {
    vi.mocked(ipc.setSignIn).mockRejectedValueOnce(
      new Error("The login could not be kept in this computer's keyring: this computer has no keyring Cairn can reach. Until Cairn closes, it uses what you typed."),
    );
    vi.mocked(ipc.look).mockResolvedValueOnce({ url: "https://data.example/stac" } as Entry);
    const onopen = vi.fn();
    render(SourceList, { onopen });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://data.example/stac" } });
    await fireEvent.click(screen.getByTestId("sign-in-token-kind"));
    await fireEvent.input(screen.getByTestId("sign-in-token"), { target: { value: "t0ken" } });
    await fireEvent.click(screen.getByTestId("sign-in-remember"));
    await fireEvent.click(screen.getByTestId("source-open"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(onopen).toHaveBeenCalledWith("https://data.example/stac");
    expect(screen.getByTestId("sign-in-result").textContent).toContain("Until Cairn closes, it uses what you typed.");
  });

  it("is said for the address typed, without its secret, and can be forgotten", async () => {
    vi.mocked(ipc.keptSignIn).mockResolvedValueOnce("a token");
    render(SourceList, { onopen: vi.fn() });
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://data.example/stac" } });
    const kept = await screen.findByTestId("sign-in-kept", {}, { timeout: 2000 });
    expect(ipc.keptSignIn).toHaveBeenCalledWith("https://data.example/stac");
    expect(kept.textContent).toContain("Kept on this computer for this catalog's server: a token.");
    expect(screen.getByTestId("sign-in-summary").textContent).toContain("with a token, kept on this computer");
    await fireEvent.click(screen.getByTestId("sign-in-forget"));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(ipc.forgetSignIn).toHaveBeenCalledWith("https://data.example/stac");
    expect(screen.queryByTestId("sign-in-kept")).toBeNull();
  });
});

describe("a catalog that refuses access", () => {
  it("opens the sign-in choices", async () => {
    vi.mocked(ipc.look).mockRejectedValueOnce(
      Object.assign(new Error("https://data.example/stac refused access (HTTP 401)"), { code: "access_denied" }),
    );
    render(SourceList, { onopen: vi.fn() });
    expect((screen.getByTestId("sign-in") as HTMLDetailsElement).open).toBe(false);
    await fireEvent.input(screen.getByTestId("source-address"), { target: { value: "https://data.example/stac" } });
    await fireEvent.click(screen.getByTestId("source-open"));
    await screen.findByTestId("source-problem");
    expect((screen.getByTestId("sign-in") as HTMLDetailsElement).open).toBe(true);
  });
});
