import { createServer } from "node:http";
import {
  closeOnce,
  createClock,
  type DoubleClock,
  type DoubleOptions,
  type DoubleRequestLogEntry,
  type DoubleRequestOutcome,
  listenOnLoopback,
  makeFileAreas,
  sharedSettings,
} from "../double-common.js";
import { newSession } from "./auth.js";
import { ProcessRunner } from "./commands.js";
import { armFault, type NewtFault, type NewtRoute } from "./faults.js";
import { handle } from "./http.js";
import type { DoubleState } from "./state.js";

/** An account of the double. */
export interface NewtDoubleUser {
  /** NERSC-style user name (lower-case letters and digits). */
  username: string;
  /** The password. */
  password: string;
  /**
   * MFA: when set, a login must send `password + otp` as the password (no separator), as
   * NERSC's MFA did. A function is asked at each login (a code that changes).
   */
  otp?: string | (() => string) | undefined;
}

/** Options of {@link startNewtDouble}. Every field is optional. */
export interface NewtDoubleOptions extends DoubleOptions {
  /** System names (default `["cori"]`); each gets its own file area. */
  machines?: readonly string[] | undefined;
  /** Accounts (default one user `jdoe` with password `newt-double-password`). */
  users?: readonly NewtDoubleUser[] | undefined;
  /** URL path the API lives under (default `"/newt"`, as `https://newt.nersc.gov/newt`). */
  prefix?: string | undefined;
  /** Lifetime of a new session in seconds (default 43199, as production reported). */
  sessionLifetimeSeconds?: number | undefined;
  /** Status for protected calls without a valid session (default 403, as NEWT 2.0). */
  unauthenticatedStatus?: 401 | 403 | undefined;
  /** Status for downloading a missing file or a folder (default 404; NEWT 2.0 gave 500). */
  missingFileStatus?: 404 | 500 | undefined;
  /** Whether `DELETE /file/…` works (`"supported"`, default) or answers 501 (`"unsupported"`). */
  deleteSupport?: "supported" | "unsupported" | undefined;
}

/**
 * The double's notion of time, used for session expiry (`advance` past a session's
 * lifetime ends it). Starts at the real time.
 */
export type NewtDoubleClock = DoubleClock;

/** What happened to a request, as seen by the double. */
export type NewtRequestOutcome = DoubleRequestOutcome;

/** A command the double ran for a request. */
export interface NewtCommandRecord {
  /** The argv actually started (after word splitting, or `/bin/sh -lc …` for a login environment). */
  argv: readonly string[];
  /** Real exit status (NEWT does not report it; tests may). */
  exitCode: number | null;
  signal: string | null;
  /** The double's time limit killed it. */
  timedOut: boolean;
}

/**
 * One request as the double received it. Never holds a password or a session id: the
 * `form` field `password` is `"<redacted>"`. `route` is `"POST /command"`, `"GET /file"`,
 * `"POST /auth"`…; `path` is after the base URL, e.g. `/file/cori/…/x.resp`.
 */
export interface NewtRequestLogEntry extends DoubleRequestLogEntry {
  /** A `newt_sessionid` cookie was sent. */
  hasCookie: boolean;
  /** Whether that cookie named a live session. */
  session: "valid" | "invalid" | "none";
  /** The session's user, when valid. */
  username?: string | undefined;
  /** The command started for this request, if one was. */
  command?: NewtCommandRecord | undefined;
}

/** A running NEWT double. See {@link startNewtDouble}. */
export interface NewtDouble {
  /** Base URL to give the connector, e.g. `http://127.0.0.1:41234/newt`. */
  readonly baseUrl: string;
  /** System names served. */
  readonly machines: readonly string[];
  /** Accounts (with their passwords: this is a test double). */
  readonly users: readonly NewtDoubleUser[];
  /** The real folder holding `machine`'s file area; URLs can reach nothing outside it. */
  rootDir(machine: string): string;
  /**
   * The user's home on `machine` (default: the first machine): a real absolute path,
   * `<rootDir>/global/homes/<initial>/<user>`, which `/bin/pwd` reports and file URLs use.
   */
  homeDir(username: string, machine?: string): string;
  /** Every request so far, in arrival order (live array; never holds secrets). */
  readonly requestLog: readonly NewtRequestLogEntry[];
  /** Arms a fault for matching requests of `route` (see {@link NewtFault}). Faults apply in arming order. */
  inject(route: NewtRoute, fault: NewtFault): void;
  /** Removes every armed fault. */
  clearFaults(): void;
  /** Ends every session now (their ids then answer `auth:false`), to test re-authentication. */
  expireSessions(): void;
  /** Creates a session for `username` without HTTP and returns its id (for "token" logins). */
  issueSession(username: string): string;
  /** Sets what `GET /status/{machine}` reports. */
  setMachineStatus(machine: string, status: "up" | "down"): void;
  /** The double's clock (session expiry). */
  readonly clock: NewtDoubleClock;
  /** Commands still running. */
  readonly runningCommands: number;
  /** Stops the server, kills every command and job, removes the temp folder it made. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Default account of the double. */
export const DEFAULT_NEWT_USER: Readonly<NewtDoubleUser> = Object.freeze({
  username: "jdoe",
  password: "newt-double-password",
});

const MACHINE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]*$/;

/**
 * Starts a NEWT double: a real HTTP server on 127.0.0.1 that implements the production
 * NEWT API (docs/spec-newt-api.md §11, requirements 1–12) over real folders and real
 * processes, so that the real Python agent runs behind it.
 *
 * Homes are real absolute paths (`/tmp/…/cori/global/homes/j/jdoe`): `/bin/pwd` reports
 * them, file URLs name them, and commands see the very same files — no path translation.
 * File URLs are confined to the machine's file area; commands run as the current OS user.
 */
export async function startNewtDouble(options: NewtDoubleOptions = {}): Promise<NewtDouble> {
  const machines = [...(options.machines ?? ["cori"])];
  const users = (options.users ?? [DEFAULT_NEWT_USER]).map((u) => ({ ...u }));
  if (machines.length === 0) throw new TypeError("newt-double: at least one machine is needed");
  for (const m of machines) {
    if (!MACHINE_NAME.test(m)) throw new TypeError(`newt-double: bad machine name ${JSON.stringify(m)}`);
  }
  for (const u of users) {
    if (!USER_NAME.test(u.username)) throw new TypeError(`newt-double: bad user name ${JSON.stringify(u.username)}`);
  }
  const prefix = (options.prefix ?? "/newt").replace(/\/+$/, "");
  if (prefix !== "" && !prefix.startsWith("/")) throw new TypeError("newt-double: prefix must start with /");

  const { roots, home, ownedDir } = await makeFileAreas(
    "newt-double",
    options.baseDir,
    machines,
    users.map((u) => u.username),
  );
  const machineStatus = new Map<string, "up" | "down">(machines.map((m) => [m, "up"]));
  const clock = createClock("newt-double");

  const st: DoubleState = {
    machines,
    users,
    roots,
    machineStatus,
    clock,
    sessions: new Map(),
    requestLog: [],
    faults: [],
    runner: new ProcessRunner(),
    jobs: new Map(),
    nextJob: 1000,
    seq: 0,
    prefix,
    lifetimeMs: (options.sessionLifetimeSeconds ?? 43199) * 1000,
    unauthenticatedStatus: options.unauthenticatedStatus ?? 403,
    missingFileStatus: options.missingFileStatus ?? 404,
    deleteSupport: options.deleteSupport ?? "supported",
    ...sharedSettings(options),
    home,
  };

  const server = createServer((req, res) => {
    handle(st, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `newt-double internal error: ${(err as Error).message}` }));
      }
    });
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  const close = closeOnce(server, () => st.runner.close(), ownedDir);

  return {
    baseUrl: `http://127.0.0.1:${port}${prefix}`,
    machines,
    users,
    rootDir(machine) {
      const root = roots.get(machine);
      if (!root) throw new TypeError(`newt-double: unknown machine ${JSON.stringify(machine)}`);
      return root;
    },
    homeDir(username, machine = machines[0] as string) {
      if (!roots.has(machine)) throw new TypeError(`newt-double: unknown machine ${JSON.stringify(machine)}`);
      if (!users.some((u) => u.username === username)) {
        throw new TypeError(`newt-double: unknown user ${JSON.stringify(username)}`);
      }
      return home(username, machine);
    },
    requestLog: st.requestLog,
    inject(route, fault) {
      st.faults.push(armFault(route, fault));
    },
    clearFaults() {
      st.faults = [];
    },
    expireSessions() {
      st.sessions.clear();
    },
    issueSession(username) {
      if (!users.some((u) => u.username === username)) {
        throw new TypeError(`newt-double: unknown user ${JSON.stringify(username)}`);
      }
      return newSession(st, username);
    },
    setMachineStatus(machine, status) {
      if (!roots.has(machine)) throw new TypeError(`newt-double: unknown machine ${JSON.stringify(machine)}`);
      machineStatus.set(machine, status);
    },
    clock,
    get runningCommands() {
      return st.runner.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
