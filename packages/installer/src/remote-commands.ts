import { StringDecoder } from "node:string_decoder";
import {
  type Connector,
  deadline,
  type ExecResult,
  isSremoteError,
  type OperationOptions,
  posixJoin,
} from "@sremote/core";
import { LOCK_FILE } from "./endpoint-files.js";
import type { InstallStep } from "./errors.js";
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
