import { randomBytes } from "node:crypto";
import {
  type Connector,
  type ConnectorCapabilities,
  ConnectorError,
  type ConnectorErrorCode,
  type ConnectorStatus,
  type Deadline,
  deadline,
  defaultLayout,
  type ExecOptions,
  type ExecResult,
  type OperationOptions,
  type PutFileOptions,
  posixJoin,
  shJoin,
  UsageError,
} from "@sremote/core";
import { KILL_SCRIPT, newNonce, parseMarker, type WrapperInput, wrapCommand } from "./command.js";
import { answerText, NewtHttp, type NewtRequest, type NewtResponse } from "./http.js";
import { NEWT_ENV, type NewtConnectorOptions, type ResolvedOptions, resolveOptions } from "./options.js";

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

interface AuthStatus {
  auth: boolean;
  username: string | null;
  lifetime: number;
  sessionId: string | null;
}

interface Session {
  id: string | undefined;
  username: string | undefined;
  /** Local time (ms) after which the session is known to be over. */
  expiresAt: number | undefined;
  /** This connector logged in itself (else the id was given). */
  ours: boolean;
}

type PathKind = "missing" | "dir" | "file" | "unreadable";

// `$1` carries the path: no user data inside the script text.
const PROBE_SCRIPT =
  'if [ -d "$1" ]; then echo dir; elif [ -e "$1" ]; then if [ -r "$1" ]; then echo file; else echo unreadable; fi; else echo missing; fi';

function fail(
  code: ConnectorErrorCode,
  message: string,
  options: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
): ConnectorError {
  return new ConnectorError(code, "newt", message, options);
}

function tail(text: string, max = 2000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

function oneLine(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

/** Normalises an absolute remote path; refuses relative paths, NUL and `.`/`..` segments. */
function checkPath(path: unknown, what: string): string[] {
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new UsageError(`newt: ${what} needs an absolute path, got ${JSON.stringify(path)}`);
  }
  if (path.includes("\0")) throw new UsageError(`newt: ${what}: path contains a NUL byte`);
  const segments = path.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) {
    throw new UsageError(`newt: ${what}: path must not contain '.' or '..' segments: ${JSON.stringify(path)}`);
  }
  if (segments.length === 0) throw new UsageError(`newt: ${what}: "/" is not a file`);
  return segments;
}

function parseAuthStatus(res: NewtResponse, what: string): AuthStatus {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(res.body).toString("utf8"));
  } catch {
    throw fail("REMOTE_IO", `${what}: the answer is not JSON (is the base URL a NEWT API?)`, {
      details: { status: res.status },
    });
  }
  const o = (parsed ?? {}) as Record<string, unknown>;
  if (typeof o.auth !== "boolean") {
    throw fail("REMOTE_IO", `${what}: the answer has no boolean "auth" field (is the base URL a NEWT API?)`);
  }
  return {
    auth: o.auth,
    username: typeof o.username === "string" ? o.username : null,
    lifetime: typeof o.session_lifetime === "number" ? o.session_lifetime : 0,
    sessionId: typeof o.newt_sessionid === "string" && o.newt_sessionid !== "" ? o.newt_sessionid : null,
  };
}

function cookieFrom(res: NewtResponse): string | undefined {
  const raw = res.headers["set-cookie"];
  for (const line of Array.isArray(raw) ? raw : raw ? [raw] : []) {
    const m = /(?:^|;\s*)newt_sessionid=([^;]+)/.exec(line);
    if (m?.[1]) return m[1];
  }
  return undefined;
}

function isUnknownSystem(res: NewtResponse): boolean {
  return res.status === 404 && /unrecognized system/i.test(answerText(res.body));
}

function formatLifetime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

class NewtConnectorImpl implements NewtConnector {
  readonly name = "newt";
  readonly capabilities = NEWT_CAPABILITIES;
  readonly machine: string;
  readonly baseUrl: string;

  private readonly opts: ResolvedOptions;
  private readonly http: NewtHttp;
  private readonly closeController = new AbortController();
  private closed = false;
  private closing: Promise<void> | undefined;
  private session: Session = { id: undefined, username: undefined, expiresAt: undefined, ours: false };
  /** A session id given in the credentials and not yet checked. */
  private pendingSessionId: string | undefined;
  private otpUsed = false;
  /** Set once NEWT refused the credentials: they are never sent again (accounts lock). */
  private authFailure: ConnectorError | undefined;
  private establishing: Promise<void> | undefined;
  private home: string | undefined;
  /** Nonces of user commands whose request is in flight, ended remotely on close(). */
  private readonly running = new Set<string>();

  constructor(options: NewtConnectorOptions) {
    this.opts = resolveOptions(options);
    this.machine = this.opts.machine;
    this.baseUrl = this.opts.baseUrl;
    this.http = new NewtHttp(this.opts.baseUrl, this.opts.retry);
    this.pendingSessionId = this.opts.credentials.sessionId;
  }

  // ---- lifecycle -------------------------------------------------------------------

  async connect(options?: OperationOptions): Promise<void> {
    await this.op("connect", options, (dl) => this.ensureSession(dl).then(() => undefined));
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    const running = [...this.running];
    this.closed = true;
    this.closeController.abort();
    this.closing = (async () => {
      if (running.length > 0 && this.session.id !== undefined) await this.killRemote(running);
      const { id, ours } = this.session;
      this.session = { id: undefined, username: undefined, expiresAt: undefined, ours: false };
      if (id !== undefined && (this.opts.logoutOnClose ?? ours)) {
        const dl = deadline({ timeoutMs: Math.min(5_000, this.opts.requestTimeoutMs) });
        try {
          await this.http.send(
            { method: "GET", path: "/logout", sessionId: id, idempotent: true, what: "log out", timeoutMs: 5_000 },
            dl,
          );
        } catch {
          // best effort: the session expires on its own
        } finally {
          dl.dispose();
        }
      }
      await this.http.close();
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async status(options?: OperationOptions): Promise<ConnectorStatus> {
    const info: Record<string, unknown> = { machine: this.machine, baseUrl: this.baseUrl };
    if (this.closed) return { connected: false, detail: "closed", info };
    const id = this.session.id ?? this.pendingSessionId;
    if (id === undefined) {
      return {
        connected: false,
        detail: this.authFailure ? this.authFailure.message : "not logged in yet",
        info,
      };
    }
    try {
      const st = await this.op("status", options, (dl) => this.loginStatus(id, dl));
      if (st.auth) this.noteLifetime(id, st);
      info.username = st.username;
      info.sessionLifetimeSeconds = st.lifetime;
      return {
        connected: st.auth,
        detail: st.auth
          ? `${st.username ?? "?"}@${this.machine} via ${this.baseUrl}, session valid for ${formatLifetime(st.lifetime)}`
          : `session not valid (expired or logged out) at ${this.baseUrl}`,
        info,
      };
    } catch (err) {
      return { connected: false, detail: (err as Error).message, info };
    }
  }

  // ---- the five primitives ---------------------------------------------------------

  homeDir(options?: OperationOptions): Promise<string> {
    return this.op("homeDir", options, (dl) => this.findHome(dl));
  }

  async putFile(path: string, data: Uint8Array, options: PutFileOptions = {}): Promise<void> {
    const segments = checkPath(path, "putFile");
    if (!(data instanceof Uint8Array)) throw new UsageError("newt: putFile data must be a Uint8Array");
    const mode = options.mode ?? 0o600;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
      throw new UsageError(`newt: putFile mode must be an integer between 0 and 0o7777, got ${mode}`);
    }
    return this.op(`putFile ${path}`, options, async (dl) => {
      await this.upload(path, segments, data, dl);
      const r = await this.runWrapped(
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
    });
  }

  async getFile(path: string, options?: OperationOptions): Promise<Uint8Array> {
    const segments = checkPath(path, "getFile");
    return this.op(`getFile ${path}`, options, async (dl) => {
      const res = await this.authed(
        {
          method: "GET",
          path: this.filePath(segments),
          query: { view: "read" },
          idempotent: true,
          what: `download ${path}`,
          timeoutMs: this.opts.requestTimeoutMs,
        },
        dl,
      );
      if (res.status === 200) return res.body;
      if (res.status === 403 || res.status === 401) {
        throw fail("PERMISSION_DENIED", `cannot read ${path}: ${answerText(res.body) || `HTTP ${res.status}`}`, {
          details: { path, status: res.status },
        });
      }
      this.throwIfUnknownSystem(res);
      if (res.status === 404) {
        throw fail("FILE_NOT_FOUND", `no such file: ${path}`, { details: { path, status: res.status } });
      }
      // NEWT 2.0 and others answer 500 for a missing file: ask the system what is there.
      const kind = await this.probe(path, dl);
      const text = answerText(res.body);
      if (kind === "missing") throw fail("FILE_NOT_FOUND", `no such file: ${path}`, { details: { path } });
      if (kind === "unreadable") throw fail("PERMISSION_DENIED", `cannot read ${path}`, { details: { path } });
      throw fail(
        "REMOTE_IO",
        kind === "dir"
          ? `cannot download ${path}: it is a folder`
          : `cannot download ${path}: HTTP ${res.status}${text ? `: ${text}` : ""}`,
        { details: { path, status: res.status } },
      );
    });
  }

  async deleteFile(path: string, options?: OperationOptions): Promise<void> {
    const segments = checkPath(path, "deleteFile");
    return this.op(`deleteFile ${path}`, options, async (dl) => {
      if (this.opts.deleteMethod === "http") {
        const res = await this.authed(
          {
            method: "DELETE",
            path: this.filePath(segments),
            idempotent: true,
            what: `delete ${path}`,
            timeoutMs: this.opts.requestTimeoutMs,
          },
          dl,
        );
        if (res.status === 200 || res.status === 204) return;
        if (res.status === 401 || res.status === 403) {
          throw fail("PERMISSION_DENIED", `cannot delete ${path}: ${answerText(res.body) || `HTTP ${res.status}`}`);
        }
        this.throwIfUnknownSystem(res);
        // 404 (missing, or DELETE unknown), 405, 501, 500…: rm -f below settles it.
      }
      const r = await this.runWrapped({ argv: ["/bin/rm", "-f", "--", path] }, dl, true, `delete ${path}`);
      if (r.exitCode !== 0) {
        throw fail(
          /permission denied|not permitted/i.test(r.stderr) ? "PERMISSION_DENIED" : "REMOTE_IO",
          `cannot delete ${path}: ${oneLine(r.stderr) || `rm exited with ${r.exitCode}`}`,
          { details: { path, exitCode: r.exitCode } },
        );
      }
    });
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    shJoin(argv); // validates: non-empty array of strings without NUL
    if (options.cwd !== undefined && (typeof options.cwd !== "string" || options.cwd === "")) {
      throw new UsageError("newt: exec cwd must be a non-empty string");
    }
    const stdin = options.stdin;
    if (stdin !== undefined && typeof stdin !== "string" && !(stdin instanceof Uint8Array)) {
      throw new UsageError("newt: exec stdin must be a string or a Uint8Array");
    }
    const what = `run ${argv[0]}`;
    // Build once here so a bad env throws a UsageError before anything is sent.
    wrapCommand({ argv, cwd: options.cwd, env: options.env });
    return this.op(what, options, async (dl) => {
      const nonce = newNonce();
      let stdinFile: string | undefined;
      let sent = false;
      this.running.add(nonce);
      try {
        if (stdin !== undefined) {
          const bytes = typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin;
          const dir = await this.tempDir(dl);
          stdinFile = posixJoin(dir, `stdin-${randomBytes(16).toString("hex")}.in`);
          await this.uploadIntoTemp(stdinFile, dir, bytes, dl);
        }
        sent = true;
        return await this.runWrapped(
          { argv, cwd: options.cwd, env: options.env, stdinFile },
          dl,
          false,
          what,
          options.loginEnv === true,
          nonce,
        );
      } catch (err) {
        // Timed out, aborted or answer lost: the command may still be running remotely.
        // NEWT cannot stop it, so a second command ends it and everything it started.
        if (sent && !this.closed && mayStillRun(err)) await this.killRemote([nonce]);
        // The script deletes its stdin file when it runs to the end; when it did not (upload
        // cut, never started, killed), remove it here so nothing is left behind.
        if (stdinFile !== undefined) await this.removeQuietly(stdinFile);
        throw err;
      } finally {
        this.running.delete(nonce);
      }
    });
  }

  // ---- operations plumbing -----------------------------------------------------------

  /** Runs one operation with its deadline (caller's signal + timeout + close). */
  private async op<T>(
    what: string,
    options: OperationOptions | undefined,
    fn: (dl: Deadline) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw fail("CLOSED", `${what}: the connector is closed`);
    const signal = options?.signal
      ? AbortSignal.any([options.signal, this.closeController.signal])
      : this.closeController.signal;
    const dl = deadline({ signal, timeoutMs: options?.timeoutMs });
    try {
      dl.throwIfDone(`newt: ${what}`);
      return await fn(dl);
    } catch (err) {
      if (this.closed) throw fail("CLOSED", `${what}: the connector was closed`, { cause: err });
      throw err;
    } finally {
      dl.dispose();
    }
  }

  private filePath(segments: readonly string[]): string {
    return `/file/${this.machine}/${segments.map(encodeURIComponent).join("/")}`;
  }

  private throwIfUnknownSystem(res: NewtResponse): void {
    if (isUnknownSystem(res)) {
      throw fail("CONNECT_FAILED", `NEWT at ${this.baseUrl} does not know the system "${this.machine}"`, {
        details: { machine: this.machine },
      });
    }
  }

  private async findHome(dl: Deadline): Promise<string> {
    if (this.home !== undefined) return this.home;
    const r = await this.command("/bin/pwd", false, dl, true, "find the home folder (/bin/pwd)");
    const home = r.output.replace(/[\r\n]+$/, "");
    if (!home.startsWith("/") || home.includes("\n")) {
      throw fail(
        "COMMAND_FAILED",
        `/bin/pwd did not print a home folder: ${oneLine(r.error) || JSON.stringify(r.output)}`,
      );
    }
    this.home = home;
    return home;
  }

  private async tempDir(dl: Deadline): Promise<string> {
    return this.opts.tempDir ?? defaultLayout(await this.findHome(dl)).tmpDir;
  }

  /** PUT of the bytes; a missing parent becomes `FILE_NOT_FOUND`. */
  private async upload(path: string, segments: readonly string[], data: Uint8Array, dl: Deadline): Promise<void> {
    const res = await this.authed(
      {
        method: "PUT",
        path: this.filePath(segments),
        body: data,
        idempotent: true,
        what: `upload ${path}`,
        timeoutMs: this.opts.requestTimeoutMs,
      },
      dl,
    );
    if (res.status === 200 || res.status === 201 || res.status === 204) return;
    const text = answerText(res.body);
    if (res.status === 401 || res.status === 403) {
      throw fail("PERMISSION_DENIED", `cannot write ${path}: ${text || `HTTP ${res.status}`}`, {
        details: { path, status: res.status },
      });
    }
    this.throwIfUnknownSystem(res);
    // The error text of a failed PUT is not specified: ask the system whether the folder exists.
    const parent = `/${segments.slice(0, -1).join("/")}`;
    const kind = await this.probe(parent, dl);
    if (kind === "missing") {
      throw fail("FILE_NOT_FOUND", `cannot write ${path}: folder ${parent} does not exist`, {
        details: { path, status: res.status },
      });
    }
    throw fail("REMOTE_IO", `cannot write ${path}: HTTP ${res.status}${text ? `: ${text}` : ""}`, {
      details: { path, status: res.status },
    });
  }

  /** Uploads into the temp folder, creating it (0700) when it is missing — the seed's recovery. */
  private async uploadIntoTemp(path: string, dir: string, data: Uint8Array, dl: Deadline): Promise<void> {
    const segments = checkPath(path, "stdin file");
    try {
      await this.upload(path, segments, data, dl);
      return;
    } catch (err) {
      if ((err as ConnectorError).code !== "FILE_NOT_FOUND") throw err;
    }
    const r = await this.runWrapped({ argv: ["/bin/mkdir", "-p", "-m", "700", dir] }, dl, true, `create ${dir}`);
    if (r.exitCode !== 0) throw fail("REMOTE_IO", `cannot create ${dir}: ${oneLine(r.stderr)}`, { details: { dir } });
    await this.upload(path, segments, data, dl);
  }

  /** Ends the remote commands carrying these nonces, and all they started (best effort). */
  private async killRemote(nonces: readonly string[]): Promise<void> {
    const dl = deadline({ timeoutMs: Math.min(10_000, this.opts.requestTimeoutMs) });
    try {
      await this.runWrapped(
        { argv: ["/bin/sh", "-c", KILL_SCRIPT, "sh", ...nonces] },
        dl,
        true,
        "end cancelled commands",
      );
    } catch {
      // best effort: NEWT's own time limit ends them eventually
    } finally {
      dl.dispose();
    }
  }

  private async removeQuietly(path: string): Promise<void> {
    if (this.closed) return;
    const dl = deadline({ signal: this.closeController.signal, timeoutMs: this.opts.requestTimeoutMs });
    try {
      await this.runWrapped({ argv: ["/bin/rm", "-f", "--", path] }, dl, true, `remove ${path}`);
    } catch {
      // best effort
    } finally {
      dl.dispose();
    }
  }

  private async probe(path: string, dl: Deadline): Promise<PathKind> {
    const r = await this.runWrapped({ argv: ["/bin/sh", "-c", PROBE_SCRIPT, "sh", path] }, dl, true, `inspect ${path}`);
    const kind = r.stdout.trim();
    if (kind === "missing" || kind === "dir" || kind === "file" || kind === "unreadable") return kind;
    throw fail("REMOTE_IO", `cannot inspect ${path}: ${oneLine(r.stderr) || "no answer"}`);
  }

  /** Runs argv through the exit-marker wrapper and returns what it did. */
  private async runWrapped(
    input: WrapperInput,
    dl: Deadline,
    idempotent: boolean,
    what: string,
    loginEnv = false,
    nonce = newNonce(),
  ): Promise<ExecResult> {
    const wrapped = wrapCommand(input, nonce);
    const r = await this.command(wrapped.executable, loginEnv, dl, idempotent, what);
    const m = parseMarker(r.error, wrapped.nonce);
    if (!m.found) {
      throw fail(
        "COMMAND_FAILED",
        `${what}: the command's exit marker is missing from its stderr, so it was killed (for example by NEWT's time limit) or never ran${
          r.error.trim() ? `; stderr: ${oneLine(tail(r.error, 300))}` : ""
        }`,
        { details: { stdout: tail(r.output), stderr: tail(r.error), markerMissing: true } },
      );
    }
    return { stdout: r.output, stderr: m.stderr, exitCode: m.exitCode, signal: null };
  }

  /** `POST /command/{machine}`; returns NEWT's `{output, error}`. */
  private async command(
    executable: string,
    loginEnv: boolean,
    dl: Deadline,
    idempotent: boolean,
    what: string,
  ): Promise<{ output: string; error: string }> {
    const res = await this.authed(
      {
        method: "POST",
        path: `/command/${this.machine}`,
        form: { executable, loginenv: loginEnv ? "true" : "false" },
        idempotent,
        what,
        timeoutMs: this.opts.commandTimeoutMs,
      },
      dl,
    );
    this.throwIfUnknownSystem(res);
    if (res.status === 401 || res.status === 403) {
      throw fail("PERMISSION_DENIED", `${what}: ${answerText(res.body) || `HTTP ${res.status}`}`, {
        details: { status: res.status },
      });
    }
    if (res.status !== 200) {
      throw fail(
        "COMMAND_FAILED",
        `${what}: HTTP ${res.status}${answerText(res.body) ? `: ${answerText(res.body)}` : ""}`,
        {
          details: { status: res.status },
        },
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(res.body).toString("utf8"));
    } catch {
      throw fail("REMOTE_IO", `${what}: the answer is not JSON`, { details: { status: res.status } });
    }
    const o = (parsed ?? {}) as Record<string, unknown>;
    if (typeof o.output !== "string" && typeof o.error !== "string") {
      throw fail("REMOTE_IO", `${what}: the answer has neither "output" nor "error"`);
    }
    return {
      output: typeof o.output === "string" ? o.output : "",
      error: typeof o.error === "string" ? o.error : "",
    };
  }

  // ---- sessions ----------------------------------------------------------------------

  private canLogin(): boolean {
    const { username, password, otp } = this.opts.credentials;
    return username !== undefined && password !== undefined && !(typeof otp === "string" && this.otpUsed);
  }

  private expiredError(): ConnectorError {
    const { username, otp } = this.opts.credentials;
    const how =
      username === undefined
        ? `no user name and password are configured to log in again (set ${NEWT_ENV.user} and ${NEWT_ENV.password}, or get a new session id)`
        : typeof otp === "string"
          ? "logging in again needs a fresh one-time code (give credentials.otp as a function to be asked for one)"
          : "logging in again failed";
    return fail("AUTH_FAILED", `the NEWT session expired or is no longer valid, and ${how}`, {
      details: { sessionExpired: true },
    });
  }

  /** Returns a session id believed valid, logging in (once, shared) when needed. */
  private async ensureSession(dl: Deadline): Promise<string> {
    for (let round = 0; round < 3; round++) {
      if (this.authFailure) throw this.authFailure;
      const s = this.session;
      if (s.id !== undefined) {
        const knownOver = s.expiresAt !== undefined && Date.now() >= s.expiresAt;
        if (!knownOver || !this.canLogin()) return s.id;
        this.session = { ...s, id: undefined };
      }
      this.establishing ??= this.establish().finally(() => {
        this.establishing = undefined;
      });
      await raceDeadline(this.establishing, dl, "newt: log in");
    }
    throw this.authFailure ?? fail("AUTH_FAILED", "could not establish a NEWT session");
  }

  /**
   * Logs in or adopts a given session. Runs detached from any one caller's deadline (it is
   * shared by every operation waiting for it), bounded by its own time limit and by close().
   */
  private async establish(): Promise<void> {
    const dl = deadline({ signal: this.closeController.signal, timeoutMs: this.opts.requestTimeoutMs * 2 });
    try {
      const given = this.pendingSessionId;
      if (given !== undefined) {
        const st = await this.loginStatus(given, dl);
        this.pendingSessionId = undefined;
        if (st.auth) {
          this.adopt(given, st, false);
          return;
        }
        if (!this.canLogin()) {
          this.authFailure = this.expiredError();
          throw this.authFailure;
        }
      }
      await this.login(dl);
    } finally {
      dl.dispose();
    }
  }

  private async login(dl: Deadline): Promise<void> {
    if (!this.canLogin()) {
      this.authFailure = this.expiredError();
      throw this.authFailure;
    }
    const { username, password, otp } = this.opts.credentials as { username: string; password: string } & {
      otp?: string | (() => string | Promise<string>);
    };
    let code = "";
    if (typeof otp === "string") {
      code = otp;
      this.otpUsed = true;
    } else if (typeof otp === "function") {
      code = String(await otp());
    }
    const what = `log in as ${username}`;
    const res = await this.http.send(
      {
        method: "POST",
        path: "/auth",
        form: { username, password: password + code },
        idempotent: true,
        what,
        timeoutMs: this.opts.requestTimeoutMs,
      },
      dl,
    );
    if (res.status === 401 || res.status === 403) {
      this.authFailure = fail("AUTH_FAILED", `NEWT refused the login of ${username} (HTTP ${res.status})`);
      throw this.authFailure;
    }
    if (res.status !== 200) {
      throw fail("REMOTE_IO", `${what}: HTTP ${res.status}${answerText(res.body) ? `: ${answerText(res.body)}` : ""}`, {
        details: { status: res.status },
      });
    }
    const st = parseAuthStatus(res, what);
    // NEWT answers wrong credentials with HTTP 200 and auth:false.
    if (!st.auth) {
      this.authFailure = fail(
        "AUTH_FAILED",
        `NEWT refused the login of ${username}: wrong user name, password${otp === undefined ? "" : " or one-time code"}. The credentials are not sent again by this connector`,
      );
      throw this.authFailure;
    }
    const id = st.sessionId ?? cookieFrom(res);
    if (id === undefined) throw fail("REMOTE_IO", `${what}: NEWT accepted the login but sent no session id`);
    this.adopt(id, st, true);
  }

  private adopt(id: string, st: AuthStatus, ours: boolean): void {
    this.session = {
      id,
      username: st.username ?? this.opts.credentials.username,
      expiresAt: st.lifetime > 0 ? Date.now() + st.lifetime * 1000 : undefined,
      ours,
    };
  }

  private noteLifetime(id: string, st: AuthStatus): void {
    if (this.session.id === id && st.lifetime > 0) this.session.expiresAt = Date.now() + st.lifetime * 1000;
  }

  /** `GET /login` with a session id: is it still good? */
  private async loginStatus(id: string, dl: Deadline): Promise<AuthStatus> {
    const res = await this.http.send(
      {
        method: "GET",
        path: "/login",
        sessionId: id,
        idempotent: true,
        what: "check the session",
        timeoutMs: this.opts.requestTimeoutMs,
      },
      dl,
    );
    if (res.status !== 200) {
      throw fail(
        "REMOTE_IO",
        `check the session: HTTP ${res.status}${answerText(res.body) ? `: ${answerText(res.body)}` : ""}`,
      );
    }
    return parseAuthStatus(res, "check the session");
  }

  /**
   * Sends a request with the session cookie. A 401/403 is checked against `GET /login`: a
   * live session means a real permission problem (the answer is returned); a dead one is
   * renewed once and the request sent again — safe even for a command, because NEWT refused
   * it without running anything.
   */
  private async authed(req: Omit<NewtRequest, "sessionId">, dl: Deadline): Promise<NewtResponse> {
    let id = await this.ensureSession(dl);
    let res = await this.http.send({ ...req, sessionId: id }, dl);
    if (res.status !== 401 && res.status !== 403) return res;
    const st = await this.loginStatus(id, dl);
    if (st.auth) {
      this.noteLifetime(id, st);
      return res;
    }
    if (this.session.id === id) this.session = { ...this.session, id: undefined };
    if (!this.canLogin()) {
      this.authFailure ??= this.expiredError();
      throw this.authFailure;
    }
    id = await this.ensureSession(dl);
    res = await this.http.send({ ...req, sessionId: id }, dl);
    if (res.status === 401 || res.status === 403) {
      const again = await this.loginStatus(id, dl);
      if (!again.auth) throw fail("AUTH_FAILED", `${req.what}: NEWT rejected a session it had just issued`);
    }
    return res;
  }
}

/** True when a failed command request may have left the command running. */
function mayStillRun(err: unknown): boolean {
  const e = err as { code?: unknown; retryable?: unknown };
  if (e?.retryable === true) return false; // refused before anything ran
  return ["TIMEOUT", "ABORTED", "CLOSED", "CONNECTION_LOST", "UNAVAILABLE"].includes(String(e?.code));
}

/** Waits for `promise`, or rejects with the deadline's error when it fires first. */
function raceDeadline<T>(promise: Promise<T>, dl: Deadline, what: string): Promise<T> {
  if (dl.signal.aborted) return Promise.reject(dl.error(what));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(dl.error(what));
    dl.signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        dl.signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        dl.signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Creates a connector for a NEWT REST API (NERSC's retired gateway, and every
 * NEWT-compatible service). It logs in lazily on first use, keeps one keep-alive HTTP
 * pool, maps files to `PUT`/`GET /file`, runs commands through `POST /command` with a
 * `/bin/sh -c` wrapper that reports real exit statuses, and never repeats a command on
 * its own. There is no `spawn`: clients use the file carrier.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for bad options or missing credentials.
 */
export function newtConnector(options: NewtConnectorOptions): NewtConnector {
  return new NewtConnectorImpl(options);
}
