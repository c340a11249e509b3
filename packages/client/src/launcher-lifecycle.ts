import {
  type AgentLauncher,
  type Connector,
  deadline,
  hasErrorCode,
  type Launcher,
  type LauncherEvent,
  type LauncherPrepareOptions,
  type OperationOptions,
  toLauncher,
  UsageError,
} from "@sremote/core";
import type { Logger } from "./logger.js";

/** How long giving a launcher's resources back may take (a `scancel` over the connector). */
const RELEASE_TIMEOUT_MS = 30_000;

/** How one call that went through a launcher ended, as far as the launcher is concerned. */
export type LaunchOutcome = "ok" | "stopped" | "failed-start" | "lost";

/**
 * What an error means for the launcher's resources: `stopped` (the call timed out or was
 * aborted: give them back), `failed-start` (the agent or its resources never came up),
 * `lost` (an agent the launcher started died under the call), `ok` (nothing to do: the
 * function raised, an argument was bad…).
 */
export function launchOutcome(error: unknown, carrier: "session" | "file"): LaunchOutcome {
  if (hasErrorCode(error, "TIMEOUT") || hasErrorCode(error, "ABORTED")) return "stopped";
  if (hasErrorCode(error, "SCHEDULER") || hasErrorCode(error, "NOT_SET_UP")) return "failed-start";
  // A session agent's death is seen by the pool (which knows it was unexpected); a file-carrier
  // agent that ended without answering is only seen here.
  if (carrier === "file" && hasErrorCode(error, "CONNECTION_LOST")) return "lost";
  return "ok";
}

/**
 * The client's side of a {@link Launcher} with a lifecycle: `prepare` before every agent start
 * (one at a time, so resources are acquired once), `release` after a failed start and after a
 * call timed out or was aborted — deferred while other calls still run on the same resources,
 * so one timed-out input of a `map` does not take its siblings down — and on close;
 * `invalidate` when an agent it started died unexpectedly.
 */
export class LauncherLifecycle {
  readonly launcher: Launcher;
  readonly #connector: Connector;
  readonly #logger: Logger;
  readonly #emit: (event: LauncherEvent) => void;
  /** Stops the agents that live in the launcher's resources (the pool's sessions). */
  readonly #stopAgents: () => Promise<void>;
  /** Prepares and releases run one after the other, in call order. */
  #chain: Promise<void> = Promise.resolve();
  /** Calls running through the launcher now. */
  #active = 0;
  #releaseWanted = false;
  /** True after a successful prepare, until release or invalidate: the call fast path skips prepare. */
  held = false;

  constructor(options: {
    launcher: Launcher;
    connector: Connector;
    logger: Logger;
    onEvent?: ((event: LauncherEvent) => void) | undefined;
    stopAgents: () => Promise<void>;
  }) {
    this.launcher = options.launcher;
    this.#connector = options.connector;
    this.#logger = options.logger;
    this.#stopAgents = options.stopAgents;
    const onEvent = options.onEvent;
    this.#emit = (event) => {
      this.#logger.info?.(`${event.launcher}: ${event.message}`, { kind: event.kind, ...(event.detail ?? {}) });
      try {
        onEvent?.(event);
      } catch (err) {
        this.#logger.warn?.("an onEvent listener threw", { error: String(err) });
      }
    };
  }

  /**
   * Acquires the launcher's resources (cheap when held) within `op`'s deadline, after any
   * prepare or release already under way.
   */
  async prepare(op: OperationOptions): Promise<void> {
    const prepare = this.launcher.prepare;
    if (!prepare) {
      this.held = true;
      return;
    }
    const d = deadline(op);
    try {
      d.throwIfDone(`${this.launcher.name}: preparing`);
      const started = performance.now();
      const turn = this.#chain.then(async () => {
        d.throwIfDone(`${this.launcher.name}: preparing`);
        const timeoutMs =
          op.timeoutMs === undefined ? undefined : Math.max(0, op.timeoutMs - (performance.now() - started));
        const options: LauncherPrepareOptions = { signal: op.signal, timeoutMs, onEvent: this.#emit };
        await prepare.call(this.launcher, this.#connector, options);
        this.held = true;
      });
      this.#chain = turn.catch(() => {});
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(d.error(`${this.launcher.name}: preparing`));
        d.signal.addEventListener("abort", onAbort, { once: true });
        // A launcher that gave up at the deadline too (its own timer, a hair earlier) is
        // still the call's timeout or abort; a scheduler's refusal keeps its message.
        const fail = (err: unknown) =>
          reject(
            d.signal.aborted && !hasErrorCode(err, "SCHEDULER") ? d.error(`${this.launcher.name}: preparing`) : err,
          );
        turn.then(resolve, fail).finally(() => d.signal.removeEventListener("abort", onAbort));
      });
    } finally {
      d.dispose();
    }
  }

  /** A call starts using the launcher's resources. */
  begin(): void {
    this.#active++;
  }

  /**
   * A call ended. Returns the release it caused, if any (the caller awaits it when its own
   * failure caused it, so a rejected call has left nothing behind).
   */
  end(outcome: LaunchOutcome): Promise<void> | undefined {
    this.#active--;
    if (outcome === "lost") this.invalidate();
    else if (outcome !== "ok") this.#releaseWanted = true;
    return this.#releaseWanted && this.#active === 0 ? this.release() : undefined;
  }

  /** An agent failed to start (outside any one call: a session slot): release once idle. */
  startFailed(): void {
    this.#releaseWanted = true;
    if (this.#active === 0) void this.release();
  }

  /** An agent the launcher started died unexpectedly. */
  invalidate(): void {
    this.held = false;
    try {
      this.launcher.invalidate?.();
    } catch (err) {
      this.#logger.warn?.("the launcher's invalidate() threw", { error: String(err) });
    }
  }

  /**
   * Stops the agents living in the launcher's resources, then gives the resources back.
   * Never rejects (a failure is logged): it runs on error and close paths.
   */
  release(): Promise<void> {
    this.#releaseWanted = false;
    this.held = false;
    const release = this.launcher.release;
    if (!release) return Promise.resolve();
    // Stopping the agents first also aborts session starts under way, whose prepare may hold
    // the chain (an allocation still pending).
    const stopping = this.#stopAgents().catch((err: unknown) => {
      this.#logger.warn?.("stopping the agents before a release failed", { error: String(err) });
    });
    const turn = this.#chain.then(async () => {
      this.held = false;
      await stopping;
      const options: LauncherPrepareOptions = { timeoutMs: RELEASE_TIMEOUT_MS, onEvent: this.#emit };
      await release.call(this.launcher, this.#connector, options);
    });
    const settled = turn.catch((err: unknown) => {
      this.#logger.warn?.(`${this.launcher.name}: releasing its resources failed`, { error: String(err) });
    });
    this.#chain = settled;
    return settled;
  }
}

/**
 * Runs `work` (one call through a launcher with a lifecycle) and tells the lifecycle how it
 * ended; a release the failure caused is awaited, so nothing is left behind when the call
 * rejects.
 */
export async function trackedCall<R>(
  life: LauncherLifecycle,
  carrier: "session" | "file",
  work: () => Promise<R>,
): Promise<R> {
  life.begin();
  let result: R;
  try {
    result = await work();
  } catch (err) {
    const releasing = life.end(launchOutcome(err, carrier));
    if (releasing) {
      // Bounded: a launcher that ignores its deadline must not hold the caller's error forever.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, RELEASE_TIMEOUT_MS);
        timer.unref?.();
      });
      await Promise.race([releasing, bound]);
      clearTimeout(timer);
    }
    throw err;
  }
  void life.end("ok");
  return result;
}

/**
 * The client's launcher from its options: normalized with core's `toLauncher`, plus a
 * lifecycle when the launcher has `prepare`, `release` or `invalidate`.
 *
 * @throws UsageError when `launcher` is neither a function nor an object with `wrap()`.
 */
export function launcherFor(
  options: {
    connector: Connector;
    launcher?: AgentLauncher | undefined;
    onEvent?: ((event: LauncherEvent) => void) | undefined;
  },
  logger: Logger,
  stopAgents: () => Promise<void>,
): { launcher: Launcher | undefined; lifecycle: LauncherLifecycle | undefined } {
  const l = options.launcher;
  if (l === undefined) return { launcher: undefined, lifecycle: undefined };
  if (typeof l !== "function" && (typeof l !== "object" || l === null || typeof l.wrap !== "function")) {
    throw new UsageError("launcher must be a function or an object with a wrap() method");
  }
  const launcher = toLauncher(l);
  if (!launcher.prepare && !launcher.release && !launcher.invalidate) return { launcher, lifecycle: undefined };
  const { connector, onEvent } = options;
  return { launcher, lifecycle: new LauncherLifecycle({ launcher, connector, logger, onEvent, stopAgents }) };
}
