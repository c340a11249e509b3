import type { RequestBudget } from "@sremote/core";
import { UsageError } from "@sremote/core";
import type { HttpRetryOptions } from "./http.js";

/** Production NEWT's base URL (retired; NEWT-compatible services keep the same shape). */
export const DEFAULT_NEWT_URL = "https://newt.nersc.gov/newt";

/** Environment variables the connector reads when options leave something out. */
export const NEWT_ENV = {
  /** Base URL, e.g. `http://127.0.0.1:8080/newt`. */
  url: "SREMOTE_NEWT_URL",
  /** NERSC user name. */
  user: "SREMOTE_NEWT_USER",
  /** Password (without the one-time code). */
  password: "SREMOTE_NEWT_PASSWORD",
  /** One-time MFA code, appended to the password at the first login only. */
  otp: "SREMOTE_NEWT_OTP",
  /** An existing `newt_sessionid` to use instead of logging in. */
  sessionId: "SREMOTE_NEWT_SESSION_ID",
} as const;

/**
 * How to log in. Give a user name and password (plus `otp` with MFA), an existing
 * `sessionId`, or both: the session is tried first and the password is used when it has
 * expired.
 */
export interface NewtCredentials {
  /** NERSC user name. */
  username?: string | undefined;
  /** Password, without the one-time code. */
  password?: string | undefined;
  /**
   * MFA one-time code, appended to the password (no separator). A string is used for one
   * login only (a second login, after the session expired, needs a fresh code); a function
   * is asked for a fresh code at every login.
   */
  otp?: string | (() => string | Promise<string>) | undefined;
  /** An existing `newt_sessionid` ("token" in the seed). It is a bearer secret. */
  sessionId?: string | undefined;
}

/** Options of {@link newtConnector}. */
export interface NewtConnectorOptions {
  /** NEWT system name, lower-case (`"cori"`, `"perlmutter"`). */
  machine: string;
  /** Base URL of the NEWT API. Default: `$SREMOTE_NEWT_URL`, else `https://newt.nersc.gov/newt`. */
  baseUrl?: string | undefined;
  /**
   * Login data. Default: from the environment (`SREMOTE_NEWT_USER`, `SREMOTE_NEWT_PASSWORD`,
   * `SREMOTE_NEWT_OTP`, `SREMOTE_NEWT_SESSION_ID`). When given, the environment is not read.
   */
  credentials?: NewtCredentials | undefined;
  /** Where the `SREMOTE_NEWT_*` variables are read (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Time limit of one HTTP request other than a command, in ms (default 60000). */
  requestTimeoutMs?: number | undefined;
  /** Time limit of one command request, in ms (default 660000: NEWT's 600 s plus a margin). */
  commandTimeoutMs?: number | undefined;
  /**
   * Repetition of requests that are safe to repeat: reads, uploads, idempotent commands
   * (`mkdir -p`, `pwd`, `rm -f`, `chmod`), requests refused before processing (429, no
   * connection), and a command proven not to have run (see docs/exactly-once.md). Default
   * `{ attempts: 5, baseDelayMs: 200, maxDelayMs: 2000 }`, always within the operation's
   * deadline; `{ attempts: 1 }` turns it off. A command that may have run is never repeated:
   * NEWT is asked whether it did, and its recorded answer is used when it did.
   */
  retry?: HttpRetryOptions | undefined;
  /**
   * How `deleteFile` deletes: `"command"` (default; `/bin/rm -f` through `/command`, works on
   * every NEWT) or `"http"` (`DELETE /file/…` first, falling back to the command on 404/405/501).
   */
  deleteMethod?: "command" | "http" | undefined;
  /** Remote folder for stdin files of `exec` (default `~/.sremote/tmp`; created 0700 when missing). */
  tempDir?: string | undefined;
  /** Allow `http:` to a host other than loopback (passwords would travel in clear). Default false. */
  allowInsecureHttp?: boolean | undefined;
  /**
   * End the session (`GET /logout`) on `close()`. Default: true for a session this connector
   * opened, false for a `sessionId` it was given (someone else may still use it).
   */
  logoutOnClose?: boolean | undefined;
}

/** Options after validation and defaults. */
export interface ResolvedOptions {
  machine: string;
  baseUrl: string;
  credentials: NewtCredentials;
  requestTimeoutMs: number;
  commandTimeoutMs: number;
  retry: HttpRetryOptions;
  /** `retry` with its defaults. */
  budget: RequestBudget;
  deleteMethod: "command" | "http";
  tempDir: string | undefined;
  logoutOnClose: boolean | undefined;
}

const MACHINE = /^[a-z0-9][a-z0-9_-]*$/;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function bad(message: string): never {
  throw new UsageError(`newt: ${message}`);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) bad(`${name} must be a positive number of ms, got ${value}`);
  return value;
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

/**
 * Validates options, fills defaults and reads the environment.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) naming the bad option; never echoing a secret.
 */
export function resolveOptions(options: NewtConnectorOptions): ResolvedOptions {
  if (!options || typeof options !== "object") bad("options object required");
  const env = options.env ?? process.env;
  const { machine } = options;
  if (typeof machine !== "string" || !MACHINE.test(machine)) {
    bad(`machine must be a lower-case NEWT system name such as "cori", got ${JSON.stringify(machine)}`);
  }
  const rawUrl = options.baseUrl ?? nonEmpty(env[NEWT_ENV.url]) ?? DEFAULT_NEWT_URL;
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    bad(`baseUrl is not a URL: ${JSON.stringify(rawUrl)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") bad(`baseUrl must be http(s), got ${url.protocol}`);
  if (url.username || url.password) bad("baseUrl must not carry credentials; use the credentials option");
  if (url.search || url.hash) bad("baseUrl must not have a query or fragment");
  if (url.protocol === "http:" && !LOOPBACK.has(url.hostname) && !options.allowInsecureHttp) {
    bad(
      `refusing plain http to ${url.host}: passwords and session ids would travel in clear (use https, or allowInsecureHttp)`,
    );
  }

  const credentials: NewtCredentials = options.credentials
    ? { ...options.credentials }
    : {
        username: nonEmpty(env[NEWT_ENV.user]),
        password: nonEmpty(env[NEWT_ENV.password]),
        otp: nonEmpty(env[NEWT_ENV.otp]),
        sessionId: nonEmpty(env[NEWT_ENV.sessionId]),
      };
  const { username, password, sessionId, otp } = credentials;
  for (const [k, v] of Object.entries({ username, password, sessionId })) {
    if (v !== undefined && (typeof v !== "string" || v === "")) bad(`credentials.${k} must be a non-empty string`);
  }
  if (otp !== undefined && typeof otp !== "string" && typeof otp !== "function") {
    bad("credentials.otp must be a string or a function");
  }
  if (sessionId !== undefined && !/^[\x21-\x7e]+$/.test(sessionId)) {
    bad("credentials.sessionId must be printable ASCII without spaces or ';'");
  }
  if (sessionId?.includes(";") || sessionId?.includes(",")) bad("credentials.sessionId must not contain ';' or ','");
  const hasLogin = username !== undefined && password !== undefined;
  if ((username === undefined) !== (password === undefined)) {
    bad(
      username === undefined
        ? `a password was given without a user name (set ${NEWT_ENV.user})`
        : `user ${username} has no password (set ${NEWT_ENV.password})`,
    );
  }
  if (!hasLogin && sessionId === undefined) {
    bad(
      `no credentials: pass credentials, or set ${NEWT_ENV.user} and ${NEWT_ENV.password} (or ${NEWT_ENV.sessionId}) in the environment`,
    );
  }
  const deleteMethod = options.deleteMethod ?? "command";
  if (deleteMethod !== "command" && deleteMethod !== "http") bad(`deleteMethod must be "command" or "http"`);
  if (options.tempDir !== undefined && (typeof options.tempDir !== "string" || !options.tempDir.startsWith("/"))) {
    bad(`tempDir must be an absolute path, got ${JSON.stringify(options.tempDir)}`);
  }
  const retry = { ...options.retry };
  if (retry.attempts !== undefined && !(Number.isInteger(retry.attempts) && retry.attempts >= 1)) {
    bad(`retry.attempts must be an integer >= 1, got ${retry.attempts}`);
  }
  return {
    machine,
    baseUrl: url.href.replace(/\/+$/, ""),
    credentials,
    requestTimeoutMs: positive("requestTimeoutMs", options.requestTimeoutMs, 60_000),
    commandTimeoutMs: positive("commandTimeoutMs", options.commandTimeoutMs, 660_000),
    retry,
    budget: {
      attempts: retry.attempts ?? 5,
      baseDelayMs: retry.baseDelayMs ?? 200,
      maxDelayMs: retry.maxDelayMs ?? 2000,
    },
    deleteMethod,
    tempDir: options.tempDir,
    logoutOnClose: options.logoutOnClose,
  };
}
