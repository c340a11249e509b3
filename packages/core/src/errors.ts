/**
 * One error hierarchy for every SRemote package. Match errors by `code` (stable strings),
 * not by `instanceof` alone: several copies of this package may coexist in one install.
 */

/** Every stable error code. Adding a code is a minor change; removing or renaming one is breaking. */
export const ERROR_CODES = [
  // Usage
  "INVALID_ARGUMENT",
  "INVALID_TARGET",
  "INVALID_LOCATION",
  // Connector / transport
  "AUTH_FAILED",
  "HOST_KEY_UNKNOWN",
  "HOST_KEY_MISMATCH",
  "CONNECT_FAILED",
  "CONNECT_TIMEOUT",
  "CONNECTION_LOST",
  "UNAVAILABLE",
  "FILE_NOT_FOUND",
  "PERMISSION_DENIED",
  "REMOTE_IO",
  "COMMAND_FAILED",
  "UNSUPPORTED",
  "CLOSED",
  // Remote endpoint
  "NOT_SET_UP",
  "VERSION_MISMATCH",
  "MODULES",
  "REMOTE_EXEC",
  // Batch scheduler (a launcher such as Slurm refused or lost the resources)
  "SCHEDULER",
  // Wire and control flow
  "PROTOCOL",
  "TIMEOUT",
  "ABORTED",
  "INTERNAL",
] as const;

/** A stable error code: see {@link ERROR_CODES}. */
export type SremoteErrorCode = (typeof ERROR_CODES)[number];

/** Options shared by every SRemote error. */
export interface SremoteErrorOptions {
  /** The underlying error, kept as `cause`. */
  cause?: unknown;
  /** True when the operation can be retried safely (nothing could have run remotely). */
  retryable?: boolean;
}

/** Base class of every SRemote error. */
export class SremoteError extends Error {
  override name = "SremoteError";
  /** Stable machine-readable code. */
  readonly code: SremoteErrorCode;
  /** True when retrying cannot repeat a side effect (nothing ran remotely). */
  readonly retryable: boolean;

  constructor(code: SremoteErrorCode, message: string, options: SremoteErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }

  /** A plain JSON-safe description (no cause chain, no secrets). */
  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable };
  }

  /**
   * `err` as an SRemote error, for a `catch` that must hand on one error type: `err` itself
   * when it is one (by shape, so a copy from another install counts); an {@link AbortError}
   * or {@link TimeoutError} for the platform's `AbortError` / `TimeoutError` (a
   * `DOMException` from `AbortSignal.abort()` / `AbortSignal.timeout()`); otherwise an
   * `INTERNAL` error with `err` as its `cause`. Never retryable unless `err` said so.
   *
   * @param context what was being done, prefixed to the message of a converted error.
   */
  static from(err: unknown, context?: string): SremoteError {
    if (isSremoteError(err)) return err;
    const name = typeof err === "object" && err !== null ? (err as { name?: unknown }).name : undefined;
    const text = err instanceof Error ? err.message : String(err);
    const message = context ? `${context}: ${text}` : text;
    if (name === "AbortError") return new AbortError(message, { cause: err });
    if (name === "TimeoutError") return new TimeoutError(message, Number.NaN, { cause: err });
    return new SremoteError("INTERNAL", message, { cause: err });
  }
}

/** Codes a {@link ConnectorError} may carry. */
export type ConnectorErrorCode = Extract<
  SremoteErrorCode,
  | "AUTH_FAILED"
  | "HOST_KEY_UNKNOWN"
  | "HOST_KEY_MISMATCH"
  | "CONNECT_FAILED"
  | "CONNECT_TIMEOUT"
  | "CONNECTION_LOST"
  | "UNAVAILABLE"
  | "FILE_NOT_FOUND"
  | "PERMISSION_DENIED"
  | "REMOTE_IO"
  | "COMMAND_FAILED"
  | "UNSUPPORTED"
  | "CLOSED"
>;

/** A transport failure: authentication, host key, network, remote file or command errors. */
export class ConnectorError extends SremoteError {
  override name = "ConnectorError";
  /** The connector that failed (`"ssh"`, `"local"`, …). */
  readonly connector: string;
  /** Extra facts for diagnostics (never secrets): path, host, fingerprint, exit status… */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ConnectorErrorCode,
    connector: string,
    message: string,
    options: SremoteErrorOptions & { details?: Record<string, unknown> } = {},
  ) {
    super(code, `${connector}: ${message}`, options);
    this.connector = connector;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), connector: this.connector, details: this.details };
  }
}

/** The remote endpoint is missing, incomplete, or runs an incompatible agent. */
export class RemoteNotSetupError extends SremoteError {
  override name = "RemoteNotSetupError";
  /** Facts gathered while trying: interpreter exit status, its stdout/stderr, versions. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    options: SremoteErrorOptions & {
      code?: "NOT_SET_UP" | "VERSION_MISMATCH";
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(options.code ?? "NOT_SET_UP", message, options);
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), details: this.details };
  }
}

/**
 * A batch scheduler (through a launcher such as `@sremote/launcher-slurm`) refused the request
 * — bad partition, over a limit, invalid account — or ended the job that ran the agent
 * (cancelled, time limit, node failure). `message` carries the scheduler's own words.
 * `retryable` is true only when nothing ran (the allocation was refused).
 */
export class SchedulerError extends SremoteError {
  override name = "SchedulerError";
  /** The launcher that talked to the scheduler (`"slurm"`). */
  readonly launcher: string;
  /** Facts for diagnostics: job id, state, the command that failed, its exit status. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    launcher: string,
    message: string,
    options: SremoteErrorOptions & { details?: Record<string, unknown> } = {},
  ) {
    super("SCHEDULER", `${launcher}: ${message}`, options);
    this.launcher = launcher;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), launcher: this.launcher, details: this.details };
  }
}

/** One unmet requirement. */
export interface ModuleProblem {
  /** The requirement's name as registered. */
  module: string;
  /** The PEP 440 specifier wanted (`""` when any version will do). */
  wanted: string;
  /** The version found remotely; `null` when the module is not importable there. */
  found: string | null;
}

/** A required remote module is missing or its version does not satisfy the specifier. */
export class RemoteModulesError extends SremoteError {
  override name = "RemoteModulesError";
  readonly problems: readonly ModuleProblem[];

  constructor(problems: ModuleProblem[], options: SremoteErrorOptions = {}) {
    const text = problems
      .map(
        (p) =>
          `${p.module}${p.wanted ? ` ${p.wanted}` : ""}: ${
            p.found === null ? "not installed" : p.found === "" ? "installed, version unknown" : `found ${p.found}`
          }`,
      )
      .join("; ");
    super("MODULES", `remote requirements not met: ${text}`, options);
    this.problems = Object.freeze([...problems]);
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

/** How a remote call failed on the Python side. */
export type RemoteExecKind =
  | "import"
  | "attribute"
  | "exception"
  | "serialization"
  | "protocol"
  | "internal"
  | "cancelled";

/** The remote Python code failed: not importable, not found, raised, or returned something unserializable. */
export class RemoteExecError extends SremoteError {
  override name = "RemoteExecError";
  readonly kind: RemoteExecKind;
  /** Python exception class name (`ValueError`, `ModuleNotFoundError`, …). */
  readonly type: string;
  /** The exception's own message (without the module/function prefix). */
  readonly remoteMessage: string;
  /** The Python traceback text, chained causes included. */
  readonly traceback: string;
  /** What the call printed before failing. */
  readonly stdout: string;
  readonly stderr: string;
  /** True when `stdout` or `stderr` was cut at the call's output limit. */
  readonly truncated: boolean;

  constructor(fields: {
    kind: RemoteExecKind;
    type: string;
    message: string;
    traceback?: string;
    stdout?: string;
    stderr?: string;
    truncated?: boolean;
    call?: string;
  }) {
    const where = fields.call ? `${fields.call}: ` : "";
    super("REMOTE_EXEC", `${where}${fields.type}: ${fields.message}`);
    this.kind = fields.kind;
    this.type = fields.type;
    this.remoteMessage = fields.message;
    this.traceback = fields.traceback ?? "";
    this.stdout = fields.stdout ?? "";
    this.stderr = fields.stderr ?? "";
    this.truncated = fields.truncated === true;
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      kind: this.kind,
      type: this.type,
      remoteMessage: this.remoteMessage,
      traceback: this.traceback,
    };
  }
}

/** Bytes on the wire did not follow the protocol (bad frame, bad message, oversize frame). */
export class ProtocolError extends SremoteError {
  override name = "ProtocolError";
  constructor(message: string, options: SremoteErrorOptions = {}) {
    super("PROTOCOL", message, options);
  }
}

/**
 * An operation ran past its `timeoutMs`. Its `name` is the platform's (`TimeoutError`, as
 * for `AbortSignal.timeout()`), on purpose: generic code that checks `err.name` treats both
 * alike; tell them apart by `code` (`TIMEOUT`), as for every SRemote error.
 */
export class TimeoutError extends SremoteError {
  override name = "TimeoutError";
  /** The budget that ran out, in milliseconds (`NaN` when unknown, see {@link SremoteError.from}). */
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options: SremoteErrorOptions = {}) {
    super("TIMEOUT", message, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * An operation was cancelled through its `AbortSignal`. Its `name` is the platform's
 * (`AbortError`) on purpose, so code written for `fetch` and `node:timers/promises` aborts
 * keeps working; its `code` is `ABORTED`.
 */
export class AbortError extends SremoteError {
  override name = "AbortError";
  constructor(message = "operation aborted", options: SremoteErrorOptions = {}) {
    super("ABORTED", message, options);
  }
}

/** Bad input from the caller: arguments, options, target strings, `.location` files. */
export class UsageError extends SremoteError {
  override name = "UsageError";
  constructor(
    message: string,
    options: SremoteErrorOptions & { code?: "INVALID_ARGUMENT" | "INVALID_TARGET" | "INVALID_LOCATION" } = {},
  ) {
    super(options.code ?? "INVALID_ARGUMENT", message, options);
  }
}

/** True when `err` is an SRemote error (by shape, so it works across package copies). */
export function isSremoteError(err: unknown): err is SremoteError {
  return (
    err instanceof SremoteError ||
    (typeof err === "object" &&
      err !== null &&
      typeof (err as { code?: unknown }).code === "string" &&
      (ERROR_CODES as readonly string[]).includes((err as { code: string }).code))
  );
}

/** True when `err` is an SRemote error with the given code. */
export function hasErrorCode(err: unknown, code: SremoteErrorCode): boolean {
  return isSremoteError(err) && err.code === code;
}
