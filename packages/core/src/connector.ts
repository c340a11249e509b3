import type { Readable, Writable } from "node:stream";
import type { OperationOptions } from "./deadline.js";
import type { SremoteError } from "./errors.js";

/** Options for {@link Connector.putFile}. */
export interface PutFileOptions extends OperationOptions {
  /** POSIX permission bits of the file written (default `0o600`). */
  mode?: number | undefined;
}

/** Options for {@link Connector.exec} and {@link Connector.spawn}. */
export interface ExecOptions extends OperationOptions {
  /** Working directory of the command (default: the connector's, usually the home folder). */
  cwd?: string | undefined;
  /** Variables added to (or overriding) the command's environment. */
  env?: Readonly<Record<string, string>> | undefined;
  /**
   * Run in a login environment (profile read, site modules loaded), as the seed's
   * `keep_env` did. Connectors without the notion ignore it.
   */
  loginEnv?: boolean | undefined;
  /** Bytes (or UTF-8 text) written to the command's stdin, which is then closed. `exec` only. */
  stdin?: Uint8Array | string | undefined;
}

/** What a finished command produced. A non-zero exit is data here, not an error. */
export interface ExecResult {
  /** stdout decoded as UTF-8 (invalid sequences replaced). */
  stdout: string;
  /** stderr decoded as UTF-8. */
  stderr: string;
  /** The exit status; `null` when the command was ended by a signal. */
  exitCode: number | null;
  /** The signal that ended the command (`"SIGKILL"`…), else `null`. */
  signal: string | null;
}

/** How a spawned process ended. */
export interface ProcessExit {
  exitCode: number | null;
  signal: string | null;
  /**
   * Set when the process's end could not be observed because the transport failed
   * (`CONNECTION_LOST`) or the connector was closed (`CLOSED`): `exitCode` and `signal`
   * are then `null` and say nothing. Lets a session carrier fail its calls with the cause.
   */
  error?: SremoteError | undefined;
}

/** A live remote process, returned by {@link Connector.spawn}. */
export interface RemoteProcess {
  /** The process's stdin. End it to send EOF. */
  readonly stdin: Writable;
  /** The process's stdout, as raw bytes. */
  readonly stdout: Readable;
  /** The process's stderr, as raw bytes. */
  readonly stderr: Readable;
  /** Settles once the process has ended and its streams are closed; never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** Ends the process (default `SIGTERM`); idempotent, harmless after exit. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Optional: from now on, stdout's bytes are read into memory the reader chooses, and
   * `stdout` emits no more `'data'` (it still emits `'end'` and `'close'`, and `exited`
   * still waits for it). Lets a reader that knows a large message is coming (the session's
   * frame decoder) have the bytes land in that message's own buffer: no chunk per read, no
   * copy. Bytes `stdout` holds but has not emitted yet are handed to `reader` first.
   * Connectors that cannot read into caller memory leave it out (the client falls back to
   * `'data'`); calling it twice is a `UsageError`.
   */
  readonly readStdoutInto?: ((reader: StdoutReader) => void) | undefined;
}

/**
 * The reader given to {@link RemoteProcess.readStdoutInto}.
 *
 * @example
 * ```ts
 * const scratch = new Uint8Array(64 * 1024);
 * proc.readStdoutInto?.({ buffer: () => scratch, onData: (bytes) => decoder.push(bytes) });
 * ```
 */
export interface StdoutReader {
  /**
   * Where the next read may write: any length ≥ 1, all of which it may fill. Asked once
   * before each read, after {@link onData} handled the previous one.
   */
  buffer(): Uint8Array;
  /**
   * The bytes one read brought, as a view: usually the start of the last {@link buffer}, but
   * the first reads after the switch may land in memory the connector chose. Must be used or
   * copied before returning when it lies in memory the reader reuses.
   */
  onData(bytes: Uint8Array): void;
}

/** Connection state as a connector sees it. */
export interface ConnectorStatus {
  /** True when the connector holds a working connection or session right now. */
  connected: boolean;
  /** Human-readable facts: host, user, session lifetime… never secrets. */
  detail?: string | undefined;
  /** Machine-readable facts for `doctor` and logs. */
  info?: Readonly<Record<string, unknown>> | undefined;
}

/** What a connector can do beyond the required primitives. */
export interface ConnectorCapabilities {
  /** `spawn` exists: the client may use the session carrier. */
  spawn: boolean;
  /** `exec` honours `stdin`. */
  stdin: boolean;
  /** `exec` reports the signal that ended a command. */
  signals: boolean;
  /** `putFile` honours `mode`. */
  fileModes: boolean;
}

/**
 * The contract every transport implements: the seed's five primitives made asynchronous,
 * typed and safe, plus lifecycle. Implementations are built with `defineConnector`, which
 * supplies checks, deadlines, `CLOSED`, close and fallbacks, and are created by factory functions
 * (`localConnector()`, `sshConnector(options)`), connect lazily on first use, and prove
 * themselves with `describeConnectorConformance` from `@sremote/testkit`.
 *
 * Rules every implementation follows:
 * - argv is an array; a connector that goes through a remote shell quotes each element
 *   with {@link shQuote}. Nothing builds a command line by concatenating user data.
 * - Transport failures reject with a {@link ConnectorError} carrying a stable code; a
 *   command's non-zero exit status is data in {@link ExecResult}.
 * - Every operation honours `signal` and `timeoutMs`, rejecting with `ABORTED`/`TIMEOUT`
 *   and ending whatever it started remotely where it can.
 * - `close()` is idempotent; operations after it reject with `CLOSED`.
 */
export interface Connector {
  /** Short name used as the prefix of error messages (`"ssh"`, `"local"`, `"newt"`). */
  readonly name: string;
  /** Optional capabilities; `spawn` must be present exactly when `capabilities.spawn`. */
  readonly capabilities: ConnectorCapabilities;

  /** Opens the connection (authenticates, verifies host keys). Called implicitly by every operation. */
  connect(options?: OperationOptions): Promise<void>;
  /** Ends the connection and everything it started; pending operations reject with `CLOSED`. */
  close(): Promise<void>;
  /** Reports whether the connection works, without throwing for a dead connection. */
  status(options?: OperationOptions): Promise<ConnectorStatus>;

  /** The remote account's home folder, absolute. */
  homeDir(options?: OperationOptions): Promise<string>;
  /**
   * Writes a whole file (created or replaced), binary-safe. A missing parent folder
   * rejects with `FILE_NOT_FOUND`; the folder is not created.
   */
  putFile(path: string, data: Uint8Array, options?: PutFileOptions): Promise<void>;
  /** Reads a whole file, binary-safe. A missing file rejects with `FILE_NOT_FOUND`. */
  getFile(path: string, options?: OperationOptions): Promise<Uint8Array>;
  /** Deletes a file; deleting a file that does not exist succeeds. */
  deleteFile(path: string, options?: OperationOptions): Promise<void>;
  /**
   * Deletes many files, in as few round trips as the transport allows; missing files are
   * success. Optional: connectors built with `defineConnector` always have it.
   */
  deleteFiles?(paths: readonly string[], options?: OperationOptions): Promise<void>;
  /** Runs `argv` to completion and returns its output and exit status. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts `argv` with live streams. Present only when `capabilities.spawn` is true. */
  spawn?(argv: readonly string[], options?: Omit<ExecOptions, "stdin">): Promise<RemoteProcess>;

  /** Same as {@link Connector.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}
