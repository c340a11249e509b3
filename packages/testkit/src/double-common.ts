/**
 * What the HTTP test doubles (newt-double, sfapi-double) share beyond request handling
 * (that half is http-double.ts): the fault kinds they apply alike, the fields of their
 * request logs, the options they both take, their file areas, their clock, and their
 * server's start and stop. One definition each, so the two doubles cannot drift apart
 * where they mean the same thing.
 *
 * Nothing here is exported by the package as such: the doubles publish these shapes under
 * their own names (`NewtDoubleClock`, `SfapiDoubleClock`…).
 */
import { mkdir, mkdtemp, realpath, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FaultCommon } from "./http-double.js";

/** The fault kinds both doubles apply the same way (see `answerWithFault`). */
export const HTTP_FAULT_KINDS: readonly string[] = ["status", "reset", "delay", "truncate"];

/**
 * The faults both doubles take, with `Status` the fields a double adds to a `status`
 * fault (the NEWT double's reply `body`, the SFAPI double's `retryAfterSeconds`).
 */
export type HttpFault<Status extends object> =
  | (FaultCommon & { kind: "status"; status: number; when?: "before" | "after" | undefined } & Status)
  | (FaultCommon & { kind: "reset"; when?: "before" | "after" | undefined })
  | (FaultCommon & { kind: "delay"; ms: number; when?: "before" | "after" | undefined })
  | (FaultCommon & { kind: "truncate"; bytes?: number | undefined });

/** What happened to a request, as seen by a double. */
export type DoubleRequestOutcome =
  /** A full answer was sent. */
  | "answered"
  /** The connection was reset by an injected fault. */
  | "reset"
  /** The body was cut by an injected fault. */
  | "truncated"
  /** The client disconnected before the answer could be sent. */
  | "client-gone";

/** The fields of a request-log entry that both doubles fill in alike. */
export interface DoubleRequestLogEntry {
  /** 1, 2, 3… in arrival order. */
  seq: number;
  /** Arrival time on the double's clock (ms). */
  at: number;
  method: string;
  /** Route key, e.g. `"POST /command"` (NEWT) or `"POST /utilities/command"` (SFAPI). */
  route: string;
  /** Percent-decoded URL path without the query (the NEWT double's: after the base URL). */
  path: string;
  query: Readonly<Record<string, string>>;
  /** Form fields of form-encoded bodies, secrets replaced by `"<redacted>"`. */
  form: Readonly<Record<string, string>>;
  /** Size of the request body in bytes. */
  bodyBytes: number;
  /** The injected fault applied to this request, if any (`"status 503"`, `"reset after"`…). */
  fault?: string | undefined;
  /** HTTP status sent (also for truncated answers); undefined when nothing was sent. */
  status?: number | undefined;
  /** Filled in once the request is over. */
  outcome?: DoubleRequestOutcome | undefined;
}

/** Options both doubles take (each double's options add their own). */
export interface DoubleOptions {
  /**
   * Existing folder to build the file areas (and the SFAPI double's key files) in. Default:
   * a fresh folder under the OS temp folder, removed by `close()`. A folder given here is
   * left in place.
   */
  baseDir?: string | undefined;
  /** Commands running longer are killed with their process group (default 600000, 10 minutes: NEWT 2.0's limit). */
  commandTimeoutMs?: number | undefined;
  /**
   * `PATH` commands start with (default `/usr/local/bin:/usr/bin:/bin`; the login shell of a
   * NEWT `loginenv=true` command may change it).
   */
  commandPath?: string | undefined;
  /** Extra environment variables for every command (e.g. `SREMOTE_PYTHON`). */
  commandEnv?: Readonly<Record<string, string>> | undefined;
  /** Largest request body accepted, in bytes (default 256 MiB); larger → 413. */
  maxBodyBytes?: number | undefined;
  /** TCP port on 127.0.0.1 (default 0: an ephemeral port). */
  port?: number | undefined;
}

/** The settings of {@link DoubleOptions} that both doubles' states hold, defaults filled in. */
export function sharedSettings(options: DoubleOptions): {
  commandTimeoutMs: number;
  commandPath: string;
  commandEnv: Readonly<Record<string, string>> | undefined;
  maxBodyBytes: number;
} {
  return {
    commandTimeoutMs: options.commandTimeoutMs ?? 600_000,
    commandPath: options.commandPath ?? "/usr/local/bin:/usr/bin:/bin",
    commandEnv: options.commandEnv,
    maxBodyBytes: options.maxBodyBytes ?? 256 * 1024 * 1024,
  };
}

/** A double's file areas: one real folder per machine, holding its users' homes. */
export interface FileAreas {
  /** The real folder holding every machine's area. */
  base: string;
  /** `base` when the double made it (and removes it on close); undefined when the caller gave it. */
  ownedDir: string | undefined;
  /** Each machine's area, `<base>/<machine>`. */
  roots: Map<string, string>;
  /** A user's home: `<root>/global/homes/<initial>/<user>`, NERSC's shape, as a real absolute path. */
  home(username: string, machine: string): string;
}

/**
 * Makes the file areas of `machines` in `baseDir` (default: a fresh temp folder named after
 * the double, `name`), with a home (mode 0700) for each user on each machine. The paths
 * are resolved (`realpath`: the temp folder may be behind a link), so that what `/bin/pwd`
 * reports and what file URLs name are the same string.
 */
export async function makeFileAreas(
  name: string,
  baseDir: string | undefined,
  machines: readonly string[],
  usernames: readonly string[],
): Promise<FileAreas> {
  const base = await realpath(baseDir ?? (await mkdtemp(join(tmpdir(), `sremote-${name}-`))));
  const roots = new Map(machines.map((m) => [m, join(base, m)] as const));
  const home = (username: string, machine: string) =>
    join(roots.get(machine) as string, "global", "homes", username.charAt(0), username);
  for (const m of machines) {
    for (const u of usernames) await mkdir(home(u, m), { recursive: true, mode: 0o700 });
  }
  return { base, ownedDir: baseDir === undefined ? base : undefined, roots, home };
}

/** A double's notion of time. Starts at the real time. */
export interface DoubleClock {
  /** Current time of the double, in ms since the epoch. */
  now(): number;
  /** Moves the double's time forward (what expires by time may now have expired). */
  advance(ms: number): void;
}

/** A clock that starts at the real time and only moves forward; `prefix` names the double in errors. */
export function createClock(prefix: string): DoubleClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms) {
      if (!(Number.isFinite(ms) && ms >= 0)) throw new TypeError(`${prefix}: clock.advance needs ms >= 0`);
      offset += ms;
    },
  };
}

/** Starts `server` listening on 127.0.0.1 (`port` 0: an ephemeral one) and returns the port. */
export async function listenOnLoopback(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * A double's idempotent `close()`: stops taking connections, runs `stopWork` (end queued
 * work, kill running processes), cuts the connections still open (idle keep-alive ones
 * would keep the server from closing), waits for the server, then removes `ownedDir` (the
 * temp folder the double made; undefined when the caller gave the folder).
 */
export function closeOnce(
  server: Server,
  stopWork: () => Promise<void>,
  ownedDir: string | undefined,
): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await stopWork();
      server.closeAllConnections();
      await stopped;
      if (ownedDir !== undefined) await rm(ownedDir, { recursive: true, force: true });
    })();
    return closing;
  };
}
