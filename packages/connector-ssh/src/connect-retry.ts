import { type Connector, isSremoteError, UsageError, withRetry } from "@sremote/core";
import type { SshLogger } from "./options.js";

/** Attempts per operation when the connection could not be opened and nothing ran. */
export const DEFAULT_CONNECT_ATTEMPTS = 4;

/**
 * Wraps the connector in core's `withRetry` for one kind of failure only: `CONNECT_FAILED`
 * marked `retryable` — the server closed the connection during the handshake (sshd's
 * `MaxStartups` drops bursts of concurrent logins), refused it, or a jump host could not
 * reach the next hop. Nothing ran, so the operation is attempted again with jittered
 * exponential backoff (250 ms doubling, at most 2 s), within the operation's own
 * `timeoutMs`/`signal`. Authentication, host key and timeout failures are not retried.
 */
export function retryNothingRan<C extends Connector>(
  connector: C,
  attempts: number | undefined,
  logger: SshLogger | undefined,
): C {
  const n = attempts ?? DEFAULT_CONNECT_ATTEMPTS;
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`ssh: connectAttempts must be a positive integer, got ${n}`);
  if (n === 1) return connector;
  const wrapped = withRetry(connector, {
    attempts: n,
    baseDelayMs: 250,
    maxDelayMs: 2_000,
    shouldRetry: (error) => isSremoteError(error) && error.code === "CONNECT_FAILED" && error.retryable === true,
    onRetry: ({ operation, attempt, error, delayMs }) =>
      logger?.info?.(
        `ssh: ${operation} could not connect (attempt ${attempt}: ${(error as Error).message}); retrying in ${delayMs} ms`,
      ),
  });
  // Keep what the connector adds to the Connector interface (`settings`).
  for (const key of Object.keys(connector) as (keyof C)[]) {
    if (!(key in wrapped)) Object.defineProperty(wrapped, key, { get: () => connector[key], enumerable: true });
  }
  return wrapped as C;
}
