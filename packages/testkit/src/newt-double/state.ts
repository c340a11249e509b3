/**
 * The NEWT double's state and the small HTTP helpers every route uses: one object the
 * route modules (auth.ts, api-command.ts, api-file.ts, api-queue.ts, http.ts) share, where
 * the double used to be one closure.
 */
import type { IncomingMessage } from "node:http";
import { readBody as readBoundedBody } from "../http-double.js";
import type { ProcessRunner } from "./commands.js";
import type { NewtDoubleClock, NewtDoubleUser, NewtRequestLogEntry } from "./double.js";
import type { ArmedFault } from "./faults.js";

/** What one HTTP reply is made of. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A logged-in NEWT session. */
export interface Session {
  username: string;
  expiresAt: number;
}

/** A batch job of the queue API. */
export interface Job {
  id: string;
  user: string;
  machine: string;
  name: string;
  submitted: Date;
  state: "R" | "C";
  exitCode: number | null;
  kill(): void;
}

/** An error that becomes an HTTP status and message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The double's settings (from its options) and live state. */
export interface DoubleState {
  readonly machines: string[];
  readonly users: NewtDoubleUser[];
  /** Each machine's file area. */
  readonly roots: Map<string, string>;
  readonly machineStatus: Map<string, "up" | "down">;
  readonly clock: NewtDoubleClock;
  readonly sessions: Map<string, Session>;
  readonly requestLog: NewtRequestLogEntry[];
  faults: ArmedFault[];
  readonly runner: ProcessRunner;
  readonly jobs: Map<string, Job>;
  nextJob: number;
  seq: number;
  readonly prefix: string;
  readonly lifetimeMs: number;
  readonly unauthenticatedStatus: number;
  readonly missingFileStatus: number;
  readonly deleteSupport: "supported" | "unsupported";
  readonly commandTimeoutMs: number;
  readonly commandPath: string;
  readonly maxBodyBytes: number;
  readonly commandEnv: Record<string, string> | undefined;
  /** A user's home on a machine (a real absolute path). */
  home(username: string, machine: string): string;
}

export const COOKIE = "newt_sessionid";

export function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

export function errorReply(status: number, message: string): Reply {
  return json(status, { status: "ERROR", status_code: status, error: message, output: "" });
}

export function readCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Reads a request body of at most `limit` bytes (413 beyond). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return readBoundedBody(req, limit, (message) => new HttpError(413, message));
}

export { errnoCode } from "../http-double.js";
