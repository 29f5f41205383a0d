import { fireEvent, render, screen } from "@testing-library/svelte";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { AppSettings } from "../lib/bindings";
import { ipc } from "../lib/ipc";
import { DEFAULTS, settings } from "../lib/settings.svelte";
import SettingsView from "./SettingsView.svelte";

vi.mock("../lib/ipc", () => ({
  ipc: {
    settings: vi.fn(),
    saveSettings: vi.fn(),
    limitNow: vi.fn(),
    chooseFolder: vi.fn(),
  },
  explain: (e: unknown) => (e instanceof Error ? e.message : String(e)),
}));

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

beforeEach(() => {
  vi.clearAllMocks();
  settings.take(DEFAULTS);
  vi.mocked(ipc.settings).mockResolvedValue({ ...DEFAULTS, destination: "/mnt/archive" });
  vi.mocked(ipc.limitNow).mockResolvedValue({ bytes_per_second: null, until: null });
  vi.mocked(ipc.saveSettings).mockImplementation(async (s: AppSettings) => s);
});

describe("the Settings screen", () => {
  it("shows what is saved and saves a schedule, then says what holds now", async () => {
    render(SettingsView);
    await tick();
    expect((screen.getByTestId("settings-destination") as HTMLInputElement).value).toBe("/mnt/archive");
    expect((screen.getByTestId("save-settings") as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId("schedule-words").textContent).toContain("No limit at any time.");

    await fireEvent.click(screen.getByTestId("add-slot"));
    await fireEvent.input(screen.getByTestId("slot-rate"), { target: { value: "512K" } });
    await fireEvent.click(screen.getByTestId("add-slot"));
    const froms = screen.getAllByTestId("slot-from");
    await fireEvent.input(froms[1], { target: { value: "18:00" } });
    expect(screen.getByTestId("schedule-words").textContent).toContain("08:00 to 18:00: at most 512K per second.");
    expect(screen.getByTestId("schedule-words").textContent).toContain("18:00 to 08:00: no limit.");

    vi.mocked(ipc.limitNow).mockResolvedValue({ bytes_per_second: 524288, until: "18:00" });
    await fireEvent.click(screen.getByTestId("save-settings"));
    await tick();
    await tick();
    expect(ipc.saveSettings).toHaveBeenCalledWith(
      expect.objectContaining({ schedule: [{ from: "08:00", rate: "512K" }, { from: "18:00", rate: "" }] }),
    );
    expect(screen.getByTestId("settings-saved").textContent).toContain("Saved.");
    expect(screen.getByTestId("limit-now").textContent).toBe("Now: at most 512K per second for all jobs together, until 18:00.");
  });

  it("says what cannot be saved and does not send it", async () => {
    render(SettingsView);
    await tick();
    await fireEvent.input(screen.getByTestId("settings-concurrency"), { target: { value: "0" } });
    expect(screen.getByTestId("settings-problems").textContent).toContain("Transfers at once must be a number from 1 to 64.");
    expect((screen.getByTestId("save-settings") as HTMLButtonElement).disabled).toBe(true);
    expect(ipc.saveSettings).not.toHaveBeenCalled();
  });

  it("shows the app's refusal in words and keeps what was typed", async () => {
    vi.mocked(ipc.saveSettings).mockRejectedValueOnce(new Error("Cairn could not be set to start when you log in (Permission denied); the other settings were not saved."));
    render(SettingsView);
    await tick();
    await fireEvent.click(screen.getByTestId("settings-autostart"));
    await fireEvent.click(screen.getByTestId("save-settings"));
    await tick();
    expect(screen.getByTestId("settings-error").textContent).toContain("could not be set to start when you log in");
    expect((screen.getByTestId("settings-autostart") as HTMLInputElement).checked).toBe(true);
    expect(screen.queryByTestId("settings-saved")).toBeNull();
  });
});
