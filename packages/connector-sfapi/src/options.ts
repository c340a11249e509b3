import type { JsonWebKey } from "node:crypto";
import { type RequestBudget, UsageError } from "@sremote/core";
import { type ClientKey, privateKeyFrom, readKeyFile } from "./credentials.js";

/** NERSC's production API base. */
export const DEFAULT_SFAPI_URL = "https://api.nersc.gov/api/v1.2";
/** NERSC's token endpoint (Connect2id); an assertion's `aud` must equal it exactly. */
export const DEFAULT_SFAPI_TOKEN_URL = "https://oidc.nersc.gov/c2id/token";

/** Retry of operations that cannot have run anything remotely, by core's `withRetry` (composed by the factory). */
export interface SfapiRetryOptions {
  /**
   * Total sends of a request that is safe to repeat, the first included (default 5): reads,
   * uploads, idempotent commands, requests refused before processing, a command proven not
   * to have run (docs/exactly-once.md). `1` turns retrying off.
   */
  attempts?: number | undefined;
  /** Backoff bound before the second attempt, in ms (default 200). */
  baseDelayMs?: number | undefined;
  /** Upper bound of one backoff, in ms (default 5000). */
  maxDelayMs?: number | undefined;
}

/** Options of {@link sfapiConnector}. Give exactly one of `keyFile`, `clientId` + `privateKey`, `accessToken`. */
export interface SfapiConnectorOptions {
  /** SFAPI machine name (`"perlmutter"`, `"dtns"`, …). */
  machine: string;
  /**
   * An SFAPI client's key file as Iris hands it out: the client id on the first line, then
   * the PEM private key; or JSON `{"client_id": "…", "secret": <JWK>}`. Read once, at creation.
   */
  keyFile?: string | undefined;
  /** The client id (with `privateKey`). */
  clientId?: string | undefined;
  /** The client's RSA private key: PEM text, or a JWK (object or JSON text). */
  privateKey?: string | JsonWebKey | undefined;
  /** A ready access token, used as is: no renewal, so a 401 ends in `AUTH_FAILED`. */
  accessToken?: string | undefined;
  /** API base URL (default {@link DEFAULT_SFAPI_URL}). */
  apiUrl?: string | undefined;
  /** Token endpoint (default {@link DEFAULT_SFAPI_TOKEN_URL}). */
  tokenUrl?: string | undefined;
  /** First wait before asking a task's status, in ms (default 20); each later wait doubles. */
  pollIntervalMs?: number | undefined;
  /** Longest wait between two status questions of one task, in ms (default 2000). */
  pollMaxIntervalMs?: number | undefined;
  /** Time limit of one HTTP request, in ms (default 60000). */
  requestTimeoutMs?: number | undefined;
  /**
   * How long deletions and `chmod`s may wait to ride along with the next command, in ms
   * (default 150): with the file carrier they travel inside the next call's command, so a
   * call costs no request of its own for them. `0` sends them at once (one command per batch).
   */
  batchWindowMs?: number | undefined;
  /** Remote folder for stdin files of `exec` (default `~/.sremote/tmp`). */
  tempDir?: string | undefined;
  /**
   * Repetition of requests that are safe to repeat, within the operation's deadline. A
   * command that may have run is never repeated: SFAPI is asked whether it did, and its
   * recorded answer is used when it did (docs/exactly-once.md).
   */
  retry?: SfapiRetryOptions | undefined;
  /** Allow `http:` to a host other than loopback (tokens would travel in clear). Default false. */
  allowInsecureHttp?: boolean | undefined;
}

export type SfapiAuth = { kind: "client"; client: ClientKey } | { kind: "token"; token: string };

/** Options after validation and defaults. */
export interface ResolvedOptions {
  machine: string;
  apiUrl: string;
  tokenUrl: string;
  auth: SfapiAuth;
  pollIntervalMs: number;
  pollMaxIntervalMs: number;
  requestTimeoutMs: number;
  batchWindowMs: number;
  tempDir: string | undefined;
  retry: SfapiRetryOptions;
  /** `retry` with its defaults. */
  budget: RequestBudget;
}

const MACHINE = /^[a-z0-9][a-z0-9_-]*$/;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

function bad(message: string): never {
  throw new UsageError(`sfapi: ${message}`);
}

function checkUrl(name: string, raw: string, insecureOk: boolean): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    bad(`${name} is not a URL: ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") bad(`${name} must be http(s), got ${url.protocol}`);
  if (url.username || url.password) bad(`${name} must not carry credentials`);
  if (url.search || url.hash) bad(`${name} must not have a query or fragment`);
  if (url.protocol === "http:" && !LOOPBACK.has(url.hostname) && !insecureOk) {
    bad(`refusing plain http to ${url.host}: tokens would travel in clear (use https, or allowInsecureHttp)`);
  }
  return url.href;
}

function ms(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < min) bad(`${name} must be a number of ms >= ${min}, got ${value}`);
  return value;
}

function resolveAuth(o: SfapiConnectorOptions): SfapiAuth {
  const given = [
    o.keyFile !== undefined,
    o.clientId !== undefined || o.privateKey !== undefined,
    o.accessToken !== undefined,
  ];
  if (given.filter(Boolean).length !== 1) {
    bad("give exactly one of keyFile, clientId + privateKey, or accessToken");
  }
  if (o.keyFile !== undefined) {
    if (typeof o.keyFile !== "string" || o.keyFile === "") bad("keyFile must be a path");
    return { kind: "client", client: readKeyFile(o.keyFile) };
  }
  if (o.accessToken !== undefined) {
    if (typeof o.accessToken !== "string" || !/^[\x21-\x7e]+$/.test(o.accessToken)) {
      bad("accessToken must be a non-empty token of printable characters");
    }
    return { kind: "token", token: o.accessToken };
  }
  if (typeof o.clientId !== "string" || !/^[A-Za-z0-9_-]{4,64}$/.test(o.clientId)) {
    bad("clientId must be the SFAPI client id (13 characters from Iris)");
  }
  if (o.privateKey === undefined) bad("clientId needs privateKey (PEM or JWK)");
  return { kind: "client", client: { clientId: o.clientId, ...privateKeyFrom(o.privateKey, "privateKey") } };
}

/**
 * Validates options and fills defaults; reads the key file.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) naming the bad option, never echoing a key or token.
 */
export function resolveOptions(options: SfapiConnectorOptions): ResolvedOptions {
  if (!options || typeof options !== "object") bad("options object required");
  const { machine } = options;
  if (typeof machine !== "string" || !MACHINE.test(machine)) {
    bad(`machine must be a lower-case SFAPI machine name such as "perlmutter", got ${JSON.stringify(machine)}`);
  }
  const insecure = options.allowInsecureHttp === true;
  const apiUrl = checkUrl("apiUrl", options.apiUrl ?? DEFAULT_SFAPI_URL, insecure).replace(/\/+$/, "");
  // Not normalised: the assertion's `aud` must be the token URL exactly as the server knows it.
  const tokenUrl = options.tokenUrl ?? DEFAULT_SFAPI_TOKEN_URL;
  checkUrl("tokenUrl", tokenUrl, insecure);
  if (options.tempDir !== undefined && (typeof options.tempDir !== "string" || !options.tempDir.startsWith("/"))) {
    bad(`tempDir must be an absolute path, got ${JSON.stringify(options.tempDir)}`);
  }
  const retry = { ...options.retry };
  if (retry.attempts !== undefined && !(Number.isInteger(retry.attempts) && retry.attempts >= 1)) {
    bad(`retry.attempts must be an integer >= 1, got ${retry.attempts}`);
  }
  const pollIntervalMs = ms("pollIntervalMs", options.pollIntervalMs, 20);
  return {
    machine,
    apiUrl,
    tokenUrl,
    auth: resolveAuth(options),
    pollIntervalMs,
    pollMaxIntervalMs: Math.max(pollIntervalMs, ms("pollMaxIntervalMs", options.pollMaxIntervalMs, 2000)),
    requestTimeoutMs: ms("requestTimeoutMs", options.requestTimeoutMs, 60_000),
    batchWindowMs: ms("batchWindowMs", options.batchWindowMs, 150, 0),
    tempDir: options.tempDir,
    retry,
    budget: {
      attempts: retry.attempts ?? 5,
      baseDelayMs: retry.baseDelayMs ?? 200,
      maxDelayMs: retry.maxDelayMs ?? 5000,
    },
  };
}
