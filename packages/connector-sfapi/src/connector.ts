import {
  type Connector,
  type ConnectorCapabilities,
  type ConnectorDefinition,
  type ConnectorRuntime,
  type ConnectorStatus,
  type Deadline,
  deadline,
  defineConnector,
  type ExecOptions,
  type ExecResult,
  type OperationOptions,
  withRetry,
} from "@sremote/core";
import { SfapiApi } from "./api.js";
import { parseMarker, type SideStep, wrapCommand } from "./command.js";
import { fail, oneLine } from "./errors.js";
import { answerText, jsonOf, SfapiHttp } from "./http.js";
import { type ResolvedOptions, resolveOptions, type SfapiConnectorOptions } from "./options.js";
import { SideSteps, type StepBatch } from "./side-steps.js";
import { TokenSource } from "./token.js";

/** A {@link Connector} talking to NERSC's Superfacility API; see {@link sfapiConnector}. */
export interface SfapiConnector extends Connector {
  /** The SFAPI machine commands and files go to. */
  readonly machine: string;
  /** The API base URL in use. */
  readonly apiUrl: string;
}

/** What SFAPI can do: no streams (no `spawn`), stdin through an uploaded file, signals reported as 128 + n. */
export const SFAPI_CAPABILITIES: Readonly<ConnectorCapabilities> = Object.freeze({
  spawn: false,
  stdin: true,
  signals: false,
  fileModes: true,
});

function tail(text: string, max = 2000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function stepError(step: SideStep, message: string): Error {
  const code = /permission denied|not permitted/i.test(message) ? "PERMISSION_DENIED" : "REMOTE_IO";
  const which =
    step.kind === "chmod" ? `cannot set the mode of ${step.path}` : `cannot delete ${step.paths.join(", ")}`;
  return fail(code, `${which}: ${message || "failed"}`);
}

/**
 * The SFAPI transport. Core supplies checks, deadlines, `CLOSED`, stdin through an
 * uploaded file and `homeDir` through `exec`; deletions and `chmod`s ride along with the
 * next command (see {@link SideSteps}).
 */
class SfapiDefinition implements ConnectorDefinition<{ machine: string; apiUrl: string }> {
  readonly name = "sfapi";
  readonly capabilities = SFAPI_CAPABILITIES;
  readonly streamsStdin = false;
  readonly tempDir: string | undefined;
  readonly extra: { machine: string; apiUrl: string };
  readonly #opts: ResolvedOptions;
  readonly #runtime: ConnectorRuntime;
  readonly #http = new SfapiHttp();
  readonly #tokens: TokenSource;
  readonly #api: SfapiApi;
  readonly #steps: SideSteps;
  /** Commands in flight; close() waits for them to cancel their tasks. */
  readonly #running = new Set<Promise<unknown>>();

  constructor(opts: ResolvedOptions, runtime: ConnectorRuntime) {
    this.#opts = opts;
    this.#runtime = runtime;
    this.tempDir = opts.tempDir;
    this.extra = { machine: opts.machine, apiUrl: opts.apiUrl };
    this.#tokens = new TokenSource(opts, this.#http, runtime.closeSignal);
    this.#api = new SfapiApi(opts, this.#tokens, this.#http);
    this.#steps = new SideSteps(opts.batchWindowMs, (batch) => this.#track(this.#flush(batch)));
  }

  async connect(dl: Deadline): Promise<void> {
    await this.#tokens.get(dl);
  }

  async status(options?: OperationOptions): Promise<ConnectorStatus> {
    const { machine, apiUrl } = this.#opts;
    const info: Record<string, unknown> = { machine, apiUrl };
    if (this.#runtime.closed) return { connected: false, detail: "closed", info };
    try {
      const user = await this.#runtime.run("status", options, async (dl) => {
        const res = await this.#api.authed(
          {
            method: "GET",
            url: `${apiUrl}/account/`,
            idempotent: true,
            what: "account",
            timeoutMs: this.#opts.requestTimeoutMs,
          },
          dl,
        );
        if (res.status !== 200) throw fail("AUTH_FAILED", `account: ${answerText(res.body) || `HTTP ${res.status}`}`);
        return jsonOf(res, "account").name;
      });
      info.username = user;
      return { connected: true, detail: `${String(user)}@${machine} via ${apiUrl}`, info };
    } catch (err) {
      return { connected: false, detail: (err as Error).message, info };
    }
  }

  async putFile(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void> {
    await this.#steps.settleDeletesOf(path);
    await this.#api.upload(path, data, dl);
    const chmod = this.#steps.add({ kind: "chmod", path, mode });
    // With a window, the chmod travels in the next command (every later operation of this
    // connector sees the mode); without one, putFile waits for it.
    if (this.#opts.batchWindowMs > 0) chmod.catch(() => {});
    else await chmod;
  }

  /** Stdin files live in a 0700 folder: the upload alone will do. */
  async putTempFile(path: string, data: Uint8Array, dl: Deadline): Promise<void> {
    await this.#steps.settleDeletesOf(path);
    await this.#api.upload(path, data, dl);
  }

  async getFile(path: string, dl: Deadline): Promise<Uint8Array> {
    await this.#steps.settleDeletesOf(path);
    return this.#api.download(path, dl);
  }

  deleteFile(path: string, dl: Deadline): Promise<void> {
    return this.#steps.add({ kind: "rm", paths: [path] }, dl);
  }

  deleteFiles(paths: readonly string[], dl: Deadline): Promise<void> {
    return this.#steps.add({ kind: "rm", paths: [...paths] }, dl);
  }

  exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult> {
    return this.#track(this.#run(argv, options, dl, this.#steps.take()));
  }

  /** Notes a command in flight until it settles, for close(). */
  #track<T>(run: Promise<T>): Promise<T> {
    const tracked = run.catch(() => {});
    this.#running.add(tracked);
    void tracked.then(() => this.#running.delete(tracked));
    return run;
  }

  /** Runs argv through the marker wrapper, carrying `batch`'s steps. */
  async #run(
    argv: readonly string[],
    options: ExecOptions,
    dl: Deadline,
    batch: StepBatch | undefined,
  ): Promise<ExecResult> {
    const what = `run ${argv[0]}`;
    const wrapped = wrapCommand({
      argv,
      cwd: options.cwd,
      env: options.env,
      loginEnv: options.loginEnv,
      steps: batch?.steps,
    });
    let out: Awaited<ReturnType<SfapiApi["runCommand"]>>;
    try {
      // Commands are told apart by program and first argument (the agent: `sh …/interpreter.sh`).
      const kind = `${argv[0]} ${(argv[1] ?? "").split("/").pop()}`;
      out = await this.#api.runCommand(wrapped.executable, dl, what, kind);
    } catch (err) {
      batch?.requeue();
      throw err;
    }
    const m = parseMarker(out.error, wrapped.nonce);
    if (!m.found) {
      batch?.requeue();
      if (out.exitCode !== null) return { stdout: out.output, stderr: out.error, exitCode: out.exitCode, signal: null };
      throw fail(
        "COMMAND_FAILED",
        `${what}: the command reported no exit status (killed, for example by a time limit)${
          out.error.trim() ? `; stderr: ${oneLine(tail(out.error, 300))}` : ""
        }`,
        { details: { stdout: tail(out.output), stderr: tail(out.error), markerMissing: true } },
      );
    }
    batch?.settle(m.failedSteps, (step) => stepError(step, m.stepMessage));
    return { stdout: out.output, stderr: m.stderr, exitCode: m.exitCode, signal: null };
  }

  /** A command of its own for steps no command came to carry. */
  async #flush(batch: StepBatch): Promise<void> {
    const dl = deadline({ timeoutMs: this.#opts.requestTimeoutMs * 2 });
    try {
      const wrapped = wrapCommand({ argv: ["true"], steps: batch.steps });
      const out = await this.#api.runCommand(wrapped.executable, dl, "delete and chmod");
      const m = parseMarker(out.error, wrapped.nonce);
      if (!m.found) throw fail("COMMAND_FAILED", `delete and chmod: no exit status: ${oneLine(tail(out.error, 300))}`);
      batch.settle(m.failedSteps, (step) => stepError(step, m.stepMessage));
    } catch (err) {
      batch.settle(
        batch.steps.map((_, i) => i),
        () => err as Error,
      );
    } finally {
      dl.dispose();
    }
  }

  /** Lets commands in flight cancel their tasks, runs queued steps, then closes the pool. */
  async close(): Promise<void> {
    await Promise.resolve();
    await Promise.all(this.#running);
    if (this.#steps.pending > 0 && !this.#tokens.failure) await this.#steps.drain().catch(() => {});
    await this.#http.close();
  }
}

/**
 * Creates a connector for NERSC's Superfacility API. It gets access tokens with a signed
 * JWT (or uses a ready one), runs commands as tasks (`POST /utilities/command`, then
 * `GET /tasks/{id}` until done, `DELETE` on cancel) through a `/bin/sh -c` wrapper that
 * reports real exit statuses, moves files with multipart uploads and base64 downloads, and
 * lets deletions and `chmod`s ride along with the next command. No `spawn`: clients use
 * the file carrier.
 *
 * Retry is core's `withRetry` around the transport (`options.retry`), for errors raised
 * where nothing can have run: reads, token requests, uploads, a command POST refused with
 * 429 or never sent. A command POST that may have been received is never sent again.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for bad options, a missing or unreadable key.
 */
export function sfapiConnector(options: SfapiConnectorOptions): SfapiConnector {
  const opts = resolveOptions(options);
  const transport = defineConnector((runtime) => new SfapiDefinition(opts, runtime));
  const retrying = withRetry(transport, {
    attempts: opts.retry.attempts ?? 4,
    baseDelayMs: opts.retry.baseDelayMs ?? 200,
    maxDelayMs: opts.retry.maxDelayMs ?? 5000,
  });
  return Object.assign(retrying, { machine: opts.machine, apiUrl: opts.apiUrl });
}
