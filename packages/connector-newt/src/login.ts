import { type ConnectorError, type Deadline, deadline, raceSignal, repeatSafely } from "@sremote/core";
import { fail } from "./errors.js";
import { answerText, type NewtHttp, type NewtRequest, type NewtResponse } from "./http.js";
import { NEWT_ENV, type ResolvedOptions } from "./options.js";

/** What `GET /login` (and a successful `POST /auth`) says about a session. */
export interface AuthStatus {
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

const NO_SESSION: Session = { id: undefined, username: undefined, expiresAt: undefined, ours: false };

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

/**
 * The NEWT login: one session shared by every operation, established lazily (once, even
 * for concurrent callers), renewed when it expired and credentials allow, and never
 * re-sending credentials NEWT refused (accounts lock).
 */
export class NewtLogin {
  #session: Session = NO_SESSION;
  /** A session id given in the credentials and not yet checked. */
  #pendingSessionId: string | undefined;
  #otpUsed = false;
  /** Set once NEWT refused the credentials: they are never sent again. */
  #authFailure: ConnectorError | undefined;
  #establishing: Promise<void> | undefined;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly http: NewtHttp,
    private readonly closeSignal: AbortSignal,
  ) {
    this.#pendingSessionId = opts.credentials.sessionId;
  }

  /** The id to report on or to end: the live session's, else the one given and not yet checked. */
  get knownId(): string | undefined {
    return this.#session.id ?? this.#pendingSessionId;
  }

  get authFailure(): ConnectorError | undefined {
    return this.#authFailure;
  }

  /** Forgets the session; returns what it was, for logging out. */
  drop(): { id: string | undefined; ours: boolean } {
    const { id, ours } = this.#session;
    this.#session = NO_SESSION;
    return { id, ours };
  }

  #canLogin(): boolean {
    const { username, password, otp } = this.opts.credentials;
    return username !== undefined && password !== undefined && !(typeof otp === "string" && this.#otpUsed);
  }

  #expiredError(): ConnectorError {
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
  async ensure(dl: Deadline): Promise<string> {
    for (let round = 0; round < 3; round++) {
      if (this.#authFailure) throw this.#authFailure;
      const s = this.#session;
      if (s.id !== undefined) {
        const knownOver = s.expiresAt !== undefined && Date.now() >= s.expiresAt;
        if (!knownOver || !this.#canLogin()) return s.id;
        this.#session = { ...s, id: undefined };
      }
      this.#establishing ??= this.#establish().finally(() => {
        this.#establishing = undefined;
      });
      await raceSignal(this.#establishing, dl.signal).catch((err: unknown) => {
        throw dl.signal.aborted ? dl.error("newt: log in") : err;
      });
    }
    throw this.#authFailure ?? fail("AUTH_FAILED", "could not establish a NEWT session");
  }

  /**
   * Logs in or adopts a given session. Runs detached from any one caller's deadline (it is
   * shared by every operation waiting for it), bounded by its own time limit and by close().
   */
  async #establish(): Promise<void> {
    const dl = deadline({ timeoutMs: this.opts.requestTimeoutMs * 2 }, this.closeSignal);
    try {
      const given = this.#pendingSessionId;
      if (given !== undefined) {
        const st = await this.loginStatus(given, dl);
        this.#pendingSessionId = undefined;
        if (st.auth) {
          this.#adopt(given, st, false);
          return;
        }
        if (!this.#canLogin()) {
          this.#authFailure = this.#expiredError();
          throw this.#authFailure;
        }
      }
      await this.#login(dl);
    } finally {
      dl.dispose();
    }
  }

  async #login(dl: Deadline): Promise<void> {
    if (!this.#canLogin()) {
      this.#authFailure = this.#expiredError();
      throw this.#authFailure;
    }
    const { username, password, otp } = this.opts.credentials as { username: string; password: string } & {
      otp?: string | (() => string | Promise<string>);
    };
    let code = "";
    if (typeof otp === "string") {
      code = otp;
      this.#otpUsed = true;
    } else if (typeof otp === "function") {
      code = String(await otp());
    }
    const what = `log in as ${username}`;
    // A 503 or a lost answer: sent again (a second login is harmless); a refusal never is.
    const res = await this.#safe(
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
      this.#authFailure = fail("AUTH_FAILED", `NEWT refused the login of ${username} (HTTP ${res.status})`);
      throw this.#authFailure;
    }
    if (res.status !== 200) {
      throw fail("REMOTE_IO", `${what}: HTTP ${res.status}${answerText(res.body) ? `: ${answerText(res.body)}` : ""}`, {
        details: { status: res.status },
      });
    }
    const st = parseAuthStatus(res, what);
    // NEWT answers wrong credentials with HTTP 200 and auth:false.
    if (!st.auth) {
      this.#authFailure = fail(
        "AUTH_FAILED",
        `NEWT refused the login of ${username}: wrong user name, password${otp === undefined ? "" : " or one-time code"}. The credentials are not sent again by this connector`,
      );
      throw this.#authFailure;
    }
    const id = st.sessionId ?? cookieFrom(res);
    if (id === undefined) throw fail("REMOTE_IO", `${what}: NEWT accepted the login but sent no session id`);
    this.#adopt(id, st, true);
  }

  #adopt(id: string, st: AuthStatus, ours: boolean): void {
    this.#session = {
      id,
      username: st.username ?? this.opts.credentials.username,
      expiresAt: st.lifetime > 0 ? Date.now() + st.lifetime * 1000 : undefined,
      ours,
    };
  }

  /** Records how long the session `id` still lives, as `GET /login` just said. */
  noteLifetime(id: string, st: AuthStatus): void {
    if (this.#session.id === id && st.lifetime > 0) this.#session.expiresAt = Date.now() + st.lifetime * 1000;
  }

  /** One idempotent request, sent again after a transient failure under the retry budget. */
  #safe(req: NewtRequest, dl: Deadline): Promise<NewtResponse> {
    return repeatSafely(() => this.http.send(req, dl), dl, this.opts.budget);
  }

  /** `GET /login` with a session id: is it still good? */
  async loginStatus(id: string, dl: Deadline): Promise<AuthStatus> {
    const res = await this.#safe(
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
  async authed(req: Omit<NewtRequest, "sessionId">, dl: Deadline): Promise<NewtResponse> {
    let id = await this.ensure(dl);
    let res = await this.http.send({ ...req, sessionId: id }, dl);
    if (res.status !== 401 && res.status !== 403) return res;
    const st = await this.loginStatus(id, dl);
    if (st.auth) {
      this.noteLifetime(id, st);
      return res;
    }
    if (this.#session.id === id) this.#session = { ...this.#session, id: undefined };
    if (!this.#canLogin()) {
      this.#authFailure ??= this.#expiredError();
      throw this.#authFailure;
    }
    id = await this.ensure(dl);
    res = await this.http.send({ ...req, sessionId: id }, dl);
    if (res.status === 401 || res.status === 403) {
      const again = await this.loginStatus(id, dl);
      if (!again.auth) throw fail("AUTH_FAILED", `${req.what}: NEWT rejected a session it had just issued`);
    }
    return res;
  }
}
