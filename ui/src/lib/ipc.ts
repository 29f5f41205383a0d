// Every call to the backend goes through here: tests mock this one module.
// Commands answer with data or throw an IpcError that carries the engine's
// code and its message in plain words.
import { open as openDialog } from "@tauri-apps/plugin-dialog";
import { Channel } from "@tauri-apps/api/core";
import type { AppError, AppSettings, BucketLogin, Event, ItemBatch, ItemSummary, JobRequest, Problem, Selection, SignInForm } from "./bindings";
import { commands, events } from "./bindings";

export class IpcError extends Error {
  code: string;
  constructor(error: AppError) {
    super(error.message);
    this.code = error.code;
  }
}

type Answer<T> = { status: "ok"; data: T } | { status: "error"; error: AppError };

async function unwrap<T>(answer: Promise<Answer<T>>): Promise<T> {
  const result = await answer;
  if (result.status === "error") throw new IpcError(result.error);
  return result.data;
}

let lastSearch = 0;

/**
 * A number for a search of items, larger than any this window gave before
 * (also across a reload: it counts from the clock). The engine lets a search
 * go on only while no larger number has begun.
 */
export function newSearchId(): number {
  lastSearch = Math.max(lastSearch + 1, Date.now() * 1000);
  return lastSearch;
}

/** How long a search's last batches are waited for once it has answered. */
const LATE_BATCHES_MS = 10000;

/** Items found by a search, with what could not be read on the way. */
export type FoundItems = { items: ItemSummary[]; problems: Problem[]; more: boolean };

/**
 * The items of `source` that `selection` keeps, up to `maxItems`. They come
 * in batches as they are read: `onItems` is given every item found so far
 * after each batch, and how many have been read (counts come more often
 * than items).
 */
async function searchItems(
  source: string,
  selection: Selection,
  maxItems: number,
  onItems: (found: ItemSummary[], read: number) => void = () => {},
  searchId: number = newSearchId(),
): Promise<FoundItems> {
  let found: ItemSummary[] = [];
  let arrived = () => {};
  const channel = new Channel<ItemBatch>();
  channel.onmessage = (batch) => {
    if (batch.items.length) found = found.concat(batch.items);
    try {
      onItems(found, batch.read);
    } finally {
      arrived();
    }
  };
  let page;
  try {
    page = await unwrap(commands.searchItems(source, selection, maxItems, searchId, channel));
  } catch (error) {
    // Nothing more is shown of a search that failed.
    channel.onmessage = () => {};
    throw error;
  }
  // The last batches may come after the answer; a batch that never comes is
  // not waited for long.
  const until = Date.now() + LATE_BATCHES_MS;
  while (found.length < page.sent && Date.now() < until) {
    await new Promise<void>((resolve) => {
      arrived = resolve;
      setTimeout(resolve, until - Date.now());
    });
  }
  channel.onmessage = () => {};
  // Never a part of the items as if it were all of them.
  if (found.length < page.sent) {
    throw new IpcError({
      code: "unavailable",
      message: `Only ${found.length.toLocaleString("en")} of the ${page.sent.toLocaleString("en")} items read reached the window. Open the collection again.`,
    });
  }
  return { items: found, problems: page.problems, more: page.more };
}

export const ipc = {
  sources: () => unwrap(commands.sources()),
  setBookmark: (url: string, on: boolean) => unwrap(commands.setBookmark(url, on)),
  /** Reads a catalog; `remember`: list it among those opened before (what the person opened). */
  look: (url: string, remember = true) => unwrap(commands.look(url, remember)),
  setSignIn: (source: string, form: SignInForm, remember: boolean) =>
    unwrap(commands.setSignIn(source, form, remember)),
  forgetSignIn: (source: string) => unwrap(commands.forgetSignIn(source)),
  keptSignIn: (source: string) => unwrap(commands.keptSignIn(source)),
  testSignIn: (source: string, form: SignInForm) => unwrap(commands.testSignIn(source, form)),
  setBucketLogin: (destination: string, login: BucketLogin | null, remember: boolean) =>
    unwrap(commands.setBucketLogin(destination, login, remember)),
  forgetBucketLogin: (destination: string) => unwrap(commands.forgetBucketLogin(destination)),
  keptBucketLogin: (destination: string) => unwrap(commands.keptBucketLogin(destination)),
  testBucket: (destination: string, login: BucketLogin | null) => unwrap(commands.testBucket(destination, login)),
  searchItems,
  estimate: (request: JobRequest) => unwrap(commands.estimate(request)),
  startJob: (job: number) => unwrap(commands.startJob(job)),
  jobs: () => unwrap(commands.jobs()),
  failures: (job: number) => unwrap(commands.failures(job)),
  jobLog: (job: number) => unwrap(commands.jobLog(job)),
  jobHistory: (job: number) => unwrap(commands.jobHistory(job)),
  syncJob: (job: number) => unwrap(commands.syncJob(job)),
  removeJob: (job: number) => unwrap(commands.removeJob(job)),
  clearFinished: () => unwrap(commands.clearFinished()),
  setSyncOptions: (job: number, keepVersions: boolean, mirrorDeletions: boolean) =>
    unwrap(commands.setSyncOptions(job, keepVersions, mirrorDeletions)),
  pauseJob: (job: number) => unwrap(commands.pauseJob(job)),
  resumeJob: (job: number) => unwrap(commands.resumeJob(job)),
  cancelJob: (job: number) => unwrap(commands.cancelJob(job)),
  setJobLimit: (job: number, rate: string) => unwrap(commands.setJobLimit(job, rate)),
  itemMarks: (source: string) => unwrap(commands.itemMarks(source)),
  checkCopy: (job: number, repair: boolean) => unwrap(commands.checkCopy(job, repair)),
  exportBag: (job: number, out: string) => unwrap(commands.exportBag(job, out)),
  windowReady: () => unwrap(commands.windowReady()),
  settings: () => unwrap(commands.settings()),
  saveSettings: (settings: AppSettings) => unwrap(commands.saveSettings(settings)),
  limitNow: () => unwrap(commands.limitNow()),
  mirrors: () => unwrap(commands.mirrors()),
  stopItemSearch: (searchId: number) => unwrap(commands.stopItemSearch(searchId)),

  /** Calls `handler` for every job event; returns a function that stops. */
  onJobEvent: (handler: (event: Event) => void) => events.jobEvent.listen((e) => handler(e.payload)),

  /** The native folder dialog; null when the person closes it. */
  chooseFolder: async (title = "Where should the copy go?"): Promise<string | null> => {
    const picked = await openDialog({ directory: true, multiple: false, title });
    return typeof picked === "string" ? picked : null;
  },

  /** Opens a job's mirror folder in the system's file manager. */
  openFolder: (job: number) => unwrap(commands.openFolder(job)),
  openAddress: (address: string) => unwrap(commands.openAddress(address)),
};

/** A sentence for any error a call may throw. */
export function explain(error: unknown): string {
  if (error instanceof IpcError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
