import { StringDecoder } from "node:string_decoder";
import {
  type Connector,
  type Deadline,
  deadline,
  type ExecResult,
  isSremoteError,
  type OperationOptions,
  posixJoin,
} from "@sremote/core";
import { LOCK_FILE } from "./endpoint-files.js";
import { InstallError, type InstallErrorCode, type InstallStep, logTail } from "./errors.js";
import type { StepRecorder } from "./events.js";
import { remoteScript } from "./remote-scripts.js";

/** Environment of every installer command: no prompts, no pip self-check, unbuffered output. */
export const COMMAND_ENV: Readonly<Record<string, string>> = Object.freeze({
  PIP_DISABLE_PIP_VERSION_CHECK: "1",
  PIP_NO_INPUT: "1",
  PYTHONUNBUFFERED: "1",
  GIT_TERMINAL_PROMPT: "0",
  GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
});

/** Keep at most this much of a streamed command's output in memory. */
const KEEP_BYTES = 256 * 1024;

/** Options of one command. */
export interface CommandOptions {
  step: InstallStep;
  subject?: string | undefined;
  /** Time limit of this command (capped by the operation's own deadline). */
  timeoutMs: number;
  /** Emit each output line as an `output` event. */
  stream?: boolean | undefined;
}

/** Runs the installer's remote commands through one connector, under one deadline. */
export class RemoteRunner {
  readonly connector: Connector;
  readonly #recorder: StepRecorder;
  readonly #signal: AbortSignal;
  readonly #loginEnv: boolean;

  constructor(connector: Connector, recorder: StepRecorder, signal: AbortSignal, loginEnv: boolean) {
    this.connector = connector;
    this.#recorder = recorder;
    this.#signal = signal;
    this.#loginEnv = loginEnv;
  }

  /** Options for connector file operations. */
  get op(): OperationOptions {
    return { signal: this.#signal };
  }

  /** Runs argv; streams lines as events when asked and the connector can spawn. */
  async run(argv: readonly string[], options: CommandOptions): Promise<ExecResult> {
    const base = { env: COMMAND_ENV, loginEnv: this.#loginEnv, signal: this.#signal, timeoutMs: options.timeoutMs };
    if (!options.stream) return this.connector.exec(argv, base);
    if (!this.connector.spawn) {
      const r = await this.connector.exec(argv, base);
      this.#emitLines(options, "stdout", r.stdout);
      this.#emitLines(options, "stderr", r.stderr);
      return r;
    }
    return this.#spawnAndStream(argv, options);
  }

  #emitLines(options: CommandOptions, stream: "stdout" | "stderr", text: string): void {
    for (const line of text.split("\n")) {
      if (line.trim() !== "") {
        this.#recorder.emit({ type: "output", step: options.step, subject: options.subject, stream, line });
      }
    }
  }

  async #spawnAndStream(argv: readonly string[], options: CommandOptions): Promise<ExecResult> {
    const spawn = this.connector.spawn as NonNullable<Connector["spawn"]>;
    const d = deadline({ signal: this.#signal, timeoutMs: options.timeoutMs });
    try {
      const proc = await spawn(argv, { env: COMMAND_ENV, loginEnv: this.#loginEnv, signal: d.signal });
      const out = { stdout: "", stderr: "" };
      const pump = (stream: "stdout" | "stderr", readable: NodeJS.ReadableStream) => {
        const decoder = new StringDecoder("utf8");
        let partial = "";
        const take = (text: string) => {
          out[stream] += text;
          if (out[stream].length > KEEP_BYTES * 2) out[stream] = out[stream].slice(-KEEP_BYTES);
          const lines = (partial + text).split("\n");
          partial = lines.pop() ?? "";
          for (const line of lines) this.#emitLines(options, stream, line.replace(/\r$/, ""));
        };
        readable.on("data", (chunk: Buffer) => take(decoder.write(chunk)));
        readable.on("end", () => {
          take(decoder.end());
          if (partial) this.#emitLines(options, stream, partial);
          partial = "";
        });
      };
      pump("stdout", proc.stdout);
      pump("stderr", proc.stderr);
      proc.stdin.end();
      let killTimer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        proc.kill("SIGTERM");
        killTimer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
        killTimer.unref?.();
      };
      d.signal.addEventListener("abort", onAbort, { once: true });
      try {
        const exit = await proc.exited;
        d.throwIfDone(`${options.step}: ${argv[0]}`);
        return { stdout: out.stdout, stderr: out.stderr, exitCode: exit.exitCode, signal: exit.signal };
      } finally {
        d.signal.removeEventListener("abort", onAbort);
        if (killTimer) clearTimeout(killTimer);
      }
    } catch (err) {
      if (d.signal.aborted && !(isSremoteError(err) && (err.code === "TIMEOUT" || err.code === "ABORTED"))) {
        throw d.error(`${options.step}: ${argv[0]}`);
      }
      throw err;
    } finally {
      d.dispose();
    }
  }
}

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

/** How a wrapped command runs: preamble sourced, umask set, optionally under the endpoint's lock. */
export interface WrapOptions {
  /** The preamble file to source, or `""`. */
  preamble: string;
  /** Preamble lines to evaluate when there is no file (yet), or `""`. */
  preambleText?: string | undefined;
  /** `"022"` (shared) or `"077"` (private). */
  umask: string;
  /** Hold the endpoint's install lock with this Python while the command runs. */
  lock?: { python: string; endpointDir: string } | undefined;
  /** A folder to create and point TMPDIR at (the caller removes it), or `undefined`. */
  scratch?: string | undefined;
}

/** `sh -c WRAP …` around argv, with the lock when asked. */
export function wrap(argv: readonly string[], options: WrapOptions): string[] {
  const inner = options.lock
    ? [options.lock.python, "-c", remoteScript("lock.py"), posixJoin(options.lock.endpointDir, LOCK_FILE), ...argv]
    : [...argv];
  return [
    "sh",
    "-c",
    remoteScript("wrap.sh"),
    "sh",
    options.preamble,
    options.preambleText ?? "",
    options.umask,
    options.scratch ?? "",
    ...inner,
  ];
}

/** Hints matched against a failed command's output, first match wins. */
interface Diagnosis {
  code: InstallErrorCode;
  why: string;
  fix: string;
}

/** Recognises disk-full, read-only and permission failures in a command's output. */
export function diagnoseIo(text: string, folder: string): Diagnosis | undefined {
  if (/No space left on device|Disk quota exceeded|ENOSPC|EDQUOT/.test(text)) {
    return {
      code: "REMOTE_IO",
      why: `the remote file system holding ${folder} is full (or the quota is exceeded)`,
      fix: `free some space (df -h ${folder}) or install elsewhere with --dir <folder>`,
    };
  }
  if (/Read-only file system|EROFS/.test(text)) {
    return {
      code: "PERMISSION_DENIED",
      why: `${folder} is on a read-only file system`,
      fix: "install into a writable folder with --dir <folder>",
    };
  }
  if (/Permission denied|EACCES|Operation not permitted|not writable/.test(text)) {
    return {
      code: "PERMISSION_DENIED",
      why: `this account may not write in ${folder}`,
      fix: `check the folder's owner and modes (ls -ld ${folder}) or install elsewhere with --dir <folder>`,
    };
  }
  return undefined;
}

/** Describes how a command ended (`exit status 1`, `signal SIGKILL`). */
export function describeExit(r: ExecResult): string {
  return r.exitCode === null ? `killed by ${r.signal ?? "a signal"}` : `exit status ${r.exitCode}`;
}

/** Options of {@link commandFailure}. */
export interface CommandFailureOptions {
  /** The code when no I/O problem is recognised (default `COMMAND_FAILED`). */
  code?: InstallErrorCode;
  /** The fix when no I/O problem is recognised. */
  fix?: string | undefined;
  /**
   * `what` already says that it failed ("pip could not install x"): no "failed" is added,
   * which would read "pip could not install x failed".
   */
  saysFailed?: boolean | undefined;
}

/**
 * An {@link InstallError} for a failed command, recognising I/O problems. `what` names the
 * action ("creating the venv /x/env"); the message adds "failed" and how the command ended.
 */
export function commandFailure(
  step: InstallStep,
  what: string,
  r: ExecResult,
  folder: string,
  fallback: CommandFailureOptions = {},
): InstallError {
  const text = `${r.stderr}\n${r.stdout}`;
  const io = diagnoseIo(text, folder);
  const log = logTail(r.stdout.trim() && r.stderr.trim() ? `${r.stdout}\n${r.stderr}` : text);
  const failed = fallback.saysFailed ? what : `${what} failed`;
  if (io) {
    return new InstallError(io.code, `${failed}: ${io.why}`, {
      step,
      fix: io.fix,
      log,
      details: { exitCode: r.exitCode, signal: r.signal },
    });
  }
  return new InstallError(fallback.code ?? "COMMAND_FAILED", `${failed} (${describeExit(r)})`, {
    step,
    fix: fallback.fix,
    log,
    details: { exitCode: r.exitCode, signal: r.signal },
  });
}

/**
 * Below this much free space a failed write is taken for a full file system: venv's
 * ensurepip and SFTP report a full disk only as "exit status 1" and "Failure".
 */
export const LOW_SPACE_BYTES = 64 * 1024 * 1024;

/**
 * Bytes available to this account on the file system holding `path` (or its nearest
 * existing parent), per `df`; `null` when df cannot tell. Never throws.
 */
export async function freeBytes(connector: Connector, path: string): Promise<number | null> {
  try {
    // Its own short time limit and no signal: it explains a failure the deadline may have caused.
    const r = await connector.exec(["sh", "-c", remoteScript("free-space.sh"), "sh", path], { timeoutMs: 30_000 });
    if (r.exitCode !== 0) return null;
    // df's last line (a shell startup file may have printed a banner before its header).
    const fields = r.stdout.trim().split("\n").pop()?.trim().split(/\s+/);
    const kib = Number(fields?.[3]);
    return Number.isFinite(kib) && kib >= 0 ? kib * 1024 : null;
  } catch {
    return null;
  }
}

/** `1.5 MiB`-style size. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
