import { setTimeout as delay } from "node:timers/promises";
import {
  type MarkerCleanup,
  type MarkerLedger,
  type MarkerState,
  markerQueryScript,
  newCommandNonce,
  parseMarkerQuery,
} from "./command-marker.js";
import type { Deadline } from "./deadline.js";
import { ConnectorError, type ConnectorErrorCode, isSremoteError, type SremoteError } from "./errors.js";

/** How often and how patiently a connector repeats requests that are safe to repeat. */
export interface RequestBudget {
  /** Sends of one request, the first included (at least 1). */
  attempts: number;
  /** Bound of the first backoff, in ms; doubles each time. */
  baseDelayMs: number;
  /** Upper bound of one backoff, in ms. */
  maxDelayMs: number;
  /** Randomness for jitter, in [0, 1) (default `Math.random`). */
  random?: (() => number) | undefined;
}

/** Codes of a request failure after which the server may or may not have acted. */
const AMBIGUOUS_CODES: ReadonlySet<string> = new Set(["UNAVAILABLE", "CONNECTION_LOST", "TIMEOUT"]);

/**
 * True when `err` leaves open whether a non-idempotent request was acted on: a gateway
 * status (502/503/504) or a connection lost or timed out after the request was sent —
 * raised not-retryable by the transport because it may have run.
 */
export function isAmbiguousFailure(err: unknown): boolean {
  return isSremoteError(err) && !err.retryable && AMBIGUOUS_CODES.has(err.code);
}

/** Marks an error as given up on, so an outer `withRetry` does not multiply the attempts. */
function exhausted<E>(err: E): E {
  if (typeof err === "object" && err !== null && Object.isExtensible(err)) {
    Object.defineProperty(err, Symbol.for("sremote.retry.exhausted"), {
      value: true,
      enumerable: false,
      configurable: true,
    });
  }
  return err;
}

/** Waits a jittered backoff; false when it would outlast `dl` (or `dl` fired). */
async function backoff(n: number, budget: RequestBudget, dl: Deadline): Promise<boolean> {
  const bound = Math.min(budget.maxDelayMs, budget.baseDelayMs * 2 ** (n - 1));
  const ms = Math.floor((budget.random ?? Math.random)() * bound);
  if (dl.signal.aborted) return false;
  try {
    await delay(ms, undefined, { signal: dl.signal });
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends a request that is safe to repeat (a read, an overwrite, an idempotent command),
 * again after each failure `retry` accepts — by default a `retryable` error or an
 * ambiguous one (the request being idempotent, "maybe ran" is harmless) — with full-jitter
 * backoff, at most `budget.attempts` times and never past `dl`.
 */
export async function repeatSafely<T>(
  send: (attempt: number) => Promise<T>,
  dl: Deadline,
  budget: RequestBudget,
  retry: (err: unknown) => boolean = (err) => isSremoteError(err) && (err.retryable || isAmbiguousFailure(err)),
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await send(n);
    } catch (err) {
      if (dl.signal.aborted || !retry(err)) throw err;
      if (n >= budget.attempts || !(await backoff(n, budget, dl))) throw n > 1 ? exhausted(err) : err;
    }
  }
}

/** What {@link runExactlyOnce} needs from a connector. */
export interface ExactlyOnceIo<R> {
  /** The connector's name, for errors. */
  connector: string;
  /** What the command does, for messages (`"run /bin/echo"`). */
  what: string;
  /** The marker folder, a shell word (see `markerDir`). */
  dir: string;
  /** Removed markers are noted here and carried by later commands. */
  ledger: MarkerLedger;
  /**
   * Sends the command wrapped by `recordedRun` with `nonce`, removing `cleanup`'s markers
   * first. Resolves with its answer, or `undefined` when the answer had no exit marker
   * (a second delivery of a request that is still running, or the shell was killed).
   */
  send(nonce: string, cleanup: MarkerCleanup, dl: Deadline): Promise<R | undefined>;
  /**
   * Runs `script` with `/bin/sh -c` as an idempotent command (sent once: repeating is done
   * here) and returns its stdout and stderr, whatever its status.
   */
  query(script: string, dl: Deadline): Promise<{ stdout: string; stderr: string }>;
  /** The answer of a command that ran, rebuilt from its recorded markers. */
  recovered(record: { exitCode: number; stdout: string; stderr: string }): R;
}

function ambiguousError(
  io: ExactlyOnceIo<unknown>,
  code: ConnectorErrorCode,
  message: string,
  cause: unknown,
  details: Record<string, unknown> = {},
): ConnectorError {
  return new ConnectorError(code, io.connector, `${io.what}: ${message}`, {
    cause,
    retryable: false,
    details: { ...(cause as { details?: Record<string, unknown> })?.details, ...details },
  });
}

/**
 * Runs a non-idempotent remote command exactly once over a transport that may fail after
 * acting (see docs/exactly-once.md):
 *
 * - a failure proving nothing ran (`retryable`: never sent, refused with 429) → sent again
 *   with backoff, under `budget` and `dl`;
 * - an ambiguous failure (503, reset, timeout) or an answer without exit marker → asked,
 *   with a safe query repeated under the same budget, whether the nonce ran: `done` → its
 *   recorded answer is returned; `not-run` (the nonce is now fenced) → sent again with a
 *   new nonce; `running` → asked again after a backoff while `dl` allows; `died` →
 *   `COMMAND_FAILED`; `unknown` → the original failure, not retryable.
 *
 * Every error it throws is either not retryable (the command may have run) or was retried
 * until the budget ran out.
 */
export async function runExactlyOnce<R>(io: ExactlyOnceIo<R>, dl: Deadline, budget: RequestBudget): Promise<R> {
  for (let sendNo = 1; ; sendNo++) {
    const nonce = newCommandNonce();
    const cleanup = io.ledger.take();
    let cause: unknown;
    try {
      const answer = await io.send(nonce, cleanup, dl);
      if (answer !== undefined) {
        io.ledger.add(nonce);
        return answer;
      }
      cause = new ConnectorError("COMMAND_FAILED", io.connector, `${io.what}: the answer has no exit marker`, {
        details: { markerMissing: true },
      });
    } catch (err) {
      if (dl.signal.aborted) {
        io.ledger.restore(cleanup);
        throw err;
      }
      if (isSremoteError(err) && err.retryable) {
        // Refused or never sent: nothing ran, the cleanup did not either.
        io.ledger.restore(cleanup);
        if (sendNo >= budget.attempts || !(await backoff(sendNo, budget, dl))) {
          throw sendNo > 1 ? exhausted(err) : err;
        }
        continue;
      }
      if (!isAmbiguousFailure(err)) {
        io.ledger.restore(cleanup);
        throw err;
      }
      cause = err;
    }
    const state = await ask(io, nonce, dl, budget);
    if (state.state === "not-run") {
      io.ledger.restore(cleanup);
      io.ledger.addTombstone(nonce); // the fence stays, against a late delivery
      if (sendNo >= budget.attempts || !(await backoff(sendNo, budget, dl))) {
        throw exhausted(
          new ConnectorError(
            (cause as SremoteError).code as ConnectorErrorCode,
            io.connector,
            `${io.what}: did not run (checked, and fenced) and could not be sent again within the budget: ${(cause as Error).message}`,
            // Proven not to have run, and never will: safe to repeat.
            { cause, retryable: true, details: { ...(cause as { details?: object }).details, ran: false } },
          ),
        );
      }
      continue;
    }
    if (state.state === "done") {
      io.ledger.addTombstone(nonce); // its `rc` stays, against a late second delivery
      return io.recovered({ exitCode: state.exitCode, stdout: state.stdout, stderr: state.stderr });
    }
    if (state.state === "died") {
      io.ledger.addTombstone(nonce);
      throw ambiguousError(
        io,
        "COMMAND_FAILED",
        "the command was killed before it ended (for example by the gateway's time limit): its exit marker is missing",
        cause,
        { markerMissing: true, ran: true },
      );
    }
    io.ledger.addUnsettled(nonce);
    throw ambiguousError(
      io,
      (cause as SremoteError).code as ConnectorErrorCode,
      `${(cause as Error).message.replace(/^[a-z]+: /, "")}; whether it ran cannot be told (${
        state.state === "unknown" ? state.detail : "still running"
      }), so it is not sent again`,
      cause,
      { ran: "unknown" },
    );
  }
}

/**
 * Asks whether `nonce` ran; while it is `running`, asks again after a backoff as long as
 * `dl` allows. A query that keeps failing gives `unknown`.
 */
async function ask<R>(io: ExactlyOnceIo<R>, nonce: string, dl: Deadline, budget: RequestBudget): Promise<MarkerState> {
  for (let round = 1; ; round++) {
    let state: MarkerState;
    try {
      state = await repeatSafely(
        async () => {
          const q = newCommandNonce();
          const r = await io.query(markerQueryScript(nonce, io.dir, q), dl);
          const s = parseMarkerQuery(r.stdout, r.stderr, q);
          // An answer without the query's marker was cut: ask again.
          if (s.state === "unknown" && s.detail === "the query printed no answer") {
            throw new ConnectorError("CONNECTION_LOST", io.connector, `${io.what}: ${s.detail}`, { retryable: true });
          }
          return s;
        },
        dl,
        budget,
      );
    } catch (err) {
      return { state: "unknown", detail: `asking failed: ${(err as Error).message}` };
    }
    if (state.state !== "running") return state;
    // Bounded by the deadline; without one, by the number of rounds.
    if (round >= Math.max(budget.attempts, 20) || !(await backoff(Math.min(round, 6), budget, dl))) {
      return state;
    }
  }
}
