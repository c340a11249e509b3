import type { Deadline } from "@sremote/core";
import type { SideStep } from "./command.js";

interface Entry {
  step: SideStep;
  resolve(): void;
  reject(err: unknown): void;
  done: Promise<void>;
}

/** Steps taken by one command; it reports back how each went. */
export interface StepBatch {
  readonly steps: readonly SideStep[];
  /** The command ran the steps: `failed` holds the indices of those that failed. */
  settle(failed: readonly number[], makeError: (step: SideStep) => Error): void;
  /** The command did not say (it failed, or was killed): the steps go back in the queue. */
  requeue(): void;
}

function touches(step: SideStep, path: string): boolean {
  return step.kind === "chmod" ? step.path === path : step.paths.includes(path);
}

/**
 * Deletions and `chmod`s waiting to ride along with the next command (a command is a POST
 * plus status questions, so each one saved is several requests). If no command comes
 * within `windowMs`, `flush` runs them in a command of their own. Each step settles when
 * the command that carried it has reported on it — a deletion is never reported done early.
 */
export class SideSteps {
  #queue: Entry[] = [];
  readonly #inFlight = new Set<Entry>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly flush: (batch: StepBatch) => Promise<void>,
  ) {}

  get pending(): number {
    return this.#queue.length;
  }

  /** Queues a step; the promise settles once a command ran it. `dl` firing first removes a queued step. */
  add(step: SideStep, dl?: Deadline): Promise<void> {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const entry: Entry = { step, resolve, reject, done };
    this.#queue.push(entry);
    if (dl) {
      const onAbort = () => {
        this.#queue = this.#queue.filter((e) => e !== entry);
        reject(dl.error(`sfapi: ${step.kind}`));
      };
      dl.signal.addEventListener("abort", onAbort, { once: true });
      void done.then(
        () => dl.signal.removeEventListener("abort", onAbort),
        () => dl.signal.removeEventListener("abort", onAbort),
      );
    }
    this.#arm();
    return done;
  }

  #arm(): void {
    if (this.#timer || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const batch = this.take();
      if (batch) void this.flush(batch);
    }, this.windowMs);
  }

  /** Everything queued, for one command to carry (undefined when nothing is). */
  take(): StepBatch | undefined {
    if (this.#queue.length === 0) return undefined;
    const entries = this.#queue;
    this.#queue = [];
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const e of entries) this.#inFlight.add(e);
    const finish = () => {
      for (const e of entries) this.#inFlight.delete(e);
    };
    return {
      steps: entries.map((e) => e.step),
      settle: (failed, makeError) => {
        finish();
        entries.forEach((e, i) => {
          if (failed.includes(i)) e.reject(makeError(e.step));
          else e.resolve();
        });
      },
      requeue: () => {
        finish();
        this.#queue = [...entries, ...this.#queue];
        this.#arm();
      },
    };
  }

  /**
   * Waits until no deletion of `path` is queued or in flight (running what is queued now),
   * so an upload or a download is never overtaken by an earlier deletion.
   */
  async settleDeletesOf(path: string): Promise<void> {
    const waiting = [...this.#queue, ...this.#inFlight].filter((e) => e.step.kind === "rm" && touches(e.step, path));
    if (waiting.length === 0) return;
    if (waiting.some((e) => this.#queue.includes(e))) {
      const batch = this.take();
      if (batch) void this.flush(batch);
    }
    await Promise.allSettled(waiting.map((e) => e.done));
  }

  /** Runs whatever is queued now and waits for it (on close). */
  async drain(): Promise<void> {
    const batch = this.take();
    if (batch) await this.flush(batch);
  }
}
