import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it } from "vitest";
import FirstRunGuide, { GUIDE_SEEN } from "./FirstRunGuide.svelte";

describe("the first-run guide", () => {
  beforeEach(() => localStorage.clear());

  it("shows the three steps until it is put away, and stays away", async () => {
    const first = render(FirstRunGuide);
    const guide = screen.getByTestId("first-run-guide");
    expect(guide.querySelectorAll("li")).toHaveLength(3);
    expect(guide.textContent).toContain("works without the internet");
    await fireEvent.click(screen.getByTestId("guide-done"));
    expect(screen.queryByTestId("first-run-guide")).toBeNull();
    expect(localStorage.getItem(GUIDE_SEEN)).toBe("1");
    first.unmount();

    render(FirstRunGuide);
    expect(screen.queryByTestId("first-run-guide")).toBeNull();
  });
});
