import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, realpath, rm, stat, unlink, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CommandOutcome, ProcessRunner } from "./commands.js";
import {
  type ArmedFault,
  armFault,
  faultLabel,
  faultMatches,
  type NewtFault,
  type NewtFaultRequest,
  type NewtRoute,
} from "./faults.js";
import { assertRealInside, listPath, mapUrlPath, PathRejected } from "./files.js";
import { multipartBoundary, parseMultipart } from "./multipart.js";
import { ShellWordsError, splitShellWords } from "./shell-words.js";

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

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Session {
  username: string;
  expiresAt: number;
}

interface Job {
  id: string;
  user: string;
  machine: string;
  name: string;
  submitted: Date;
  state: "R" | "C";
  exitCode: number | null;
  kill(): void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MACHINE_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]*$/;
const COOKIE = "newt_sessionid";

function json(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { "content-type": "application/json", ...headers },
    body: Buffer.from(JSON.stringify(value)),
  };
}

function errorReply(status: number, message: string): Reply {
  return json(status, { status: "ERROR", status_code: status, error: message, output: "" });
}

function readCookie(header: string | undefined): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `request body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

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
  const lifetimeMs = (options.sessionLifetimeSeconds ?? 43199) * 1000;
  const unauthenticatedStatus = options.unauthenticatedStatus ?? 403;
  const missingFileStatus = options.missingFileStatus ?? 404;
  const deleteSupport = options.deleteSupport ?? "supported";
  const commandTimeoutMs = options.commandTimeoutMs ?? 600_000;
  const commandPath = options.commandPath ?? "/usr/local/bin:/usr/bin:/bin";
  const maxBodyBytes = options.maxBodyBytes ?? 256 * 1024 * 1024;

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

  const sessions = new Map<string, Session>();
  const requestLog: NewtRequestLogEntry[] = [];
  let faults: ArmedFault[] = [];
  const runner = new ProcessRunner();
  const jobs = new Map<string, Job>();
  let nextJob = 1000;
  let seq = 0;

  function liveSession(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const s = sessions.get(id);
    if (s && s.expiresAt <= clock.now()) {
      sessions.delete(id);
      return undefined;
    }
    return s;
  }

  function newSession(username: string): string {
    const id = randomBytes(16).toString("hex");
    sessions.set(id, { username, expiresAt: clock.now() + lifetimeMs });
    return id;
  }

  function authStatus(id: string | undefined): Reply {
    const s = liveSession(id);
    if (!s || id === undefined) {
      return json(200, { auth: false, username: null, session_lifetime: 0, newt_sessionid: null });
    }
    return json(200, {
      auth: true,
      username: s.username,
      session_lifetime: Math.max(0, Math.floor((s.expiresAt - clock.now()) / 1000)),
      newt_sessionid: id,
    });
  }

  function login(form: Record<string, string>): Reply {
    const user = users.find((u) => u.username === form.username);
    const otp = user?.otp === undefined ? "" : typeof user.otp === "function" ? user.otp() : user.otp;
    if (!user || typeof form.password !== "string" || form.password !== user.password + otp) {
      // Production answered 200 with auth:false for bad credentials, never 401.
      return authStatus(undefined);
    }
    const id = newSession(user.username);
    const reply = authStatus(id);
    reply.headers["set-cookie"] = `${COOKIE}=${id}; Path=/; HttpOnly`;
    return reply;
  }

  function commandEnv(username: string, machine: string): NodeJS.ProcessEnv {
    return {
      HOME: home(username, machine),
      USER: username,
      LOGNAME: username,
      SHELL: "/bin/sh",
      PATH: commandPath,
      LANG: "C.UTF-8",
      ...options.commandEnv,
    };
  }

  function knownMachine(machine: string | undefined): string {
    if (machine === undefined || machine === "" || !roots.has(machine)) {
      throw new HttpError(404, `Unrecognized system: ${machine ?? ""}`);
    }
    return machine;
  }

  async function command(
    entry: NewtRequestLogEntry,
    method: string,
    machineSeg: string | undefined,
    form: Record<string, string>,
    username: string,
  ): Promise<Reply> {
    const machine = knownMachine(machineSeg);
    if (method !== "POST") return errorReply(501, "Not Implemented");
    const executable = form.executable;
    if (executable === undefined || executable === "") return errorReply(400, "Missing executable");
    const loginEnv = form.loginenv === "true";
    let argv: string[];
    if (loginEnv) {
      argv = ["/bin/sh", "-lc", executable];
    } else {
      try {
        argv = splitShellWords(executable);
      } catch (err) {
        if (err instanceof ShellWordsError)
          return json(200, { output: "", error: `cannot parse command: ${err.message}` });
        throw err;
      }
      const first = argv[0];
      if (first === undefined || !first.startsWith("/")) {
        return json(200, {
          output: "",
          error: `NEWT requires all commands are issued using a full executable path: ${first ?? ""}`,
        });
      }
    }
    const run = runner.run(argv, {
      cwd: home(username, machine),
      env: commandEnv(username, machine),
      timeoutMs: commandTimeoutMs,
    });
    const outcome: CommandOutcome = await run.done;
    if (run.started) {
      entry.command = { argv, exitCode: outcome.exitCode, signal: outcome.signal, timedOut: outcome.timedOut };
    }
    if (outcome.spawnError !== undefined) return json(200, { output: "", error: outcome.spawnError });
    const error = outcome.timedOut
      ? `${outcome.stderr}newt-double: command killed after ${commandTimeoutMs} ms\n`
      : outcome.stderr;
    return json(200, { output: outcome.stdout, error });
  }

  async function file(
    method: string,
    machineSeg: string | undefined,
    rawPath: string,
    query: Record<string, string>,
    body: Buffer,
    contentType: string | undefined,
  ): Promise<Reply> {
    if (machineSeg === undefined || machineSeg === "") {
      if (method === "GET") return json(200, machines);
      return errorReply(501, "Not Implemented");
    }
    const machine = knownMachine(machineSeg);
    const root = roots.get(machine) as string;
    const path = mapUrlPath(root, rawPath);
    await assertRealInside(root, path);
    if (method === "GET") {
      if (query.view === "read") {
        let st: Awaited<ReturnType<typeof stat>>;
        try {
          st = await stat(path);
        } catch (err) {
          if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
          return errorReply(missingFileStatus, `No such file: ${path}`);
        }
        if (st.isDirectory()) return errorReply(missingFileStatus, `Is a directory: ${path}`);
        try {
          const data = await readFile(path);
          return { status: 200, headers: { "content-type": "application/octet-stream" }, body: data };
        } catch (err) {
          if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
          return errorReply(500, `Cannot read ${path}: ${errnoCode(err) ?? "error"}`);
        }
      }
      try {
        return json(200, await listPath(path, clock.now()));
      } catch (err) {
        if (errnoCode(err) === "ENOENT") return errorReply(404, `No such file or directory: ${path}`);
        if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
        throw err;
      }
    }
    if (method === "PUT") return writeAt(path, body);
    if (method === "POST") {
      const boundary = multipartBoundary(contentType);
      if (!boundary) return errorReply(400, "POST /file needs a multipart/form-data body");
      let parts: ReturnType<typeof parseMultipart>;
      try {
        parts = parseMultipart(body, boundary);
      } catch (err) {
        return errorReply(400, `bad multipart body: ${(err as Error).message}`);
      }
      const files = parts.filter((p) => p.filename !== undefined);
      if (files.length === 0) return errorReply(400, "no file part in the upload");
      let last: Reply = errorReply(400, "no file part");
      for (const part of files) {
        const name = part.filename as string;
        if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
          return errorReply(400, `bad file name ${JSON.stringify(name)}`);
        }
        last = await writeAt(join(path, name), part.data);
        if (last.status !== 200) return last;
      }
      return last;
    }
    if (method === "DELETE") {
      if (deleteSupport === "unsupported") return errorReply(501, "Not Implemented");
      try {
        await unlink(path);
        return json(200, { status: "OK", output: "", error: "" });
      } catch (err) {
        if (errnoCode(err) === "ENOENT") return errorReply(404, `No such file: ${path}`);
        if (errnoCode(err) === "EACCES") return errorReply(403, `Permission denied: ${path}`);
        return errorReply(500, `Cannot delete ${path}: ${errnoCode(err) ?? "error"}`);
      }
    }
    return errorReply(501, "Not Implemented");
  }

  async function writeAt(path: string, data: Buffer): Promise<Reply> {
    try {
      await writeFile(path, data);
      return json(200, { status: "OK", location: path });
    } catch (err) {
      const code = errnoCode(err);
      if (code === "EACCES") return errorReply(403, `Permission denied: ${path}`);
      if (code === "ENOENT") return errorReply(500, `No such file or directory: ${path}`);
      return errorReply(500, `Cannot write ${path}: ${code ?? "error"}`);
    }
  }

  function jobView(job: Job): Record<string, string> {
    return {
      jobid: job.id,
      status: job.state,
      name: job.name,
      user: job.user,
      queue: "debug",
      timeuse: "0:00",
      nodes: "1",
      procs: "1",
      memory: "",
      submittime: job.submitted.toISOString(),
      exitcode: job.exitCode === null ? "" : String(job.exitCode),
    };
  }

  async function queue(
    method: string,
    segs: string[],
    form: Record<string, string>,
    query: Record<string, string>,
    username: string,
  ): Promise<Reply> {
    if (segs[0] === "completedjobs" && method === "GET") {
      const limit = Number(query.limit ?? "100");
      const done = [...jobs.values()].filter((j) => j.state === "C" && (!query.username || j.user === query.username));
      return json(200, done.slice(-limit).map(jobView));
    }
    const machine = knownMachine(segs[0]);
    const jobId = segs[1];
    if (method === "POST" && jobId === undefined) {
      const argv = form.jobfile
        ? ["/bin/sh", form.jobfile]
        : form.jobscript
          ? ["/bin/sh", "-c", form.jobscript]
          : undefined;
      if (!argv) return errorReply(400, "jobfile or jobscript is required");
      const id = String(nextJob++);
      const run = runner.run(argv, {
        cwd: home(username, machine),
        env: { ...commandEnv(username, machine), SLURM_JOB_ID: id },
        timeoutMs: commandTimeoutMs,
      });
      if (!run.started) return json(200, { status: "ERROR", error: "cannot start the job", jobid: "" });
      const job: Job = {
        id,
        user: username,
        machine,
        name: form.jobfile ? (form.jobfile.split("/").pop() ?? "job") : "script",
        submitted: new Date(clock.now()),
        state: "R",
        exitCode: null,
        kill: run.kill,
      };
      jobs.set(id, job);
      void run.done.then((o) => {
        job.state = "C";
        job.exitCode = o.exitCode;
      });
      return json(200, { status: "OK", error: "", jobid: id });
    }
    if (method === "GET" && jobId === undefined) {
      const mine = [...jobs.values()].filter((j) => j.machine === machine && (!query.user || j.user === query.user));
      return json(200, mine.map(jobView));
    }
    const job = jobId === undefined ? undefined : jobs.get(jobId);
    if (!job || job.machine !== machine)
      return json(404, { status: "ERROR", output: "", error: `Unknown job: ${jobId}` });
    if (method === "GET") return json(200, jobView(job));
    if (method === "DELETE") {
      if (job.state === "C") return json(200, { status: "ERROR", output: "", error: "job already completed" });
      job.kill();
      return json(200, { status: "OK", output: "", error: "" });
    }
    return errorReply(501, "Not Implemented");
  }

  async function dispatch(
    entry: NewtRequestLogEntry,
    method: string,
    rest: string,
    query: Record<string, string>,
    form: Record<string, string>,
    body: Buffer,
    req: IncomingMessage,
    sessionId: string | undefined,
  ): Promise<Reply> {
    const segments = rest.split("/").slice(1);
    const resource = segments[0] ?? "";
    const tail = segments.slice(1).filter((s) => s !== "");
    switch (resource) {
      case "auth":
      case "login":
        if (method === "POST") return login(form);
        if (method === "GET") return authStatus(sessionId);
        if (method === "DELETE" && resource === "auth") {
          if (sessionId !== undefined) sessions.delete(sessionId);
          return authStatus(undefined);
        }
        return errorReply(501, "Not Implemented");
      case "logout":
        if (method !== "GET" && method !== "POST") return errorReply(501, "Not Implemented");
        if (sessionId !== undefined) sessions.delete(sessionId);
        return authStatus(undefined);
      case "status": {
        if (method !== "GET") return errorReply(501, "Not Implemented");
        const sys = tail[0];
        if (sys === undefined)
          return json(
            200,
            machines.map((m) => ({ system: m, status: machineStatus.get(m) })),
          );
        if (sys === "motd") return json(200, { motd: "NEWT double: no scheduled maintenance." });
        return json(200, { system: knownMachine(sys), status: machineStatus.get(sys) });
      }
      case "file":
      case "command":
      case "queue": {
        const session = liveSession(sessionId);
        if (!session) {
          return json(unauthenticatedStatus, {
            status: "ERROR",
            status_code: unauthenticatedStatus,
            error: "You must be logged in to access this.",
            output: JSON.stringify({ login_url: `${prefix}/auth/` }),
          });
        }
        if (resource === "command") return command(entry, method, tail[0], form, session.username);
        if (resource === "queue") return queue(method, tail, form, query, session.username);
        const machineSeg = segments[1];
        const rawPath = segments.slice(2).join("/");
        return file(method, machineSeg, rawPath, query, body, req.headers["content-type"]);
      }
      default:
        return errorReply(404, `Unknown resource: ${resource}`);
    }
  }

  function redact(form: Record<string, string>): Record<string, string> {
    const out = { ...form };
    if ("password" in out) out.password = "<redacted>";
    return out;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let gone = false;
    res.once("close", () => {
      if (!res.writableEnded) gone = true;
    });
    const method = (req.method ?? "GET").toUpperCase();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    // The raw path is used on purpose: WHATWG URL parsing would resolve `..` before the
    // double could refuse it.
    const rawPath = q < 0 ? url : url.slice(0, q);
    const query = Object.fromEntries(new URLSearchParams(q < 0 ? "" : url.slice(q + 1)));
    const rest = rawPath === prefix ? "" : rawPath.startsWith(`${prefix}/`) ? rawPath.slice(prefix.length) : undefined;
    const resource = rest === undefined ? "" : (rest.split("/")[1] ?? "");
    let decodedPath = rest ?? rawPath;
    try {
      decodedPath = decodeURIComponent(decodedPath);
    } catch {
      // keep the raw form in the log
    }
    const sessionId = readCookie(req.headers.cookie);
    const session = liveSession(sessionId);
    const entry: NewtRequestLogEntry = {
      seq: ++seq,
      at: clock.now(),
      method,
      route: `${method} /${resource}`,
      path: decodedPath,
      query,
      form: {},
      bodyBytes: 0,
      hasCookie: sessionId !== undefined,
      session: sessionId === undefined ? "none" : session ? "valid" : "invalid",
      username: session?.username,
    };
    requestLog.push(entry);

    const send = (reply: Reply) => {
      entry.status = reply.status;
      if (gone) {
        entry.outcome = "client-gone";
        return;
      }
      res.writeHead(reply.status, { ...reply.headers, "content-length": String(reply.body.length) });
      res.end(reply.body);
      entry.outcome = "answered";
    };
    const reset = () => {
      entry.outcome = "reset";
      const socket = req.socket as Socket & { resetAndDestroy?: () => void };
      if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
      else socket.destroy();
    };

    let body: Buffer;
    try {
      body = await readBody(req, maxBodyBytes);
    } catch (err) {
      if (err instanceof HttpError) send(errorReply(err.status, err.message));
      else entry.outcome = "client-gone";
      return;
    }
    entry.bodyBytes = body.length;
    const contentType = req.headers["content-type"] ?? "";
    const form = /application\/x-www-form-urlencoded/i.test(contentType)
      ? Object.fromEntries(new URLSearchParams(body.toString("utf8")))
      : {};
    entry.form = redact(form);

    if (rest === undefined) {
      send(errorReply(404, `Not under ${prefix}`));
      return;
    }

    const info: NewtFaultRequest = { method, route: entry.route, path: decodedPath, query, form: entry.form };
    const armed = faults.find((f) => faultMatches(f, info));
    const fault = armed?.fault;
    if (armed) {
      armed.remaining--;
      entry.fault = faultLabel(armed.fault);
    }
    if (fault?.kind === "status") {
      send({
        status: fault.status,
        headers: { "content-type": "application/json" },
        body: Buffer.from(
          fault.body ??
            JSON.stringify({ status: "ERROR", status_code: fault.status, error: "injected fault", output: "" }),
        ),
      });
      return;
    }
    if (fault?.kind === "reset" && (fault.when ?? "before") === "before") {
      reset();
      return;
    }
    if (fault?.kind === "delay" && (fault.when ?? "before") === "before") {
      await sleep(fault.ms);
      if (gone) {
        entry.outcome = "client-gone";
        return;
      }
    }

    let reply: Reply;
    try {
      reply = await dispatch(entry, method, rest, query, form, body, req, sessionId);
    } catch (err) {
      if (err instanceof HttpError) reply = errorReply(err.status, err.message);
      else if (err instanceof PathRejected) reply = errorReply(err.status, err.message);
      else reply = errorReply(500, `newt-double internal error: ${(err as Error).message}`);
    }

    if (fault?.kind === "reset") {
      reset();
      return;
    }
    if (fault?.kind === "delay") await sleep(fault.ms);
    if (fault?.kind === "truncate" && !gone) {
      const keep = Math.max(0, Math.min(reply.body.length - 1, fault.bytes ?? Math.floor(reply.body.length / 2)));
      entry.status = reply.status;
      entry.outcome = "truncated";
      res.writeHead(reply.status, { ...reply.headers, "content-length": String(reply.body.length) });
      res.write(reply.body.subarray(0, keep), () => req.socket.destroy());
      return;
    }
    send(reply);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
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
      await runner.close();
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
    requestLog,
    inject(route, fault) {
      faults.push(armFault(route, fault));
    },
    clearFaults() {
      faults = [];
    },
    expireSessions() {
      sessions.clear();
    },
    issueSession(username) {
      if (!users.some((u) => u.username === username)) {
        throw new TypeError(`newt-double: unknown user ${JSON.stringify(username)}`);
      }
      return newSession(username);
    },
    setMachineStatus(machine, status) {
      if (!roots.has(machine)) throw new TypeError(`newt-double: unknown machine ${JSON.stringify(machine)}`);
      machineStatus.set(machine, status);
    },
    clock,
    get runningCommands() {
      return runner.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
