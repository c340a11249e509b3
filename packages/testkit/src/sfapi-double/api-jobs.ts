/**
 * `/compute/jobs/{machine}`: Slurm batch jobs as real background processes. A submission
 * (and a cancellation) is a task whose result carries the `jobid`; the job is `PENDING` for
 * `jobPendingMs`, `RUNNING` while its process runs (output in `slurm-<id>.out` in the home),
 * then `COMPLETED`, `FAILED`, `TIMEOUT` or `CANCELLED` (sacct: `CANCELLED by <uid>`).
 */
import { createWriteStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { commandEnv, finishTask, newTask, signalExit } from "./api-tasks.js";
import {
  type Caller,
  type JobRecord,
  json,
  knownMachine,
  type Reply,
  type SfapiState,
  userId,
  validationError,
} from "./state.js";
import type { SfapiRequestLogEntry } from "./types.js";

const ACTIVE = new Set(["PENDING", "RUNNING"]);

function clockTime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = String(Math.floor(s / 3600)).padStart(2, "0");
  return `${hh}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

function row(st: SfapiState, job: JobRecord, sacct: boolean): Record<string, string> {
  const now = st.clock.now();
  const elapsed = clockTime(job.startedAt === undefined ? 0 : (job.endedAt ?? now) - job.startedAt);
  const iso = (t: number | undefined) => (t === undefined ? "Unknown" : new Date(t).toISOString().slice(0, 19));
  if (sacct) {
    return {
      jobid: job.id,
      jobname: job.name,
      user: job.username,
      account: "m0000",
      partition: "regular",
      state: job.state === "CANCELLED" ? `CANCELLED by ${userId(st, job.username)}` : job.state,
      exitcode: `${job.exitCode ?? 0}:${job.signal ?? 0}`,
      elapsed,
      submit: iso(job.submittedAt),
      start: iso(job.startedAt),
      end: iso(job.endedAt),
    };
  }
  return {
    jobid: job.id,
    name: job.name,
    user: job.username,
    account: "m0000",
    partition: "regular",
    state: job.state,
    st: job.state === "PENDING" ? "PD" : job.state === "RUNNING" ? "R" : "CG",
    time: elapsed,
    nodes: "1",
    "nodelist(reason)": job.state === "PENDING" ? "(Priority)" : "nid000001",
  };
}

function jobName(script: string, fallback: string): string {
  const m = /^#SBATCH\s+(?:--job-name[=\s]|-J\s*)(\S+)/m.exec(script);
  return m?.[1] ?? fallback;
}

function startJob(st: SfapiState, job: JobRecord): void {
  job.timer = undefined;
  if (job.state !== "PENDING" || st.closed) return;
  const home = st.home(job.username, job.machine);
  const out = createWriteStream(join(home, `slurm-${job.id}.out`));
  const run = st.runner.run(job.argv, {
    cwd: home,
    env: { ...commandEnv(st, job.username, job.machine), SLURM_JOB_ID: job.id, SLURM_JOB_NAME: job.name },
    timeoutMs: st.commandTimeoutMs,
    onOutput: (_stream, chunk) => out.write(chunk),
  });
  job.state = "RUNNING";
  job.startedAt = st.clock.now();
  job.pid = run.pid;
  job.kill = run.kill;
  job.done = run.done.then((outcome) => {
    out.end();
    job.kill = undefined;
    job.endedAt = st.clock.now();
    job.exitCode = outcome.exitCode ?? (outcome.spawnError === undefined ? null : 127);
    job.signal = outcome.signal === null ? null : (signalExit(outcome.signal) ?? 128) - 128;
    if (job.state !== "RUNNING") return;
    job.state = outcome.timedOut ? "TIMEOUT" : job.exitCode === 0 ? "COMPLETED" : "FAILED";
  });
}

/** Runs `body` as a task after the task delay; its return value is the task's result document. */
function asTask(st: SfapiState, task: ReturnType<typeof newTask>, body: () => Promise<Record<string, unknown>>): void {
  const go = () => {
    task.timer = undefined;
    if (task.view.status !== "new") return;
    task.view.phase = "running";
    task.view.startedAt = st.clock.now();
    void body().then((result) => finishTask(task, st, "completed", JSON.stringify(result)));
  };
  if (st.taskDelayMs > 0) task.timer = setTimeout(go, st.taskDelayMs);
  else go();
}

async function submit(
  st: SfapiState,
  caller: Caller,
  machine: string,
  form: URLSearchParams,
): Promise<Record<string, unknown>> {
  const job = form.get("job") as string;
  const isPath = form.get("isPath") === "true";
  let script = job;
  let argv: string[];
  if (isPath) {
    try {
      if (!(await stat(job)).isFile()) throw new Error("not a file");
      script = await readFile(job, "utf8");
    } catch {
      return { status: "error", jobid: null, error: `sbatch: error: Unable to open file ${job}` };
    }
    argv = ["/bin/bash", job, ...form.getAll("args")];
  } else {
    argv = ["/bin/bash", "-c", job, "sbatch"];
  }
  const id = String(st.nextJob++);
  const record: JobRecord = {
    id,
    machine,
    username: caller.username,
    name: jobName(script, isPath ? basename(job) : "sbatch"),
    argv,
    state: "PENDING",
    exitCode: null,
    signal: null,
    submittedAt: st.clock.now(),
  };
  st.jobs.set(id, record);
  if (st.jobPendingMs > 0) record.timer = setTimeout(() => startJob(st, record), st.jobPendingMs);
  else startJob(st, record);
  return { status: "ok", jobid: id, error: null };
}

async function cancel(st: SfapiState, caller: Caller, machine: string, id: string): Promise<Record<string, unknown>> {
  const job = st.jobs.get(id);
  if (!job || job.machine !== machine || job.username !== caller.username) {
    return { status: "error", error: `scancel: error: Kill job error on job id ${id}: Invalid job id specified` };
  }
  if (!ACTIVE.has(job.state)) {
    return {
      status: "error",
      error: `scancel: error: Kill job error on job id ${id}: Job/step already completing or completed`,
    };
  }
  if (job.timer) clearTimeout(job.timer);
  job.timer = undefined;
  job.state = "CANCELLED";
  job.endedAt = st.clock.now();
  job.kill?.();
  await job.done;
  return { status: "ok", error: null };
}

/** Every `/compute/jobs` request; the red-client check has been made by the caller. */
export async function jobsRoute(
  st: SfapiState,
  entry: SfapiRequestLogEntry,
  method: string,
  caller: Caller,
  tail: readonly string[],
  search: URLSearchParams,
  body: Buffer,
): Promise<Reply> {
  const machine = knownMachine(st, tail[0]);
  const jobId = tail[1];
  if (method === "POST" && jobId === undefined) {
    const form = new URLSearchParams(body.toString("utf8"));
    const job = form.get("job");
    if (job === null || job === "") return validationError(["body", "job"], "field required");
    const shown = form.get("isPath") === "true" ? job : "<script text>";
    const task = newTask(st, entry, caller, machine, "job-submit", `sbatch ${shown}`, []);
    asTask(st, task, () => submit(st, caller, machine, form));
    return json(200, { task_id: task.view.id, status: "OK", error: null });
  }
  if (method === "DELETE" && jobId !== undefined) {
    const task = newTask(st, entry, caller, machine, "job-cancel", `scancel ${jobId}`, []);
    asTask(st, task, () => cancel(st, caller, machine, jobId));
    return json(200, { task_id: task.view.id, status: "OK", error: null });
  }
  if (method !== "GET") return json(405, { detail: "Method Not Allowed" });
  const sacct = search.get("sacct") === "true";
  const cached = search.get("cached") !== "false";
  const filters = new Map<string, string[]>();
  for (const kw of search.getAll("kwargs")) {
    const eq = kw.indexOf("=");
    if (eq > 0) filters.set(kw.slice(0, eq), kw.slice(eq + 1).split(","));
  }
  if (jobId !== undefined) filters.set("jobid", [jobId]);
  const now = st.clock.now();
  const rows = [...st.jobs.values()]
    .filter((j) => j.machine === machine)
    // The queue cache lags: a just-submitted job may be missing unless cached=false.
    .filter((j) => !cached || j.submittedAt + st.jobCacheMs <= now)
    .filter((j) => sacct || ACTIVE.has(j.state))
    .filter((j) => {
      const wanted = (key: string, value: string) =>
        !filters.has(key) || (filters.get(key) as string[]).includes(value);
      return wanted("jobid", j.id) && wanted("user", j.username) && wanted("name", j.name) && wanted("state", j.state);
    })
    .map((j) => row(st, j, sacct));
  if (jobId !== undefined && rows.length === 0) {
    return json(200, { status: "ERROR", output: [], error: `Invalid job id specified: ${jobId}` });
  }
  return json(200, { status: "OK", output: rows, error: null });
}

/** Stops pending jobs (on close); running ones are ended by the runner. */
export function dropPendingJobs(st: SfapiState): void {
  for (const job of st.jobs.values()) {
    if (job.timer) clearTimeout(job.timer);
    job.timer = undefined;
    if (job.state === "PENDING") job.state = "CANCELLED";
  }
}
