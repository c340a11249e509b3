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
  isIdempotentCommand,
  MarkerLedger,
  markerCleanupScript,
  markerDir,
  newCommandNonce,
  type OperationOptions,
  repeatSafely,
  runExactlyOnce,
  shQuote,
  withRetry,
} from "@sremote/core";
import { SfapiApi } from "./api.js";
import { parseMarker, type SideStep, type WrapperInput, wrapCommand } from "./command.js";
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
  /** Markers of recorded commands that can be removed (carried by the next command, or on close). */
  readonly #ledger = new MarkerLedger();
  readonly #markerDir: string;

  constructor(opts: ResolvedOptions, runtime: ConnectorRuntime) {
    this.#opts = opts;
    this.#runtime = runtime;
    this.tempDir = opts.tempDir;
    this.#markerDir = markerDir(opts.tempDir);
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

  /**
   * Runs argv through the marker wrapper, carrying `batch`'s steps. An idempotent command
   * is simply sent again after a failure; any other runs exactly once (core's
   * `runExactlyOnce`): recorded under a nonce, and after an ambiguous failure of its POST
   * SFAPI is asked whether it ran.
   */
  async #run(
    argv: readonly string[],
    options: ExecOptions,
    dl: Deadline,
    batch: StepBatch | undefined,
  ): Promise<ExecResult> {
    const what = `run ${argv[0]}`;
    // Commands are told apart by program and first argument (the agent: `sh …/interpreter.sh`).
    const kind = `${argv[0]} ${(argv[1] ?? "").split("/").pop()}`;
    const input = { argv, cwd: options.cwd, env: options.env, loginEnv: options.loginEnv, steps: batch?.steps };
    try {
      if (isIdempotentCommand(argv)) {
        const r = await repeatSafely(
          () => this.#send(input, newCommandNonce(), dl, what, kind, true, batch),
          dl,
          this.#opts.budget,
        );
        if (r === undefined) throw this.#markerMissing(what, "", "");
        return r;
      }
      return await runExactlyOnce<ExecResult>(
        {
          connector: "sfapi",
          what,
          dir: this.#markerDir,
          ledger: this.#ledger,
          send: (nonce, cleanup, d) =>
            this.#send({ ...input, record: { dir: this.#markerDir, cleanup } }, nonce, d, what, kind, false, batch),
          query: async (script, d) => {
            // Sent once here: runExactlyOnce repeats the question under the budget.
            const out = await this.#api.runCommand(
              `/bin/sh -c ${shQuote(script)}`,
              d,
              `${what}: ask whether it ran`,
              "ask",
            );
            return { stdout: out.output, stderr: out.error };
          },
          recovered: (rec) => {
            // The steps ran before the command, but how each went was not recorded: they go again.
            batch?.requeue();
            return { ...rec, signal: null };
          },
        },
        dl,
        this.#opts.budget,
      );
    } catch (err) {
      batch?.requeue();
      throw err;
    }
  }

  /**
   * One POST of the wrapped command and its task. Settles `batch` when the marker reports
   * on it; undefined when a recorded command's answer has no marker (ask).
   */
  async #send(
    input: WrapperInput,
    nonce: string,
    dl: Deadline,
    what: string,
    kind: string,
    idempotent: boolean,
    batch: StepBatch | undefined,
  ): Promise<ExecResult | undefined> {
    const wrapped = wrapCommand(input, nonce);
    const out = await this.#api.runCommand(wrapped.executable, dl, what, kind, idempotent);
    const m = parseMarker(out.error, wrapped.nonce);
    if (!m.found) {
      // Killed (the API's exit status says how), or a second delivery of a recorded command.
      if (out.exitCode !== null && out.exitCode !== 0) {
        batch?.requeue();
        return { stdout: out.output, stderr: out.error, exitCode: out.exitCode, signal: null };
      }
      if (input.record) return undefined;
      throw this.#markerMissing(what, out.output, out.error);
    }
    batch?.settle(m.failedSteps, (step) => stepError(step, m.stepMessage));
    return { stdout: out.output, stderr: m.stderr, exitCode: m.exitCode, signal: null };
  }

  #markerMissing(what: string, stdout: string, stderr: string): Error {
    return fail(
      "COMMAND_FAILED",
      `${what}: the command reported no exit status (killed, for example by a time limit)${
        stderr.trim() ? `; stderr: ${oneLine(tail(stderr, 300))}` : ""
      }`,
      { details: { stdout: tail(stdout), stderr: tail(stderr), markerMissing: true } },
    );
  }

  /**
   * A command of its own for steps no command came to carry — and for the markers of
   * finished commands (on close). Idempotent: sent again after failures, under the budget.
   */
  async #flush(batch: StepBatch | undefined, markers = false): Promise<void> {
    const dl = deadline({ timeoutMs: this.#opts.requestTimeoutMs * 2 });
    const nonces = markers ? this.#ledger.take(Number.POSITIVE_INFINITY) : { remove: [], shrink: [] };
    const unsettled = markers ? this.#ledger.takeUnsettled() : [];
    const argv = markers ? ["/bin/sh", "-c", markerCleanupScript(nonces, this.#markerDir, unsettled)] : ["true"];
    try {
      const r = await repeatSafely(
        () =>
          this.#send({ argv, steps: batch?.steps }, newCommandNonce(), dl, "delete and chmod", "steps", true, batch),
        dl,
        this.#opts.budget,
      );
      if (r === undefined) throw this.#markerMissing("delete and chmod", "", "");
    } catch (err) {
      this.#ledger.restore(nonces);
      batch?.settle(
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
    if ((this.#steps.pending > 0 || this.#ledger.pending > 0) && !this.#tokens.failure) {
      // One last command: queued deletions and chmods, and the markers of finished commands.
      await this.#flush(this.#steps.take(), true).catch(() => {});
    }
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
 * Each command runs exactly once over a gateway that may fail after acting
 * (docs/exactly-once.md): recorded under a nonce, asked about after an ambiguous failure of
 * its POST, sent again only if it never started. Requests that are safe to repeat (reads,
 * token requests, uploads, idempotent commands, refusals) are sent again under
 * `options.retry` inside the operation's deadline; core's `withRetry` around the transport
 * adds nothing on top of an error the transport already retried.
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
