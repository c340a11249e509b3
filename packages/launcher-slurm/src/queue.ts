import { type ExecResult, SchedulerError } from "@sremote/core";
import { expandHostlist, neverStarts, slurmMessage } from "./commands.js";
import { isDeadClientJob, JOB_NAME_PREFIX } from "./job-name.js";

/** Runs one Slurm command through the connector (with the launcher's environment). */
export type RunSlurm = (argv: string[], signal?: AbortSignal) => Promise<ExecResult>;

/** Job states in which the job holds nodes or waits for them (`COMPLETING`: cancelled, ending). */
export const HOLDING_STATES: ReadonlySet<string> = new Set([
  "PENDING",
  "RUNNING",
  "CONFIGURING",
  "SUSPENDED",
  "RESIZING",
  "REQUEUED",
]);

/** States in which steps can run in the job. */
const USABLE = new Set(["RUNNING", "CONFIGURING"]);

/** `scancel` by id, or every job of this user with `name`; never throws. */
export async function cancelJob(run: RunSlurm, target: { id: string } | { name: string }): Promise<void> {
  const argv = "id" in target ? ["scancel", target.id] : ["scancel", "--me", `--name=${target.name}`];
  await run(argv).catch(() => undefined);
}

/**
 * The job's state as `squeue` reports it: `""` when Slurm no longer knows it (gone, or
 * `Invalid job id`). Rejects when Slurm could not be asked (the connection failed…), so a
 * live job is never taken for gone.
 */
export async function jobState(run: RunSlurm, id: string, signal?: AbortSignal): Promise<string> {
  const r = await run(["squeue", "-h", "-j", id, "-o", "%T"], signal);
  if (r.exitCode === 0) return r.stdout.trim().split("\n")[0]?.trim() ?? "";
  if (/Invalid job id/i.test(r.stderr)) return "";
  throw new SchedulerError("slurm", `squeue -j ${id}: ${slurmMessage(r.stderr, `exit status ${r.exitCode}`)}`, {
    details: { command: "squeue", jobId: id, exitCode: r.exitCode },
  });
}

/** The id of this user's job named `name`, if Slurm knows one. Never throws. */
export async function jobIdByName(run: RunSlurm, name: string, signal?: AbortSignal): Promise<string | undefined> {
  const r = await run(["squeue", "--me", "-h", `--name=${name}`, "-o", "%i"], signal).catch(() => undefined);
  const id = r?.exitCode === 0 ? r.stdout.trim().split("\n")[0]?.trim() : undefined;
  return id && /^\d+$/.test(id) ? id : undefined;
}

/** True when steps can run in a job in `state`. */
export function usable(state: string): boolean {
  return USABLE.has(state);
}

/** The nodes of a granted job, in Slurm's order. */
export async function nodesOfJob(run: RunSlurm, id: string, signal: AbortSignal): Promise<string[]> {
  const r = await run(["squeue", "-h", "-j", id, "-o", "%T|%N"], signal);
  const [state = "", list = ""] = r.stdout.trim().split("|");
  if (r.exitCode !== 0 || !usable(state)) {
    throw new SchedulerError(
      "slurm",
      `job ${id} was granted but is ${state || "gone"}: ${slurmMessage(r.stderr, "")}`,
      {
        details: { jobId: id, state },
      },
    );
  }
  const nodes = expandHostlist(list);
  if (nodes) return nodes;
  const h = await run(["scontrol", "show", "hostnames", list], signal);
  const names = h.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (h.exitCode !== 0 || names.length === 0) {
    throw new SchedulerError("slurm", `cannot read the nodes of job ${id} (${list})`, { details: { jobId: id } });
  }
  return names;
}

/**
 * Cancels this user's `sremote-*` jobs whose client ran on `host` and has died (see
 * {@link isDeadClientJob}); returns their ids. Never throws: a sweep that fails is skipped.
 */
export async function sweepDeadClients(run: RunSlurm, host: string): Promise<string[]> {
  const r = await run(["squeue", "--me", "-h", "-o", "%i|%j"]).catch(() => undefined);
  if (r?.exitCode !== 0) return [];
  const dead = r.stdout
    .split("\n")
    .map((l) => l.trim().split("|"))
    .filter(([id, name]) => id && name?.startsWith(JOB_NAME_PREFIX) && isDeadClientJob(name, host))
    .map(([id]) => id as string);
  if (dead.length > 0) await run(["scancel", ...dead]).catch(() => undefined);
  return dead;
}

/** Waits `ms`, or less when `signal` fires; never rejects. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** What {@link watchPending} reports. */
export interface PendingWatch {
  /** The job is pending for a new reason. */
  onPending(id: string, reason: string): void;
  /** The job is pending for a reason that never clears: the request should be given up. */
  onNeverStarts(id: string, reason: string): void;
}

/**
 * Asks `squeue` about the request named `name` — first after `firstMs`, then at doubling
 * intervals up to `maxMs` — until `stop` fires or the job can never start. Never throws.
 */
export async function watchPending(
  run: RunSlurm,
  name: string,
  timing: { firstMs: number; maxMs: number },
  stop: AbortSignal,
  report: PendingWatch,
): Promise<void> {
  let lastReason = "";
  let wait = timing.firstMs;
  while (!stop.aborted) {
    await pause(wait, stop);
    wait = Math.min(wait * 2, timing.maxMs);
    if (stop.aborted) return;
    const r = await run(["squeue", "--me", "-h", `--name=${name}`, "-o", "%i|%T|%r"], stop).catch(() => undefined);
    const [id = "", state = "", reason = ""] = (r?.stdout.trim().split("\n")[0] ?? "").split("|");
    if (state !== "PENDING" || stop.aborted) continue;
    if (neverStarts(reason)) {
      report.onNeverStarts(id, reason);
      return;
    }
    if (reason !== lastReason) {
      lastReason = reason;
      report.onPending(id, reason);
    }
  }
}
