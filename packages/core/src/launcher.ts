import type { Connector } from "./connector.js";
import type { OperationOptions } from "./deadline.js";
import type { SremoteError } from "./errors.js";

/**
 * The command that starts the agent: argv plus extra environment variables.
 * Built in one place (the client) so that a launcher — a Slurm `srun` wrapper, a container
 * runtime… — can rewrite it without touching carriers or connectors.
 */
export interface AgentCommand {
  argv: string[];
  env: Record<string, string>;
}

/** Where a wrapped agent command will run. */
export interface LaunchContext {
  /** Which carrier starts it: a long-lived session agent or one file-carrier call. */
  carrier: "session" | "file";
  /**
   * The session slot (0 … sessions-1) of a session agent, so a launcher can place slots on
   * distinct nodes; file-carrier calls get a slot too (round-robin), for the same reason.
   */
  slot: number;
}

/** Something a launcher wants its user to see: an allocation pending, granted, released. */
export interface LauncherEvent {
  /** The launcher's name (`"slurm"`). */
  launcher: string;
  /** `pending`: waiting for resources; `ready`: resources granted; `released`; `info`. */
  kind: "pending" | "ready" | "released" | "info";
  /** One human-readable line. */
  message: string;
  /** Machine-readable facts (job id, nodes, state…). Never secrets. */
  detail?: Readonly<Record<string, unknown>> | undefined;
}

/** Options of {@link Launcher.prepare}: the caller's deadline plus where to report progress. */
export interface LauncherPrepareOptions extends OperationOptions {
  /** Receives progress while resources are pending. */
  onEvent?: ((event: LauncherEvent) => void) | undefined;
}

/**
 * Starts agents somewhere other than the connector's own shell — on a compute node through a
 * batch scheduler, in a container… A launcher with a lifecycle:
 *
 * - `prepare` runs before every agent start (a session slot, or a file-carrier call) with that
 *   operation's deadline; it acquires resources the first time (e.g. a Slurm allocation) and
 *   must be cheap once they are held. It rejects with a typed error — `SCHEDULER` for a
 *   scheduler's refusal — and honours abort and timeout, releasing what it half-acquired.
 * - `wrap` rewrites the agent's command (synchronous, pure).
 * - `release` gives everything back. The client calls it on `close()`, after a failed start,
 *   and when a call times out or is aborted; the next `prepare` acquires afresh. Idempotent.
 * - `invalidate` (optional) tells the launcher that an agent it started died unexpectedly,
 *   so the next `prepare` checks its resources are still alive instead of trusting a cache.
 *
 * The plain function form, `(command, carrier) => command`, stays for stateless rewrites.
 */
export interface Launcher {
  /** Short name used in events and error messages (`"slurm"`). */
  readonly name: string;
  /** Rewrites the agent's command for `context`. */
  wrap(command: AgentCommand, context: LaunchContext): AgentCommand;
  /** Acquires resources (idempotent, cheap when held). */
  prepare?(connector: Connector, options?: LauncherPrepareOptions): Promise<void>;
  /** Releases resources; idempotent, never throws for an already-released launcher. */
  release?(connector: Connector, options?: OperationOptions): Promise<void>;
  /** An agent this launcher started died unexpectedly: re-check resources on the next `prepare`. */
  invalidate?(): void;
  /**
   * Why an agent this launcher started ended, from the end of its stderr — e.g. a `SCHEDULER`
   * error when the scheduler cancelled its job or the time limit passed — or `undefined` when
   * the text does not say. The client reports the calls that agent was running with this
   * error instead of a bare `CONNECTION_LOST` (never `retryable`: the calls may have run).
   */
  explainExit?(stderr: string): SremoteError | undefined;
  /** Default receiver of the launcher's events (the client's own `onEvent` also gets them). */
  onEvent?: ((event: LauncherEvent) => void) | undefined;
}

/** A stateless rewrite: the original, plain form of a launcher. */
export type LauncherFunction = (command: AgentCommand, carrier: "session" | "file") => AgentCommand;

/** Either form a client accepts. */
export type AgentLauncher = Launcher | LauncherFunction;

/** Normalizes either form to a {@link Launcher}. */
export function toLauncher(launcher: AgentLauncher): Launcher {
  if (typeof launcher === "function") {
    return { name: launcher.name || "launcher", wrap: (command, context) => launcher(command, context.carrier) };
  }
  return launcher;
}
