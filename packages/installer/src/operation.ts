import { type Connector, type Deadline, deadline, type OperationOptions } from "@sremote/core";
import { countingConnector, type OperationCounts, zeroCounts } from "./operation-counts.js";

/**
 * What an entry point (install, attach, uninstall, doctor) rejects with. Once its own
 * deadline fired, whatever a step saw (a command's abort, a killed command's exit status)
 * is only a consequence: the deadline's error says what happened, `TIMEOUT` for `timeoutMs`
 * and `ABORTED` for the caller's signal. `fired` is read when the failure was caught, so
 * that the deadline passing during the cleanup afterwards does not hide the real error.
 */
export function operationError(d: Deadline, fired: boolean, what: string, err: unknown): unknown {
  if (!fired) return err;
  const e = d.error(what);
  // A timeout has no cause of its own: keep the step's error, which says where it stopped.
  if (e.cause === undefined) Object.defineProperty(e, "cause", { value: err, configurable: true, writable: true });
  return e;
}

/** What {@link runOperation} gives its body. */
export interface Operation {
  /** The caller's connector, counting the operations made through it. */
  connector: Connector;
  counts: OperationCounts;
  /** The operation's deadline: `timeoutMs` and the caller's `signal` in one. */
  signal: AbortSignal;
}

/**
 * Runs one installer entry point (install, attach, uninstall, doctor) under one deadline
 * with counted connector operations; a failure is reported per {@link operationError},
 * after `cleanUp` (which must not throw) removed what the failed step left.
 */
export async function runOperation<T>(
  what: string,
  connector: Connector,
  options: OperationOptions,
  body: (operation: Operation) => Promise<T>,
  cleanUp?: () => Promise<void>,
): Promise<T> {
  const d = deadline(options);
  const counts = zeroCounts();
  try {
    return await body({ connector: countingConnector(connector, counts), counts, signal: d.signal });
  } catch (err) {
    const fired = d.signal.aborted;
    await cleanUp?.();
    throw operationError(d, fired, what, err);
  } finally {
    d.dispose();
  }
}
