/** The SFAPI double's shared state and the small reply helpers every route uses. */
import type { KeyObject } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { readBody as readBoundedBody } from "../http-double.js";
import type { ProcessRunner } from "../newt-double/commands.js";
import type { ArmedFault } from "./faults.js";
import type {
  SfapiDoubleClient,
  SfapiDoubleClock,
  SfapiJobView,
  SfapiRequestLogEntry,
  SfapiSystemStatus,
  SfapiTaskView,
} from "./types.js";

/** What one HTTP reply is made of. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A registered client with what the double needs to check it. */
export interface ClientRecord {
  view: SfapiDoubleClient;
  publicKey: KeyObject;
  kid: string | undefined;
  revoked: boolean;
}

/** A command task. `view` is what `tasks` snapshots; `result` is what `GET /tasks/{id}` shows. */
export interface TaskRecord {
  view: SfapiTaskView;
  result: string | null;
  /** Timer of a queued task (cleared when it starts or is cancelled). */
  timer?: NodeJS.Timeout | undefined;
  /** Kills the running process group. */
  kill?: (() => void) | undefined;
  /** `DELETE /tasks/{id}` asked for it: the end of its process means `cancelled`. */
  cancelRequested?: boolean | undefined;
  /** Settles when the process has ended (never rejects). */
  done?: Promise<unknown> | undefined;
}

/** A Slurm batch job of `/compute/jobs`: what `jobs` snapshots, and what the double needs to run it. */
export interface JobRecord extends SfapiJobView {
  /** Number of the signal that ended it, if one did. */
  signal: number | null;
  submittedAt: number;
  startedAt?: number | undefined;
  endedAt?: number | undefined;
  timer?: NodeJS.Timeout | undefined;
  kill?: (() => void) | undefined;
  done?: Promise<unknown> | undefined;
}

/** The caller of an API route, from a valid bearer token. */
export interface Caller {
  client: ClientRecord;
  username: string;
}

/** The double's settings (from its options) and live state. */
export interface SfapiState {
  readonly machines: string[];
  readonly roots: Map<string, string>;
  readonly machineStatus: Map<string, SfapiSystemStatus>;
  readonly clients: Map<string, ClientRecord>;
  readonly clock: SfapiDoubleClock;
  readonly requestLog: SfapiRequestLogEntry[];
  readonly tasks: Map<string, TaskRecord>;
  readonly runner: ProcessRunner;
  /** Secret of the HS256 access tokens. */
  readonly tokenSecret: Buffer;
  /** Assertion `jti`s seen, with the assertion's `exp` (s), so replays are refused until they expire. */
  readonly seenJti: Map<string, number>;
  /** Tokens issued before this time (ms, double's clock) are refused. */
  tokensValidFrom: number;
  readonly jobs: Map<string, JobRecord>;
  nextJob: number;
  readonly jobPendingMs: number;
  readonly jobCacheMs: number;
  faults: ArmedFault[];
  seq: number;
  nextTask: number;
  taskDelayMs: number;
  closed: boolean;
  readonly apiPrefix: string;
  readonly tokenPath: string;
  readonly tokenUrl: string;
  readonly tokenLifetimeSeconds: number;
  readonly assertionSkewSeconds: number;
  readonly commandTimeoutMs: number;
  readonly missingExecutable: "exit-127" | "failed";
  readonly partialResults: boolean;
  readonly maxDownloadBytes: number;
  readonly maxBodyBytes: number;
  readonly commandPath: string;
  readonly commandEnv: Readonly<Record<string, string>> | undefined;
  home(username: string, machine: string): string;
}

/** An error that becomes an HTTP status with a FastAPI `{"detail": …}` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

/** FastAPI's error shape. */
export function detail(status: number, text: unknown, headers: Record<string, string> = {}): Reply {
  return json(status, { detail: text }, headers);
}

/** FastAPI's 422 for a missing or bad field. */
export function validationError(loc: string[], msg: string): Reply {
  return json(422, { detail: [{ loc, msg, type: "value_error" }] });
}

/** Reads a request body of at most `limit` bytes (413 beyond). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return readBoundedBody(req, limit, (message) => new ApiError(413, message));
}

export { errnoCode } from "../http-double.js";

/** A user's numeric id (stable within one double). */
export function userId(st: SfapiState, username: string): number {
  const names = [...new Set([...st.clients.values()].map((c) => c.view.username))];
  return 70_000 + names.indexOf(username);
}

export function knownMachine(st: SfapiState, machine: string | undefined): string {
  if (machine === undefined || !st.roots.has(machine)) throw new ApiError(404, "Not Found");
  return machine;
}
