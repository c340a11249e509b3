import { setTimeout as delay } from "node:timers/promises";
import type { Connector, ExecOptions, PutFileOptions, RemoteProcess } from "./connector.js";
import type { OperationOptions } from "./deadline.js";
import { AbortError, isSremoteError, TimeoutError, UsageError } from "./errors.js";

/** What {@link RetryPolicy.onRetry} is told before each new attempt. */
export interface RetryEvent {
  /** The connector operation being retried (`"exec"`, `"getFile"`, …). */
  operation: string;
  /** The attempt that just failed, 1-based. */
  attempt: number;
  /** Why it failed. */
  error: unknown;
  /** How long the decorator waits before the next attempt. */
  delayMs: number;
}

/** How {@link withRetry} retries. Every field is optional. */
export interface RetryPolicy {
  /** Total attempts per operation, the first one included (default 3, at least 1). */
  attempts?: number | undefined;
  /** Backoff before the second attempt, in ms (default 200). */
  baseDelayMs?: number | undefined;
  /** Upper bound of any single backoff, in ms (default 5000). */
  maxDelayMs?: number | undefined;
  /**
   * Decides whether an error may be retried. Default: an SRemote error with
   * `retryable: true`, i.e. one raised where nothing could have run remotely. Override
   * only to be *more* careful: retrying an error that is not retryable may run a command twice.
   */
  shouldRetry?: ((error: unknown, operation: string) => boolean) | undefined;
  /** Called before each wait; for logging and metrics. Must not throw. */
  onRetry?: ((event: RetryEvent) => void) | undefined;
  /** Source of randomness for jitter, in [0, 1) (default `Math.random`); tests pin it. */
  random?: (() => number) | undefined;
}

const DEFAULTS = { attempts: 3, baseDelayMs: 200, maxDelayMs: 5000 } as const;

/**
 * Marks an error a retry decorator already retried until it gave up, so that a decorator
 * around it (the user's, around a connector whose factory composed one) does not multiply
 * the attempts. `Symbol.for`: it works across copies of this package.
 */
const EXHAUSTED = Symbol.for("sremote.retry.exhausted");

function exhausted(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { [EXHAUSTED]?: boolean })[EXHAUSTED] === true;
}

function markExhausted(error: unknown): unknown {
  if (typeof error === "object" && error !== null && Object.isExtensible(error)) {
    Object.defineProperty(error, EXHAUSTED, { value: true, enumerable: false, configurable: true });
  }
  return error;
}

function defaultShouldRetry(error: unknown): boolean {
  return isSremoteError(error) && error.retryable === true;
}

function checkNumber(name: string, value: number, min: number): void {
  if (!Number.isFinite(value) || value < min) {
    throw new UsageError(`withRetry: ${name} must be a finite number >= ${min}, got ${value}`);
  }
}

/** Resolves after `ms`, or rejects with the abort error when `signal` fires first. */
async function sleep(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    throw new AbortError(`${what} aborted`, { cause: signal?.reason });
  }
}

/**
 * Wraps a {@link Connector} so that operations failing with a *retryable* error (one the
 * connector raised because nothing could have run remotely: a refused connection, HTTP 503
 * before processing, a read that can simply be repeated) are attempted again, with bounded
 * exponential backoff and full jitter. Errors that are not retryable — a command whose
 * answer was lost, a timeout, an abort — propagate at once, so a command never runs twice
 * because of this decorator.
 *
 * Decorators do not multiply: an error an inner `withRetry` already retried until it gave
 * up is not retried again by an outer one.
 *
 * `timeoutMs` and `signal` cover the whole operation, retries and waits included: each
 * attempt gets the time that is left, and a wait that would outlast it ends the retries
 * with the last error. `status()` and `close()` pass through untouched.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for a malformed policy.
 */
export function withRetry(connector: Connector, policy: RetryPolicy = {}): Connector {
  const attempts = policy.attempts ?? DEFAULTS.attempts;
  const baseDelayMs = policy.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const maxDelayMs = policy.maxDelayMs ?? DEFAULTS.maxDelayMs;
  checkNumber("attempts", attempts, 1);
  if (!Number.isInteger(attempts)) throw new UsageError(`withRetry: attempts must be an integer, got ${attempts}`);
  checkNumber("baseDelayMs", baseDelayMs, 0);
  checkNumber("maxDelayMs", maxDelayMs, 0);
  const shouldRetry = policy.shouldRetry ?? defaultShouldRetry;
  const random = policy.random ?? Math.random;

  async function run<T, O extends OperationOptions>(
    operation: string,
    options: O | undefined,
    attempt: (options: O) => Promise<T>,
  ): Promise<T> {
    const opts = (options ?? {}) as O;
    const { signal, timeoutMs } = opts;
    if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new UsageError(`timeoutMs must be a non-negative finite number, got ${timeoutMs}`);
    }
    const what = `${connector.name}: ${operation}`;
    const started = performance.now();
    const remaining = () => (timeoutMs === undefined ? undefined : timeoutMs - (performance.now() - started));
    for (let n = 1; ; n++) {
      if (signal?.aborted) throw new AbortError(`${what} aborted`, { cause: signal.reason });
      const left = remaining();
      if (left !== undefined && left <= 0) {
        throw new TimeoutError(`${what} timed out after ${timeoutMs} ms`, timeoutMs ?? 0);
      }
      try {
        // Whole milliseconds, so a timeout message reads "after 1500 ms", not "1499.98 ms".
        return await attempt(left === undefined ? opts : { ...opts, timeoutMs: Math.ceil(left) });
      } catch (error) {
        if (exhausted(error) || !shouldRetry(error, operation)) throw error;
        if (n >= attempts) throw n > 1 ? markExhausted(error) : error;
        // Full jitter: a uniformly random wait below the exponential bound spreads out
        // clients that failed together (a gateway restart) instead of synchronising them.
        const bound = Math.min(maxDelayMs, baseDelayMs * 2 ** (n - 1));
        const delayMs = Math.floor(random() * bound);
        const after = remaining();
        if (after !== undefined && delayMs >= after) throw n > 1 ? markExhausted(error) : error;
        policy.onRetry?.({ operation, attempt: n, error, delayMs });
        await sleep(delayMs, signal, what);
      }
    }
  }

  const wrapped: Connector = {
    name: connector.name,
    capabilities: connector.capabilities,
    connect: (options) => run("connect", options, (o) => connector.connect(o)),
    close: () => connector.close(),
    status: (options) => connector.status(options),
    homeDir: (options) => run("homeDir", options, (o) => connector.homeDir(o)),
    putFile: (path, data, options?: PutFileOptions) => run("putFile", options, (o) => connector.putFile(path, data, o)),
    getFile: (path, options) => run("getFile", options, (o) => connector.getFile(path, o)),
    deleteFile: (path, options) => run("deleteFile", options, (o) => connector.deleteFile(path, o)),
    exec: (argv, options?: ExecOptions) => run("exec", options, (o) => connector.exec(argv, o)),
    [Symbol.asyncDispose]: () => connector.close(),
  };
  const deleteFiles = connector.deleteFiles?.bind(connector);
  if (deleteFiles) {
    wrapped.deleteFiles = (paths, options) => run("deleteFiles", options, (o) => deleteFiles(paths, o));
  }
  const spawn = connector.spawn?.bind(connector);
  if (spawn) {
    wrapped.spawn = (argv, options?: Omit<ExecOptions, "stdin">): Promise<RemoteProcess> =>
      run("spawn", options, (o) => spawn(argv, o));
  }
  return wrapped;
}
