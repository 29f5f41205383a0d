import { describe, expect, it, vi } from "vitest";
import type { AppSettings } from "./bindings";
import { SelectionState } from "./selection.svelte";
import {
  clock,
  DEFAULTS,
  describeSchedule,
  minuteOf,
  mirrorFolder,
  scheduleProblems,
  settings,
  SettingsState,
} from "./settings.svelte";

const slot = (from: string, rate: string) => ({ from, rate });

describe("the bandwidth schedule", () => {
  it("reads times of day as the engine does", () => {
    expect(minuteOf("08:00")).toBe(480);
    expect(minuteOf(" 7:05 ")).toBe(425);
    expect(minuteOf("23:59")).toBe(1439);
    for (const bad of ["24:00", "12:60", "12:5", "8", "8h", "", "-1:00"]) expect(minuteOf(bad), bad).toBeNull();
    expect(clock(425)).toBe("07:05");
  });

  it("says each line that cannot be used, and accepts what can", () => {
    expect(scheduleProblems([slot("08:00", "512K"), slot("18:00", ""), slot("23:00", "off"), slot("06:00", "1.5G"), slot("07:00", "10MB/s")])).toEqual([]);
    for (const zero of ["0K", "0.0M", "0.0"]) expect(scheduleProblems([slot("08:00", zero)]), zero).toHaveLength(1);
    expect(scheduleProblems([slot("08:00", "0")])).toEqual([]);
    expect(scheduleProblems([slot("8h", "1M"), slot("09:00", "fast"), slot("9:00", "2M")])).toEqual([
      'Line 1: "8h" is not a time of day like 08:00 or 18:30.',
      'Line 2: "fast" is not a rate like 500K, 10M or 1G (leave it empty for no limit).',
      "Line 3: 09:00 is given twice; keep one limit for each time.",
    ]);
  });

  it("is said in words, in order of time, the last line holding over midnight", () => {
    expect(describeSchedule([])).toEqual(["No limit at any time."]);
    expect(describeSchedule([slot("07:30", "1M")])).toEqual(["All day: at most 1M per second."]);
    expect(describeSchedule([slot("07:30", "10MB/s")])).toEqual(["All day: at most 10MB per second."]);
    expect(describeSchedule([slot("18:00", "off"), slot("08:00", "512K")])).toEqual([
      "08:00 to 18:00: at most 512K per second.",
      "18:00 to 08:00: no limit.",
    ]);
    // A line whose time cannot be read is left out of the words (it is listed as a problem).
    expect(describeSchedule([slot("x", "1M"), slot("09:00", "")])).toEqual(["All day: no limit."]);
  });
});

describe("the settings store", () => {
  it("keeps a draft apart from what is saved, and can undo it", async () => {
    const state = new SettingsState();
    await state.load(async () => ({ ...DEFAULTS, concurrency: 4 }));
    expect(state.changed).toBe(false);
    state.draft.concurrency = 2;
    expect(state.changed).toBe(true);
    expect(state.saved.concurrency).toBe(4);
    state.revert();
    expect(state.draft.concurrency).toBe(4);
    expect(state.changed).toBe(false);
  });

  it("refuses numbers out of range and bad schedule lines before anything is sent", () => {
    const state = new SettingsState();
    state.draft.concurrency = 0;
    state.draft.per_host = 65;
    state.draft.schedule = [slot("25:00", "1M")];
    expect(state.problems).toEqual([
      "Transfers at once must be a number from 1 to 64.",
      "Transfers from one server must be a number from 1 to 64.",
      'Line 1: "25:00" is not a time of day like 08:00 or 18:30.',
    ]);
  });

  it("adds schedule lines an hour apart, never at a time already there", () => {
    const state = new SettingsState();
    state.addSlot();
    state.addSlot();
    expect(state.draft.schedule.map((s) => s.from)).toEqual(["08:00", "09:00"]);
    state.draft.schedule[1].from = "23:00";
    state.addSlot();
    expect(state.draft.schedule.map((s) => s.from)).toEqual(["08:00", "23:00", "00:00"]);
    state.removeSlot(0);
    expect(state.draft.schedule.map((s) => s.from)).toEqual(["23:00", "00:00"]);
    // A full day of hourly lines still gives a free minute.
    state.draft.schedule = Array.from({ length: 24 }, (_, h) => slot(clock(h * 60), ""));
    state.addSlot();
    expect(scheduleProblems(state.draft.schedule)).toEqual([]);
  });

  it("saves lines in order of time with times written in full, and takes what the app answers", async () => {
    const state = new SettingsState();
    state.draft.destination = "  /mnt/archive  ";
    state.draft.schedule = [slot("18:00", "OFF"), slot("8:00", " 512K ")];
    const send = vi.fn(async (s: AppSettings) => ({ ...s, start_with_system: true }));
    await state.save(send);
    expect(send).toHaveBeenCalledWith({
      ...DEFAULTS,
      destination: "/mnt/archive",
      schedule: [slot("08:00", "512K"), slot("18:00", "")],
    });
    expect(state.saved.start_with_system).toBe(true);
    expect(state.changed).toBe(false);
  });

  it("keeps the draft when the app refuses it", async () => {
    const state = new SettingsState();
    state.draft.destination = "ftp://nowhere";
    await expect(state.save(async () => Promise.reject(new Error("refused")))).rejects.toThrow("refused");
    expect(state.draft.destination).toBe("ftp://nowhere");
    expect(state.saved.destination).toBe("");
  });
});

describe("what new jobs take from the settings", () => {
  it("gives each mirror a folder named after its collection under the settings' folder", () => {
    expect(mirrorFolder("/mnt/archive", "Sentinel-2 L2A (COGs)")).toBe("/mnt/archive/sentinel-2-l2a-cogs");
    expect(mirrorFolder("/mnt/archive/", "Landsat")).toBe("/mnt/archive/landsat");
    expect(mirrorFolder("s3://bucket/mirrors", "NAIP")).toBe("s3://bucket/mirrors/naip");
    expect(mirrorFolder("D:\\Mirrors", "Île de Ré")).toBe("D:\\Mirrors\\ile-de-re");
    expect(mirrorFolder("/mnt/archive", "../../etc")).toBe("/mnt/archive/etc");
    expect(mirrorFolder("/mnt/archive", "")).toBe("/mnt/archive/mirror");
    expect(mirrorFolder("/mnt/archive", "Снимки Земли")).toBe("/mnt/archive/снимки-земли");
    expect(mirrorFolder("/mnt/archive", "地球観測")).toBe("/mnt/archive/地球観測");
    expect(mirrorFolder("  ", "Landsat")).toBe("");
  });

  it("uses the saved transfers for a new job", () => {
    settings.take({ ...DEFAULTS, concurrency: 3, per_host: 1 });
    const chosen = new SelectionState();
    chosen.setSource("http://127.0.0.1/catalog.json");
    chosen.destination = "/tmp/m";
    const request = chosen.request("Demo");
    expect(request.concurrency).toBe(3);
    expect(request.per_host).toBe(1);
    settings.take(DEFAULTS);
  });
});
