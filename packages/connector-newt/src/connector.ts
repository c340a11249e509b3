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
  type OperationOptions,
  raceSignal,
  withRetry,
} from "@sremote/core";
import { NewtApi } from "./api.js";
import { KILL_SCRIPT } from "./command.js";
import { fail, oneLine } from "./errors.js";
import { deleteByHttp, download, pathSegments, upload } from "./files.js";
import { NewtHttp } from "./http.js";
import { NewtLogin } from "./login.js";
import { type NewtConnectorOptions, type ResolvedOptions, resolveOptions } from "./options.js";

/** A {@link Connector} talking to a NEWT REST API; see {@link newtConnector}. */
export interface NewtConnector extends Connector {
  /** The NEWT system name calls go to. */
  readonly machine: string;
  /** The base URL in use (never holds credentials). */
  readonly baseUrl: string;
}

/** What NEWT can do: no streams (no `spawn`), stdin emulated through an uploaded file, no signals. */
export const NEWT_CAPABILITIES: Readonly<ConnectorCapabilities> = Object.freeze({
  spawn: false,
  stdin: true,
  signals: false,
  fileModes: true,
});

function formatLifetime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

/** True when a failed command request may have left the command running. */
function mayStillRun(err: unknown): boolean {
  const e = err as { code?: unknown; retryable?: unknown };
  if (e?.retryable === true) return false; // refused before anything ran
  return ["TIMEOUT", "ABORTED", "CLOSED", "CONNECTION_LOST", "UNAVAILABLE"].includes(String(e?.code));
}

/**
 * The NEWT transport. NEWT cannot stream stdin, so core uploads it to a file; `homeDir`
 * is core's fallback through `exec`. Core supplies checks, deadlines, `CLOSED` and close.
 */
class NewtDefinition implements ConnectorDefinition<{ machine: string; baseUrl: string }> {
  readonly name = "newt";
  readonly capabilities = NEWT_CAPABILITIES;
  readonly streamsStdin = false;
  readonly tempDir: string | undefined;
  readonly extra: { machine: string; baseUrl: string };
  readonly #opts: ResolvedOptions;
  readonly #runtime: ConnectorRuntime;
  readonly #http: NewtHttp;
  readonly #session: NewtLogin;
  readonly #api: NewtApi;
  /** Nonces of user commands whose request is in flight, ended remotely on close(). */
  readonly #running = new Set<string>();
  /** Paths waiting to be deleted by one `rm` (see #rmBatched). */
  #rmBatch: { paths: string[]; done?: Promise<void> } | undefined;

  constructor(opts: ResolvedOptions, runtime: ConnectorRuntime) {
    this.#opts = opts;
    this.#runtime = runtime;
    this.tempDir = opts.tempDir;
    this.extra = { machine: opts.machine, baseUrl: opts.baseUrl };
    this.#http = new NewtHttp(opts.baseUrl);
    this.#session = new NewtLogin(opts, this.#http, runtime.closeSignal);
    this.#api = new NewtApi(opts, this.#session, this.#http);
  }

  async connect(dl: Deadline): Promise<void> {
    await this.#session.ensure(dl);
  }

  async status(options?: OperationOptions): Promise<ConnectorStatus> {
    const { machine, baseUrl } = this.#opts;
    const info: Record<string, unknown> = { machine, baseUrl };
    if (this.#runtime.closed) return { connected: false, detail: "closed", info };
    const id = this.#session.knownId;
    if (id === undefined) {
      const failure = this.#session.authFailure;
      return { connected: false, detail: failure ? failure.message : "not logged in yet", info };
    }
    try {
      const st = await this.#runtime.run("status", options, (dl) => this.#session.loginStatus(id, dl));
      if (st.auth) this.#session.noteLifetime(id, st);
      info.username = st.username;
      info.sessionLifetimeSeconds = st.lifetime;
      return {
        connected: st.auth,
        detail: st.auth
          ? `${st.username ?? "?"}@${machine} via ${baseUrl}, session valid for ${formatLifetime(st.lifetime)}`
          : `session not valid (expired or logged out) at ${baseUrl}`,
        info,
      };
    } catch (err) {
      return { connected: false, detail: (err as Error).message, info };
    }
  }

  async putFile(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void> {
    await upload(this.#api, path, data, dl);
    const r = await this.#api.runWrapped(
      { argv: ["/bin/chmod", mode.toString(8).padStart(4, "0"), path] },
      dl,
      true,
      `chmod ${path}`,
    );
    if (r.exitCode !== 0) {
      throw fail(
        /permission denied|not permitted/i.test(r.stderr) ? "PERMISSION_DENIED" : "REMOTE_IO",
        `cannot set the mode of ${path}: ${oneLine(r.stderr)}`,
        { details: { path, exitCode: r.exitCode } },
      );
    }
  }

  /** Stdin files live in a 0700 folder: the PUT alone will do, no chmod round trip. */
  putTempFile(path: string, data: Uint8Array, dl: Deadline): Promise<void> {
    return upload(this.#api, path, data, dl);
  }

  getFile(path: string, dl: Deadline): Promise<Uint8Array> {
    return download(this.#api, path, dl);
  }

  async deleteFile(path: string, dl: Deadline): Promise<void> {
    pathSegments(path, "deleteFile");
    if (this.#opts.deleteMethod === "http" && (await deleteByHttp(this.#api, path, dl))) return;
    await this.#rmBatched([path], dl);
  }

  async deleteFiles(paths: readonly string[], dl: Deadline): Promise<void> {
    for (const p of paths) pathSegments(p, "deleteFiles");
    if (this.#opts.deleteMethod === "http") {
      for (const p of paths) await this.deleteFile(p, dl);
      return;
    }
    await this.#rmBatched(paths, dl);
  }

  /**
   * Deletions asked for together (a file-carrier call deletes
   * its request, response and partial response at once) go in one `rm -f` — an idempotent
   * command, sent again after a 503 or a lost answer under the retry budget.
   */
  #rmBatched(paths: readonly string[], dl: Deadline): Promise<void> {
    let batch = this.#rmBatch;
    if (!batch) {
      const fresh: { paths: string[]; done?: Promise<void> } = { paths: [] };
      batch = fresh;
      this.#rmBatch = fresh;
      // Flushed once the current synchronous stretch ends: deletions asked for together go together.
      fresh.done = Promise.resolve().then(async () => {
        this.#rmBatch = undefined;
        // Not ended by close(): close() waits for it, so no temp file is left behind.
        const own = deadline({ timeoutMs: this.#opts.requestTimeoutMs * 2 });
        try {
          await this.#runtime.deleteByCommand(fresh.paths, own);
        } finally {
          own.dispose();
        }
      });
      fresh.done.catch(() => {});
    }
    batch.paths.push(...paths);
    return raceSignal(batch.done as Promise<void>, dl.signal);
  }

  async exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult> {
    const input = { argv, cwd: options.cwd, env: options.env };
    const loginEnv = options.loginEnv === true;
    // mkdir -p, pwd, rm -f, chmod, cat: safe to send again (core's fallbacks, the client's mkdir).
    const idempotent = isIdempotentCommand(argv);
    const sent: string[] = [];
    try {
      return await this.#api.runWrapped(input, dl, idempotent, `run ${argv[0]}`, loginEnv, (nonce) => {
        sent.push(nonce);
        this.#running.add(nonce);
      });
    } catch (err) {
      // Timed out, aborted, or whether it ran could not be told: the command may still be
      // running remotely. NEWT cannot stop it, so a second command ends it and all it started.
      if (!this.#runtime.closed && !idempotent && mayStillRun(err)) await this.#killRemote(sent);
      throw err;
    } finally {
      for (const n of sent) this.#running.delete(n);
    }
  }

  /** Ends the remote commands carrying these nonces, and all they started (best effort). */
  async #killRemote(nonces: readonly string[]): Promise<void> {
    const dl = deadline({ timeoutMs: Math.min(10_000, this.#opts.requestTimeoutMs) });
    try {
      const argv = ["/bin/sh", "-c", KILL_SCRIPT, "sh", ...nonces];
      await this.#api.runWrapped({ argv }, dl, true, "end cancelled commands");
    } catch {
      // best effort: NEWT's own time limit ends them eventually
    } finally {
      dl.dispose();
    }
  }

  /**
   * Ends the commands in flight, removes the markers of finished commands, logs out (a
   * session it opened itself) and closes the pool.
   */
  async close(): Promise<void> {
    const running = [...this.#running];
    if (running.length > 0 && this.#session.knownId !== undefined) await this.#killRemote(running);
    await this.#rmBatch?.done?.catch(() => {});
    if (this.#api.ledger.pending > 0 && this.#session.knownId !== undefined) {
      const dl = deadline({ timeoutMs: Math.min(10_000, this.#opts.requestTimeoutMs) });
      try {
        await this.#api.cleanMarkers(dl);
      } finally {
        dl.dispose();
      }
    }
    const { id, ours } = this.#session.drop();
    if (id !== undefined && (this.#opts.logoutOnClose ?? ours)) {
      const dl = deadline({ timeoutMs: Math.min(5_000, this.#opts.requestTimeoutMs) });
      try {
        await this.#http.send(
          { method: "GET", path: "/logout", sessionId: id, idempotent: true, what: "log out", timeoutMs: 5_000 },
          dl,
        );
      } catch {
        // best effort: the session expires on its own
      } finally {
        dl.dispose();
      }
    }
    await this.#http.close();
  }
}

/** Operations whose every request is a read: repeating them cannot repeat a side effect. */
const READS = new Set(["getFile"]);

/**
 * Creates a connector for a NEWT REST API (NERSC's retired gateway, and every
 * NEWT-compatible service). It logs in lazily on first use, keeps one keep-alive HTTP
 * pool, maps files to `PUT`/`GET /file`, runs commands through `POST /command` with a
 * `/bin/sh -c` wrapper that reports real exit statuses, and runs each command exactly once
 * over a gateway that may fail after acting (docs/exactly-once.md): recorded under a nonce,
 * asked about after an ambiguous failure, sent again only if it never started. There is no
 * `spawn`: clients use the file carrier.
 *
 * Requests that are safe to repeat (reads, uploads, idempotent commands, refusals) are sent
 * again under `options.retry` inside the operation's deadline; core's `withRetry` around
 * the transport adds nothing on top of an error the transport already retried.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for bad options or missing credentials.
 */
export function newtConnector(options: NewtConnectorOptions): NewtConnector {
  const opts = resolveOptions(options);
  const transport = defineConnector((runtime) => new NewtDefinition(opts, runtime));
  const retrying = withRetry(transport, {
    attempts: opts.retry.attempts ?? 3,
    baseDelayMs: opts.retry.baseDelayMs ?? 200,
    maxDelayMs: opts.retry.maxDelayMs ?? 2000,
    shouldRetry: (error, operation) =>
      (error as { retryable?: unknown })?.retryable === true &&
      (READS.has(operation) || (error as { code?: unknown }).code === "CONNECT_FAILED"),
  });
  return Object.assign(retrying, { machine: opts.machine, baseUrl: opts.baseUrl });
}
