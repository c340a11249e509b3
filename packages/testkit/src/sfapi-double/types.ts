/** Public types of the SFAPI double. */
import type { JsonWebKey } from "node:crypto";
import type { DoubleClock, DoubleOptions, DoubleRequestLogEntry, DoubleRequestOutcome } from "../double-common.js";
import type { SfapiFault, SfapiRoute } from "./faults.js";

/** Security level of an SFAPI client; only `red` may run commands. */
export type SfapiClientColor = "red" | "yellow" | "green";

/** An SFAPI client as registered with the double (the Iris side). */
export interface SfapiClientOptions {
  /** 13 characters (default: random). */
  clientId?: string | undefined;
  /** NERSC user the client acts for (default `"jdoe"`); lower-case letters, digits, `_`, `-`. */
  username?: string | undefined;
  /** Security level (default `"red"`). */
  color?: SfapiClientColor | undefined;
  /** When the client stops working, in ms on the double's clock (default: never). */
  expiresAt?: number | undefined;
  /**
   * The client's public key (PEM, or a JWK) when the test holds its own private key.
   * Default: the double generates a key pair and hands out the private key.
   */
  publicKey?: string | JsonWebKey | undefined;
}

/** A registered test client and, when the double generated its key, everything a connector may be given. */
export interface SfapiDoubleClient {
  readonly clientId: string;
  readonly username: string;
  readonly color: SfapiClientColor;
  readonly expiresAt: number | undefined;
  /** Public key PEM the double verifies assertions with. */
  readonly publicKeyPem: string;
  /** PKCS#8 private key PEM (undefined when the test registered its own public key). */
  readonly privateKeyPem: string | undefined;
  /** Private key as a JWK, with a `kid` (undefined when the test registered its own key). */
  readonly privateJwk: JsonWebKey | undefined;
  /** NERSC's PEM key-file text: client id on line 1, then the PEM. */
  readonly keyFile: string | undefined;
  /** NERSC's JSON key-file text: `{"client_id", "secret": <JWK>}`. */
  readonly jwkKeyFile: string | undefined;
}

/** Options of {@link startSfapiDouble}. Every field is optional. */
export interface SfapiDoubleOptions extends DoubleOptions {
  /** Machine names (default `["perlmutter"]`); each gets its own file area. */
  machines?: readonly string[] | undefined;
  /** Registered clients (default: one red client of user `jdoe` with a generated key). */
  clients?: readonly SfapiClientOptions[] | undefined;
  /** Lifetime of issued access tokens in seconds (default 600, NERSC's ≈10 minutes). */
  tokenLifetimeSeconds?: number | undefined;
  /** Clock difference allowed when checking an assertion's `exp`/`iat`, in seconds (default 5). */
  assertionSkewSeconds?: number | undefined;
  /** How long a command task stays `new` (queued) before its process starts, in ms (default 0). */
  taskDelayMs?: number | undefined;
  /**
   * A command whose program does not exist: task `completed` with `exit_code` 127 and the
   * message in `error` (`"exit-127"`, default, what a shell would say) or task `failed`.
   */
  missingExecutable?: "exit-127" | "failed" | undefined;
  /**
   * While a command runs, its task (still `new`) shows the output so far as `result`, with
   * `exit_code: null` — as production may (default true). A client must wait for a terminal
   * status before trusting `result`.
   */
  partialResults?: boolean | undefined;
  /** How long a batch job stays `PENDING` before its process starts, in ms (default 0). */
  jobPendingMs?: number | undefined;
  /**
   * Lag of the queue cache: `GET /compute/jobs` without `cached=false` does not show jobs
   * submitted less than this many ms ago (default 0), as production's cache may.
   */
  jobCacheMs?: number | undefined;
  /** Largest file `download` returns; larger → 200 `status:"ERROR"` (default 64 MiB). */
  maxDownloadBytes?: number | undefined;
}

/**
 * The double's notion of time for access-token and client expiry (tokens issued before an
 * `advance` may now be expired). Starts at the real time.
 */
export type SfapiDoubleClock = DoubleClock;

/** What happened to a request. */
export type SfapiRequestOutcome = DoubleRequestOutcome;

/**
 * One request as the double received it. Never holds an assertion, a token or a key: in
 * `form`, `client_assertion` (and any secret-like field) is `"<redacted>"`. `route` is
 * e.g. `"POST /utilities/command"`, `"GET /tasks"`, `"POST /token"`; `path` is the whole
 * URL path.
 */
export interface SfapiRequestLogEntry extends DoubleRequestLogEntry {
  /** An `Authorization` header was sent. */
  hasAuthorization: boolean;
  /** What the bearer token was (`none` without one; public routes are still classified). */
  auth: "valid" | "expired" | "invalid" | "none";
  /** The client, once identified (by its token, or by a verified assertion). */
  clientId?: string | undefined;
  username?: string | undefined;
  /** OAuth error code the token endpoint answered (`invalid_client`…). */
  tokenError?: string | undefined;
  /** Task created by this request (`POST /utilities/command`). */
  taskId?: string | undefined;
}

/** Where a task is, as the double sees it (the API only shows `status`). */
export type SfapiTaskPhase = "queued" | "running" | "completed" | "failed" | "cancelled";

/** A task of the double (a snapshot). */
export interface SfapiTaskView {
  id: string;
  /** A command, a batch job submission, or a batch job cancellation. */
  kind: "command" | "job-submit" | "job-cancel";
  machine: string;
  username: string;
  clientId: string;
  /** The `executable` form field as sent (for jobs: `sbatch <path>` or `sbatch <script text>`, `scancel <id>`). */
  executable: string;
  /** The argv started (after POSIX word splitting). */
  argv: readonly string[];
  /** What `GET /tasks/{id}` reports. */
  status: "new" | "completed" | "failed" | "cancelled";
  phase: SfapiTaskPhase;
  /** Process id (= process group id) once started. */
  pid?: number | undefined;
  exitCode?: number | null | undefined;
  signal?: string | null | undefined;
  timedOut?: boolean | undefined;
  /** Times on the double's clock (ms). */
  createdAt: number;
  startedAt?: number | undefined;
  endedAt?: number | undefined;
}

/** A batch job of the double (a snapshot). */
export interface SfapiJobView {
  id: string;
  machine: string;
  username: string;
  name: string;
  argv: readonly string[];
  state: "PENDING" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMEOUT";
  exitCode: number | null;
  /** Process id (= process group id) once started. */
  pid?: number | undefined;
}

/** Value of `GET /status/{machine}`. */
export type SfapiSystemStatus = "active" | "unavailable" | "degraded" | "other";

/** A running SFAPI double. See {@link startSfapiDouble}. */
export interface SfapiDouble {
  /** API base, e.g. `http://127.0.0.1:41234/api/v1.2`. */
  readonly baseUrl: string;
  /** Token endpoint, e.g. `http://127.0.0.1:41234/c2id/token` (an assertion's `aud` must equal it). */
  readonly tokenUrl: string;
  readonly machines: readonly string[];
  /** Registered clients, with their private keys and key-file texts. */
  readonly clients: readonly SfapiDoubleClient[];
  /** Finds a client by id or the first of `username`; throws when there is none. */
  client(idOrUsername?: string): SfapiDoubleClient;
  /** The real folder holding `machine`'s file area (default: the first machine). */
  rootDir(machine?: string): string;
  /** The user's home: a real absolute path `<rootDir>/global/homes/<initial>/<user>` (defaults: first client's user, first machine). */
  homeDir(username?: string, machine?: string): string;
  /** Writes a client's key file (mode 0600) in NERSC's `pem` form or the `json` form; returns its path. */
  writeKeyFile(clientId: string, form?: "pem" | "json"): Promise<string>;
  /** Issues an access token without HTTP (a "ready token" for a connector). */
  issueAccessToken(clientId: string, lifetimeSeconds?: number): string;
  /** Makes every token issued so far invalid (401), as if the server forgot them. */
  revokeAccessTokens(): void;
  /** Revokes a client: its assertions and tokens are refused from now on. */
  revokeClient(clientId: string): void;
  /** Sets what `GET /status/{machine}` reports. */
  setMachineStatus(machine: string, status: SfapiSystemStatus): void;
  /** Sets how long new command tasks stay queued (`new`) before their process starts. */
  setTaskDelay(ms: number): void;
  /** Every request so far, in arrival order (live array; never holds secrets). */
  readonly requestLog: readonly SfapiRequestLogEntry[];
  /** Snapshots of every task so far, in creation order. */
  readonly tasks: readonly SfapiTaskView[];
  /** Snapshots of every batch job so far (`/compute/jobs`). */
  readonly jobs: readonly SfapiJobView[];
  /** Commands and jobs whose process is still running. */
  readonly runningCommands: number;
  /** Arms a fault for the next matching requests of `route` (see {@link SfapiFault}). */
  inject(route: SfapiRoute, fault: SfapiFault): void;
  clearFaults(): void;
  /** The double's clock (token and client expiry). */
  readonly clock: SfapiDoubleClock;
  /** Stops the server, kills every command, removes the temp folder it made. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}
