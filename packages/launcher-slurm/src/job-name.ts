import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/** Every job this launcher submits is named `sremote-<host>-<pid>-<random>`. */
export const JOB_NAME_PREFIX = "sremote-";

/** The client host as it appears in job names: letters, digits, `.` and `-`, at most 40. */
export function clientHost(name: string = hostname()): string {
  const clean = name.replace(/[^A-Za-z0-9.-]/g, "-").slice(0, 40);
  return clean === "" ? "host" : clean;
}

/** What a job name says about the client that submitted it. */
export interface JobNameFacts {
  host: string;
  pid: number;
  nonce: string;
}

/** A fresh job name for this process: `sremote-<host>-<pid>-<8 hex>`. */
export function makeJobName(host: string = clientHost(), pid: number = process.pid): string {
  return `${JOB_NAME_PREFIX}${host}-${pid}-${randomBytes(4).toString("hex")}`;
}

/** Reads a job name made by {@link makeJobName}; `undefined` for any other name. */
export function parseJobName(name: string): JobNameFacts | undefined {
  const m = /^sremote-([A-Za-z0-9.-]+)-(\d+)-([0-9a-f]{8})$/.exec(name);
  if (!m) return undefined;
  return { host: m[1] as string, pid: Number(m[2]), nonce: m[3] as string };
}

/** True when `pid` is a live process on this host (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid < 1) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * True when the job named `name` belongs to a client on this host whose process has ended.
 * A job of another host, or whose PID is alive (even if reused by another program), is never
 * taken for dead: it is left to its `--time` limit.
 */
export function isDeadClientJob(
  name: string,
  host: string = clientHost(),
  alive: (pid: number) => boolean = pidAlive,
): boolean {
  const facts = parseJobName(name);
  return facts !== undefined && facts.host === host && facts.pid !== process.pid && !alive(facts.pid);
}
