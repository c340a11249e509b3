/**
 * Fan-out: one call per input, a bounded window of calls in flight, results in input order.
 * Shared by `RemoteClient.map` and `ClientGroup.map`.
 */
import { setMaxListeners } from "node:events";
import { AbortError, SremoteError, UsageError } from "@sremote/core";
import { describeValue, isPlainObject } from "./call-message.js";
import type { CallOptions } from "./options.js";
import { isKwargs } from "./proxy.js";

/** The outcome of one input of a `map`: its value, or why it failed. Never both. */
export type MapResult<T = unknown> =
  | {
      ok: true;
      /** The input's position (0-based) in the input sequence. */
      index: number;
      /** The function's return value. */
      value: T;
      /** What the call printed (a failed call's output is on its `RemoteExecError`). */
      stdout: string;
      stderr: string;
      /** True when stdout or stderr was cut at the output limit. */
      truncated: boolean;
    }
  | {
      ok: false;
      /** The input's position (0-based) in the input sequence. */
      index: number;
      /** Why this input failed: a `RemoteExecError` when the function raised, else the call's error. */
      error: SremoteError;
    };

/** Counts reported after each input's call settles (in completion order). */
export interface MapProgress {
  /** The input whose call just settled. */
  index: number;
  /** Whether it succeeded. */
  ok: boolean;
  /** Inputs read and sent so far. */
  started: number;
  /** Inputs whose call has settled (succeeded or failed). */
  done: number;
  /** Inputs that failed so far. */
  failed: number;
  /** Calls running now (`started - done`). */
  inFlight: number;
}

/** Options of a `map`: the options of each call, plus the window, progress and abort. */
export interface MapOptions extends Omit<CallOptions, "signal" | "onOutput"> {
  /**
   * Most calls in flight and results held (default: twice the pool's workers,
   * `2 × poolSize × workersPerSession`, at least 2). Memory is bounded by it, not by the
   * number of inputs.
   */
  concurrency?: number | undefined;
  /**
   * Stops the map: calls in flight end as `ABORTED` results, no more inputs are read, and
   * the iteration rejects with an `AbortError` once those results were delivered.
   */
  signal?: AbortSignal | undefined;
  /** Called after each input's call settles. A listener that throws ends the iteration. */
  onProgress?: ((progress: MapProgress) => void) | undefined;
}

/** How {@link orderedMap} runs one input: must not reject (failures are results). */
export type MapRunner<R> = (input: unknown, index: number, signal: AbortSignal) => Promise<R>;

/** Checks a `concurrency` option. */
export function checkConcurrency(concurrency: unknown): number {
  if (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new UsageError(`concurrency must be a positive integer, got ${String(concurrency)}`);
  }
  return concurrency;
}

/**
 * Splits one map input into `call`'s arguments: an array is the positional arguments (a
 * trailing `kw({...})` holds keyword arguments), a plain object the keyword arguments (which
 * win over the map's `kwargs` option, as a trailing `kw()` does).
 *
 * @throws UsageError for anything else (that input's result, not the batch's).
 */
export function splitMapInput(input: unknown): {
  args: readonly unknown[] | Record<string, unknown>;
  kwargs: Record<string, unknown> | undefined;
} {
  if (Array.isArray(input)) {
    const last = input[input.length - 1];
    if (isKwargs(last)) return { args: input.slice(0, -1), kwargs: last.values };
    return { args: input, kwargs: undefined };
  }
  if (isPlainObject(input)) return { args: [], kwargs: input };
  throw new UsageError(
    `a map input is an array of positional arguments or a plain object of keyword arguments, got ${describeValue(input)} (wrap a single argument: [x])`,
  );
}

/** A first-in first-out queue without `Array#shift`'s cost on long queues. */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  shift(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head++] = undefined;
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  drain(): T[] {
    const rest = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

/**
 * Runs `run` over `inputs` with at most `concurrency` calls in flight or results waiting,
 * yielding results in input order. Inputs are read only when the window has room. See
 * {@link MapOptions} for abort; when the consumer stops early, calls in flight are aborted
 * and awaited, and the input iterator is closed.
 */
export async function* orderedMap<R extends { ok: boolean }>(
  inputs: Iterable<unknown> | AsyncIterable<unknown>,
  options: {
    concurrency: number;
    signal?: AbortSignal | undefined;
    onProgress?: ((progress: MapProgress) => void) | undefined;
    run: MapRunner<R>;
  },
): AsyncGenerator<R, void, undefined> {
  const concurrency = checkConcurrency(options.concurrency);
  const iterator = inputIterator(inputs);
  const { signal: outer, onProgress, run } = options;
  const controller = new AbortController();
  // Every call in the window listens on it: bounded by `concurrency`, not a leak.
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) controller.abort(outer.reason);
  else outer?.addEventListener("abort", onAbort, { once: true });
  const window = new Fifo<Promise<R>>();
  let exhausted = false;
  let inputError: { error: unknown } | undefined;
  let started = 0;
  let done = 0;
  let failed = 0;
  let listenerError: { error: unknown } | undefined;
  const settled = (index: number, r: R): R => {
    done++;
    if (!r.ok) failed++;
    try {
      onProgress?.({ index, ok: r.ok, started, done, failed, inFlight: started - done });
    } catch (error) {
      listenerError ??= { error }; // raised at the next result, never as an unhandled rejection
    }
    return r;
  };
  try {
    for (;;) {
      while (!exhausted && !controller.signal.aborted && window.length < concurrency) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (error) {
          inputError = { error };
          exhausted = true;
          break;
        }
        if (next.done) {
          exhausted = true;
          break;
        }
        const index = started++;
        window.push(run(next.value, index, controller.signal).then((r) => settled(index, r)));
      }
      if (window.length === 0) break;
      const result = await window.shift();
      if (listenerError) throw listenerError.error;
      yield result;
    }
    if (inputError) throw inputError.error;
    if (outer?.aborted) {
      throw new AbortError(`map aborted: ${done} of the ${started} inputs read were answered`, {
        cause: outer.reason,
      });
    }
  } finally {
    outer?.removeEventListener("abort", onAbort);
    const rest = window.drain();
    if (rest.length > 0) {
      controller.abort(new AbortError("the map's consumer stopped"));
      await Promise.allSettled(rest);
    }
    if (!exhausted) await iterator.return?.();
  }
}

/** One iterator interface over sync and async iterables. */
function inputIterator(inputs: Iterable<unknown> | AsyncIterable<unknown>): {
  next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>>;
  return?(): unknown;
} {
  if (inputs != null && typeof (inputs as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function") {
    return (inputs as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }
  if (inputs != null && typeof (inputs as Iterable<unknown>)[Symbol.iterator] === "function") {
    return (inputs as Iterable<unknown>)[Symbol.iterator]();
  }
  throw new UsageError(`map inputs must be an iterable or an async iterable, got ${describeValue(inputs)}`);
}

/** `err` as the error of one input's result. */
export function inputError(err: unknown): SremoteError {
  return SremoteError.from(err, "map input");
}

/**
 * `client.map`'s loop: `call` runs one input (its arguments and keyword arguments merged
 * into the map's call options) and resolves to the call's value.
 */
export function mapCalls<T>(
  call: (
    args: readonly unknown[] | Record<string, unknown>,
    options: CallOptions & { signal: AbortSignal },
  ) => Promise<{ value: T; stdout: string; stderr: string; truncated: boolean }>,
  inputs: Iterable<unknown> | AsyncIterable<unknown>,
  options: MapOptions,
  defaultConcurrency: number,
): AsyncGenerator<MapResult<T>, void, undefined> {
  const { concurrency, onProgress, signal, ...callOptions } = options;
  return orderedMap<MapResult<T>>(inputs, {
    concurrency: concurrency ?? defaultConcurrency,
    signal,
    onProgress,
    run: async (input, index, callSignal) => {
      try {
        const { args, kwargs } = splitMapInput(input);
        const merged = kwargs ? { ...callOptions.kwargs, ...kwargs } : callOptions.kwargs;
        const r = await call(args, { ...callOptions, kwargs: merged, signal: callSignal });
        return { ok: true, index, value: r.value, stdout: r.stdout, stderr: r.stderr, truncated: r.truncated };
      } catch (err) {
        return { ok: false, index, error: inputError(err) };
      }
    },
  });
}
