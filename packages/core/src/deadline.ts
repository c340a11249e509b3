import { AbortError, TimeoutError, UsageError } from "./errors.js";

/** Options every asynchronous operation takes. */
export interface OperationOptions {
  /** Cancels the operation; it then rejects with {@link AbortError} (`ABORTED`). */
  signal?: AbortSignal | undefined;
  /** Rejects with {@link TimeoutError} (`TIMEOUT`) after this many milliseconds. */
  timeoutMs?: number | undefined;
}

/** A signal that fires on the caller's abort or on the deadline, and says which. */
export interface Deadline {
  /** Fires when the caller aborts or the time is up. */
  readonly signal: AbortSignal;
  /** The error to reject with once `signal` fired (timeout or abort). */
  error(what: string): Error;
  /** Throws {@link Deadline.error} if the signal already fired. */
  throwIfDone(what: string): void;
  /** Stops the timer. Call it when the operation ends. */
  dispose(): void;
  /** True once the time ran out (then {@link Deadline.error} is a `TimeoutError`); false for an abort. */
  readonly timedOut: boolean;
}

/**
 * Combines `options.signal` and `options.timeoutMs` into one {@link Deadline}, so an
 * operation waits on one signal and still reports the right error. `closeSignal` (the
 * owner's close, for connectors) fires it too; the error is then the abort error, which
 * {@link defineConnector}'s operations report as `CLOSED`.
 */
export function deadline(options: OperationOptions = {}, closeSignal?: AbortSignal): Deadline {
  const controller = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const { signal: outer, timeoutMs } = options;
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
    throw new UsageError(`timeoutMs must be a non-negative finite number, got ${timeoutMs}`);
  }
  const onAbort = () => controller.abort(outer?.reason);
  if (outer) {
    if (outer.aborted) controller.abort(outer.reason);
    else outer.addEventListener("abort", onAbort, { once: true });
  }
  // The owner's close: a listener of our own instead of AbortSignal.any, which keeps
  // every combined signal alive until the owner's signal is collected.
  const onClose = () => controller.abort(closeSignal?.reason);
  if (closeSignal) {
    if (closeSignal.aborted) controller.abort(closeSignal.reason);
    else closeSignal.addEventListener("abort", onClose, { once: true });
  }
  if (timeoutMs !== undefined && !controller.signal.aborted) {
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    timer.unref?.();
  }
  const error = (what: string): Error =>
    timedOut
      ? new TimeoutError(`${what} timed out after ${timeoutMs} ms`, timeoutMs ?? 0)
      : new AbortError(`${what} aborted`, { cause: outer?.reason });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    error,
    throwIfDone(what) {
      if (controller.signal.aborted) throw error(what);
    },
    dispose() {
      if (timer) clearTimeout(timer);
      outer?.removeEventListener("abort", onAbort);
      closeSignal?.removeEventListener("abort", onClose);
    },
  };
}

/**
 * Waits for `promise`, or rejects with `signal`'s reason once it fires first. The promise
 * itself goes on (callers share it or clean up after it).
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
