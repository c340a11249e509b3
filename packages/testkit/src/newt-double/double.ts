import { mkdir, mkdtemp, realpath, rm } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
export interface NewtDoubleOptions {
  /** System names (default `["cori"]`); each gets its own file area. */
  machines?: readonly string[] | undefined;
  /** Accounts (default one user `jdoe` with password `newt-double-password`). */
  users?: readonly NewtDoubleUser[] | undefined;
  /**
   * Existing folder to build the file areas in. Default: a fresh folder under the OS temp
   * folder, removed by `close()`. A folder given here is left in place.
   */
  baseDir?: string | undefined;
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
  /** Commands running longer are killed with their whole process group (default 600000, NEWT 2.0's limit). */
  commandTimeoutMs?: number | undefined;
  /** `PATH` of commands run without a login environment (default `/usr/local/bin:/usr/bin:/bin`). */
  commandPath?: string | undefined;
  /** Extra environment variables for every command (e.g. `SREMOTE_PYTHON`). */
  commandEnv?: Readonly<Record<string, string>> | undefined;
  /** Largest request body accepted, in bytes (default 256 MiB); larger → 413. */
  maxBodyBytes?: number | undefined;
  /** TCP port on 127.0.0.1 (default 0: an ephemeral port). */
  port?: number | undefined;
}

/** The double's notion of time, used for session expiry. Starts at the real time. */
export interface NewtDoubleClock {
  /** Current time of the double, in ms since the epoch. */
  now(): number;
  /** Moves the double's time forward, e.g. past a session's lifetime. */
  advance(ms: number): void;
}

/** What happened to a request, as seen by the double. */
export type NewtRequestOutcome =
  /** A full answer was sent. */
  | "answered"
  /** The connection was reset by an injected fault. */
  | "reset"
  /** The body was cut by an injected fault. */
  | "truncated"
  /** The client disconnected before the answer could be sent. */
  | "client-gone";

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

/** One request as the double received it. Never holds a password or a session id. */
export interface NewtRequestLogEntry {
  /** 1, 2, 3… in arrival order. */
  seq: number;
  /** Arrival time on the double's clock (ms). */
  at: number;
  method: string;
  /** Route key: `"POST /command"`, `"GET /file"`, `"POST /auth"`… */
  route: string;
  /** Percent-decoded path after the base URL, e.g. `/file/cori/…/x.resp`. */
  path: string;
  query: Readonly<Record<string, string>>;
  /** Form fields of form-encoded bodies; `password` is replaced by `"<redacted>"`. */
  form: Readonly<Record<string, string>>;
  /** Size of the request body in bytes. */
  bodyBytes: number;
  /** A `newt_sessionid` cookie was sent. */
  hasCookie: boolean;
  /** Whether that cookie named a live session. */
  session: "valid" | "invalid" | "none";
  /** The session's user, when valid. */
  username?: string | undefined;
  /** The injected fault applied to this request, if any (`"status 503"`, `"reset after"`…). */
  fault?: string | undefined;
  /** HTTP status sent (also for truncated answers); undefined when nothing was sent. */
  status?: number | undefined;
  /** Filled in once the request is over. */
  outcome?: NewtRequestOutcome | undefined;
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

  const ownsBase = options.baseDir === undefined;
  const base = await realpath(options.baseDir ?? (await mkdtemp(join(tmpdir(), "sremote-newt-double-"))));
  const roots = new Map<string, string>();
  const machineStatus = new Map<string, "up" | "down">();
  for (const m of machines) {
    roots.set(m, join(base, m));
    machineStatus.set(m, "up");
  }
  const home = (username: string, machine: string) =>
    join(roots.get(machine) as string, "global", "homes", username.charAt(0), username);
  for (const m of machines) {
    for (const u of users) await mkdir(home(u.username, m), { recursive: true, mode: 0o700 });
  }

  let offset = 0;
  const clock: NewtDoubleClock = {
    now: () => Date.now() + offset,
    advance(ms) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError("newt-double: clock.advance needs ms >= 0");
      offset += ms;
    },
  };

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
    commandTimeoutMs: options.commandTimeoutMs ?? 600_000,
    commandPath: options.commandPath ?? "/usr/local/bin:/usr/bin:/bin",
    maxBodyBytes: options.maxBodyBytes ?? 256 * 1024 * 1024,
    commandEnv: options.commandEnv,
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
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await st.runner.close();
      server.closeAllConnections();
      await stopped;
      if (ownsBase) await rm(base, { recursive: true, force: true });
    })();
    return closing;
  };

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
