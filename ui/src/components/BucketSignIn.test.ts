import { fireEvent, render, screen } from "@testing-library/svelte";
import { describe, expect, it, vi } from "vitest";
import { ipc } from "../lib/ipc";
import BucketSignIn from "./BucketSignIn.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    setBucketLogin: vi.fn(async () => null),
    keptBucketLogin: vi.fn(async () => null),
    forgetBucketLogin: vi.fn(async () => null),
    testBucket: vi.fn(async () => ({ ok: true, message: "Cairn can list, write and delete under s3://archive/m." })),
  },
  explain: (e: unknown) => (e instanceof Error ? e.message : String(e)),
}));

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("a bucket's login", () => {
  it("is used while Cairn runs, and kept on this computer only when Remember is ticked", async () => {
    render(BucketSignIn, { destination: "s3://archive/m" });
    await fireEvent.input(screen.getByTestId("bucket-key-id"), { target: { value: "AKIA1" } });
    await fireEvent.change(screen.getByTestId("bucket-key-id"));
    const login = { key_id: "AKIA1", secret: "", region: "", endpoint: "", key_file: "" };
    expect(ipc.setBucketLogin).toHaveBeenLastCalledWith("s3://archive/m", login, false);
    await fireEvent.click(screen.getByTestId("bucket-remember"));
    await settle();
    expect(ipc.setBucketLogin).toHaveBeenLastCalledWith("s3://archive/m", login, true);
  });

  it("says what is kept for the bucket, without its secret, and forgets it", async () => {
    vi.mocked(ipc.keptBucketLogin).mockResolvedValueOnce("key ID AKIA1 · a secret · region eu-west-1");
    render(BucketSignIn, { destination: "s3://archive/m" });
    const kept = await screen.findByTestId("bucket-kept");
    expect(ipc.keptBucketLogin).toHaveBeenCalledWith("s3://archive/m");
    expect(kept.textContent).toContain("Kept on this computer: key ID AKIA1 · a secret · region eu-west-1.");
    await fireEvent.click(screen.getByTestId("bucket-forget"));
    await settle();
    expect(ipc.forgetBucketLogin).toHaveBeenCalledWith("s3://archive/m");
    expect(screen.queryByTestId("bucket-kept")).toBeNull();
  });

  it("says so when this computer has no keyring", async () => {
    vi.mocked(ipc.setBucketLogin).mockRejectedValueOnce(
      new Error(
        "The login could not be kept in this computer's keyring: this computer has no keyring Cairn can reach. Until Cairn closes, it uses what you typed.",
      ),
    );
    render(BucketSignIn, { destination: "s3://archive/m" });
    await fireEvent.click(screen.getByTestId("bucket-remember"));
    const said = await screen.findByTestId("bucket-result");
    expect(said.textContent).toContain("Until Cairn closes, it uses what you typed.");
    expect(said.classList.contains("ok")).toBe(false);
  });
});
