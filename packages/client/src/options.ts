import type { AgentLauncher, Connector, LauncherEvent, OperationOptions, RemoteLayout } from "@sremote/core";
import type { Logger } from "./logger.js";
import type { OutputListener } from "./session.js";

/** How calls travel: a long-lived agent (`session`), one Python process per call (`file`), or the best available (`auto`). */
export type CallMode = "auto" | "session" | "file";

/** Options of {@link RemoteClient}. */
export interface RemoteClientOptions {
  /** The transport. The client closes it on `close()` unless `closeConnector` is false. */
  connector: Connector;
  /**
   * Where the endpoint, temp and working folders are. Default: the user's
   * `~/.sremote/.location` when present, else `~/.sremote`, `~/.sremote/tmp`, `~`.
   */
  layout?: RemoteLayout | undefined;
  /** Carrier choice (default `"auto"`: `session` when the connector can spawn, else `file`). */
  mode?: CallMode | undefined;
  /** Most agent sessions kept open (default 1). */
  poolSize?: number | undefined;
  /** Calls one agent session runs at once (its worker threads, default 1). */
  workersPerSession?: number | undefined;
  /** Requests sent to one session before it answers (default 64). */
  maxInFlightPerSession?: number | undefined;
  /**
   * Upload the agent files before the first call when the endpoint has none or another
   * version (default true). Needs write access to the endpoint folder.
   */
  autoInstallAgent?: boolean | undefined;
  /**
   * Local folder holding the agent's files that are uploaded (`interpreter.sh`,
   * `sremote_agent/`). Default: `$SREMOTE_AGENT_DIR`, else the installed `@sremote/agent`
   * package. Set it in a bundled app, where that package's folder is not on disk.
   */
  agentDir?: string | undefined;
  /**
   * Python executable on the remote (`SREMOTE_PYTHON`); default: the endpoint's venv, else
   * the Python the installer recorded, else `python3` from PATH. Without it, the client's
   * later agent starts (more sessions, file-carrier calls) reuse the interpreter its first
   * agent reported (`sys.executable`), so a `python3` shim (pyenv) is not started again
   * each time; not through a `launcher`.
   */
  python?: string | undefined;
  /** Run the agent in a login environment (the seed's `keep_env`). */
  loginEnv?: boolean | undefined;
  /** Default per-call timeout in milliseconds (default: none). */
  timeoutMs?: number | undefined;
  /** How long an agent session may take to start (default 60 000 ms). */
  startTimeoutMs?: number | undefined;
  /** How long a timed-out call may take to stop before its session is recycled (default 2 000 ms). */
  cancelGraceMs?: number | undefined;
  /** Largest frame accepted from or sent to the agent (default 256 MiB). */
  maxFrameBytes?: number | undefined;
  /**
   * Starts agents somewhere else: a plain function rewrites the agent's command; a
   * `Launcher` object (e.g. `slurm()` from `@sremote/launcher-slurm`) also has a
   * lifecycle. The client awaits `prepare` before every agent start (a session slot, a
   * file-carrier call) within that operation's deadline; `wrap`s each command with its slot
   * (session slots 0…poolSize-1; file-carrier calls round-robin over the same slots); calls
   * `release` on `close()`, after a failed start and after a call timed out or was aborted
   * (once no other call is running on the same resources; idle session agents are stopped
   * first); and `invalidate` when a session agent it started died unexpectedly.
   */
  launcher?: AgentLauncher | undefined;
  /**
   * Receives the launcher's progress (an allocation pending, granted, released). Events are
   * also logged at `info`. The launcher's own `onEvent` is the launcher's business.
   */
  onEvent?: ((event: LauncherEvent) => void) | undefined;
  /** Close the connector when the client closes (default true). */
  closeConnector?: boolean | undefined;
  logger?: Logger | undefined;
}

/** Options of one call. */
export interface CallOptions extends OperationOptions {
  /** Keyword arguments (in addition to positional `args`). */
  kwargs?: Record<string, unknown> | undefined;
  /** Environment variables set for this call only. */
  env?: Record<string, string> | undefined;
  /** Environment variables set for this call only where unset. */
  envDefault?: Record<string, string> | undefined;
  /** Folders appended to `PATH` for this call only. */
  pathAppend?: string[] | undefined;
  /** Working folder of this call. */
  cwd?: string | undefined;
  /** Carrier for this call (default: the client's). */
  mode?: CallMode | undefined;
  /**
   * Receives output while the call runs (session carrier; the file carrier delivers it at
   * the end): what the call printed within ~10 ms arrives as one piece, stdout and stderr in
   * the order written, all of it before the call's result.
   */
  onOutput?: OutputListener | undefined;
  /** Per-stream cap on captured output in bytes (agent default 8 MiB). */
  outputLimit?: number | undefined;
}

/** What a successful call returns. */
export interface CallResult<T = unknown> {
  /** The function's return value, decoded per the protocol's value mapping. */
  value: T;
  /** What the call printed. */
  stdout: string;
  stderr: string;
  /** True when stdout or stderr exceeded the output limit and was cut. */
  truncated: boolean;
  /** Installed versions of the registered modules (`null`: not importable). */
  modules: Record<string, string | null>;
  /** Round-trip time seen by the client. */
  durationMs: number;
  /** Time spent inside the Python function, when the agent reported it. */
  remoteDurationMs: number | null;
  /** The carrier that ran the call. */
  carrier: "session" | "file";
}
