import { type SlurmOptions, slurmTime } from "./options.js";

/**
 * `salloc --no-shell --job-name=NAME --time=T [--nodes=N] [--partition…] [extra…]`: one
 * allocation that outlives the command (it returns once granted) and that the agents' steps
 * join with `srun --jobid`.
 */
export function sallocArgv(options: SlurmOptions, jobName: string): string[] {
  const argv = ["salloc", "--no-shell", `--job-name=${jobName}`, `--time=${slurmTime(options.time)}`];
  argv.push(`--nodes=${options.nodes ?? 1}`);
  if (options.partition !== undefined) argv.push(`--partition=${options.partition}`);
  if (options.account !== undefined) argv.push(`--account=${options.account}`);
  if (options.qos !== undefined) argv.push(`--qos=${options.qos}`);
  if (options.constraint !== undefined) argv.push(`--constraint=${options.constraint}`);
  if (options.cpusPerTask !== undefined) argv.push(`--cpus-per-task=${options.cpusPerTask}`);
  argv.push(...(options.extra ?? []));
  return argv;
}

/**
 * `srun --jobid ID -N1 -n1 -u --overlap --nodelist NODE [--cpus-per-task C] [stepExtra…] -- argv…`:
 * one step of the allocation on one node. `--overlap` lets steps share the job's CPUs (the
 * sessions and the file carrier run side by side); `-u` passes the agent's stdout through
 * unbuffered; `--` ends srun's options, so the agent's argv is never read as srun's.
 */
export function srunArgv(
  options: SlurmOptions,
  jobId: string,
  node: string | undefined,
  argv: readonly string[],
): string[] {
  const out = ["srun", `--jobid=${jobId}`, "-N1", "-n1", "-u", "--overlap"];
  if (node !== undefined) out.push(`--nodelist=${node}`);
  if (options.cpusPerTask !== undefined) out.push(`--cpus-per-task=${options.cpusPerTask}`);
  out.push(...(options.stepExtra ?? []), "--", ...argv);
  return out;
}

/** The job id in salloc's `Granted job allocation 123` (or `Pending job allocation 123`). */
export function parseJobId(stderr: string): string | undefined {
  return (
    /Granted job allocation (\d+)/.exec(stderr)?.[1] ??
    /Pending job allocation (\d+)/.exec(stderr)?.[1] ??
    /job (\d+) queued/.exec(stderr)?.[1]
  );
}

/**
 * Slurm's own words from a failed command's stderr: its `error:` lines (without the
 * `salloc: error: ` prefix), else its last line; `fallback` when it printed nothing.
 */
export function slurmMessage(stderr: string, fallback: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const errors = lines
    .map((l) => /^\S+: (?:error|fatal): (.*)$/.exec(l)?.[1])
    .filter(
      (l): l is string =>
        l !== undefined && !/^(?:Couldn't find the specified plugin|cannot create \w+ context)/.test(l),
    );
  const picked = errors.length > 0 ? [...new Set(errors)] : lines.slice(-1);
  return picked.join("; ") || fallback;
}

/**
 * Pending reasons that never clear on their own (the request exceeds a per-job limit or names
 * something invalid): waiting for them would wait until the caller's timeout.
 */
const NEVER_STARTS =
  /^(?:PartitionNodeLimit|PartitionTimeLimit|PartitionConfig|BadConstraints|InvalidAccount|InvalidQOS|AccountNotAllowed|QOSNotAllowed|\w*Max\w*PerJob\w*|DependencyNeverSatisfied)$/;

/** True when a pending job with this `squeue %r` reason can never start. */
export function neverStarts(reason: string): boolean {
  return NEVER_STARTS.test(reason.trim());
}

/**
 * Expands a Slurm host list (`c[1-3,5],gpu[01-02]x`) to names; `undefined` when the text
 * is not one this parser knows (the caller then asks `scontrol show hostnames`).
 */
export function expandHostlist(list: string): string[] | undefined {
  const text = list.trim();
  if (text === "" || text === "(null)") return undefined;
  // Split on commas outside brackets.
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "[") depth++;
    else if (ch === "]") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
    if (depth < 0 || depth > 1) return undefined;
  }
  if (depth !== 0) return undefined;
  parts.push(text.slice(start));
  const out: string[] = [];
  for (const part of parts) {
    const names = expandOne(part);
    if (!names) return undefined;
    out.push(...names);
  }
  return out.length > 0 && out.length <= 100_000 ? out : undefined;
}

function expandOne(part: string): string[] | undefined {
  if (part === "") return undefined;
  const open = part.indexOf("[");
  if (open < 0) return /^[A-Za-z0-9_.-]+$/.test(part) ? [part] : undefined;
  const close = part.indexOf("]", open);
  const prefix = part.slice(0, open);
  const body = part.slice(open + 1, close);
  // After a range only another `prefix[range]` may follow, as in Slurm (`a[1-2]b` is invalid).
  const tail = part.slice(close + 1);
  if (tail !== "" && !tail.includes("[")) return undefined;
  const suffixes = tail === "" ? [""] : expandOne(tail);
  if (!suffixes || !/^[A-Za-z0-9_.-]*$/.test(prefix)) return undefined;
  const values: string[] = [];
  for (const range of body.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range);
    if (!m) return undefined;
    const from = m[1] as string;
    const to = m[2] ?? from;
    const width = from.length;
    const a = Number(from);
    const b = Number(to);
    if (b < a || b - a > 100_000) return undefined;
    for (let n = a; n <= b; n++) values.push(String(n).padStart(width, "0"));
  }
  return values.flatMap((v) => suffixes.map((s) => `${prefix}${v}${s}`));
}

/**
 * What Slurm said when it ended an agent's step, read from the step's stderr: slurmstepd's
 * `*** STEP 12.0 ON c1 CANCELLED AT … [DUE TO TIME LIMIT] ***` (cancelled, time limit, node
 * failure, preemption) or srun's `Unable to confirm allocation for job 12: …` / `Slurm job 12
 * has expired` (the job was gone before the step started). `undefined` when it says neither.
 */
export function stepEnd(
  stderr: string,
):
  | { jobId: string; cause: "cancelled" | "time limit" | "node failure" | "preempted" | "gone"; message: string }
  | undefined {
  const star = /\*\*\* (?:JOB|STEP) (\d+)(?:\.\S+)? ON \S+ CANCELLED AT \S+(?: DUE TO ([A-Z ]+?))? \*\*\*/.exec(stderr);
  if (star) {
    const due = star[2] ?? "";
    const cause = /TIME LIMIT/.test(due)
      ? "time limit"
      : /NODE FAIL/.test(due)
        ? "node failure"
        : /PREEMPT/.test(due)
          ? "preempted"
          : "cancelled";
    return { jobId: star[1] as string, cause, message: star[0].replace(/^\*\*\* | \*\*\*$/g, "") };
  }
  const gone =
    /Unable to confirm allocation for job (\d+): [^\n]*/.exec(stderr) ??
    /Slurm job (\d+) has expired[^\n]*/.exec(stderr);
  if (gone) return { jobId: gone[1] as string, cause: "gone", message: gone[0].trim() };
  return undefined;
}
