import { type LauncherEvent, UsageError } from "@sremote/core";

/** Options of {@link slurm}: what to ask Slurm for, and how to reach it. */
export interface SlurmOptions {
  /** `--partition` (`debug`, `regular`…); default: the cluster's default partition. */
  partition?: string | undefined;
  /** `--account` to charge. */
  account?: string | undefined;
  /** `--qos` (`debug`, `interactive`…). */
  qos?: string | undefined;
  /**
   * `--time`: minutes (a number) or a Slurm time string (`"30"`, `"1:30:00"`, `"2-00:00"`).
   * Always set — default 30 minutes — so that the job of a client that was killed expires.
   */
  time?: number | string | undefined;
  /** `--nodes`: compute nodes in the allocation (default 1). Session slots go round-robin over them. */
  nodes?: number | undefined;
  /** `--cpus-per-task`, for the allocation and for every agent's step (default: Slurm's, 1). */
  cpusPerTask?: number | undefined;
  /** `--constraint` (`cpu`, `gpu&hbm80g`…). */
  constraint?: string | undefined;
  /** More `salloc` options, verbatim, one per element (`["--mem=8G", "--gres=gpu:1"]`). */
  extra?: readonly string[] | undefined;
  /** More `srun` options for every agent step, one per element (`["--mem=4G"]`). */
  stepExtra?: readonly string[] | undefined;
  /**
   * Environment of every Slurm command (`salloc`, `srun`, `squeue`, `scancel`) and of the
   * agents, e.g. `{ SLURM_CONF: "/etc/slurm-test/slurm.conf" }`.
   */
  env?: Readonly<Record<string, string>> | undefined;
  /**
   * Longest wait between two `squeue` looks at a pending allocation (default 30 000 ms): the
   * first look is after 300 ms, then the wait doubles up to this.
   */
  pollIntervalMs?: number | undefined;
  /**
   * End this user's `sremote-*` jobs left by dead clients on this host before allocating
   * (default true). See the README for how a client is known to be dead.
   */
  sweep?: boolean | undefined;
  /** Receives the launcher's events (pending, ready, released, info). */
  onEvent?: ((event: LauncherEvent) => void) | undefined;
}

/** The default `--time`: 30 minutes. */
export const DEFAULT_SLURM_TIME = "30";

// No leading "-": a value never reads as an option.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;
const NAME_LIST = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*(,[A-Za-z0-9_][A-Za-z0-9_.+-]*)*$/;
const CONSTRAINT = /^[A-Za-z0-9_[(!][A-Za-z0-9_.&|[\]*:()!,-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// minutes | m:s | h:m:s | d-h | d-h:m | d-h:m:s  (Slurm's --time forms)
const TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$/;

/** `time` as Slurm's `--time` string; throws {@link UsageError} for a bad or unlimited value. */
export function slurmTime(time: number | string | undefined): string {
  if (time === undefined) return DEFAULT_SLURM_TIME;
  if (typeof time === "number") {
    if (!Number.isInteger(time) || time < 1)
      throw new UsageError(`slurm: time must be a positive whole number of minutes, got ${time}`);
    return String(time);
  }
  if (!TIME.test(time) || !/[1-9]/.test(time)) {
    throw new UsageError(
      `slurm: time ${JSON.stringify(time)} is not a Slurm time limit (minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, not zero; unlimited is refused so a lost job expires)`,
    );
  }
  return time;
}

function positiveInt(key: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new UsageError(`slurm: ${key} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkName(key: string, value: unknown, pattern: RegExp): void {
  if (typeof value !== "string" || !pattern.test(value)) {
    throw new UsageError(`slurm: bad ${key} ${JSON.stringify(value)}`);
  }
}

/** Checks every option; throws {@link UsageError} (`INVALID_ARGUMENT`) for the first bad one. */
export function validateSlurmOptions(o: SlurmOptions): void {
  if (o.partition !== undefined) checkName("partition", o.partition, NAME_LIST);
  if (o.account !== undefined) checkName("account", o.account, NAME);
  if (o.qos !== undefined) checkName("qos", o.qos, NAME);
  if (o.constraint !== undefined) checkName("constraint", o.constraint, CONSTRAINT);
  slurmTime(o.time);
  if (o.nodes !== undefined) positiveInt("nodes", o.nodes);
  if (o.cpusPerTask !== undefined) positiveInt("cpusPerTask", o.cpusPerTask);
  if (o.pollIntervalMs !== undefined && !(Number.isFinite(o.pollIntervalMs) && o.pollIntervalMs >= 10)) {
    throw new UsageError(`slurm: pollIntervalMs must be at least 10, got ${o.pollIntervalMs}`);
  }
  for (const [key, list] of [
    ["extra", o.extra],
    ["stepExtra", o.stepExtra],
  ] as const) {
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((a) => typeof a !== "string" || !a.startsWith("-") || /[\0\n]/.test(a))) {
      throw new UsageError(`slurm: ${key} must be options, each starting with "-" (e.g. ["--mem=8G"])`);
    }
  }
  for (const [name, value] of Object.entries(o.env ?? {})) {
    if (!ENV_NAME.test(name) || typeof value !== "string" || value.includes("\0")) {
      throw new UsageError(`slurm: bad environment variable ${JSON.stringify(name)}`);
    }
  }
}

/** The keys {@link parseSlurmSpec} accepts, and the option each sets. */
export const SLURM_SPEC_KEYS = [
  "partition",
  "account",
  "qos",
  "time",
  "nodes",
  "cpus-per-task",
  "constraint",
  "conf",
] as const;

/**
 * Parses the command line's `--slurm` value, `key=value` pairs separated by commas:
 * `"partition=debug,time=5,nodes=2"`. Keys: `partition`, `account`, `qos`, `time` (Slurm
 * time string), `nodes`, `cpus-per-task` (or `cpusPerTask`), `constraint` and `conf` (the
 * remote `SLURM_CONF`). An empty string means all defaults. Strict: an unknown or repeated
 * key, a pair without `=`, an empty or malformed value throws {@link UsageError}.
 */
export function parseSlurmSpec(spec: string): SlurmOptions {
  const out: SlurmOptions = {};
  const seen = new Set<string>();
  const text = spec.trim();
  if (text === "") return out;
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    if (eq < 0) throw new UsageError(`--slurm: expected key=value, got ${JSON.stringify(pair)}`);
    let key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (key === "cpusPerTask") key = "cpus-per-task";
    if (!(SLURM_SPEC_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`--slurm: unknown key ${JSON.stringify(key)} (known: ${SLURM_SPEC_KEYS.join(", ")})`);
    }
    if (seen.has(key)) throw new UsageError(`--slurm: ${key} given twice`);
    seen.add(key);
    if (value === "") throw new UsageError(`--slurm: ${key} needs a value`);
    switch (key) {
      case "nodes":
      case "cpus-per-task": {
        if (!/^\d+$/.test(value) || Number(value) < 1) {
          throw new UsageError(`--slurm: ${key} must be a positive whole number, got ${JSON.stringify(value)}`);
        }
        if (key === "nodes") out.nodes = Number(value);
        else out.cpusPerTask = Number(value);
        break;
      }
      case "time":
        out.time = slurmTime(value);
        break;
      case "conf":
        if (!value.startsWith("/"))
          throw new UsageError(`--slurm: conf must be an absolute path, got ${JSON.stringify(value)}`);
        out.env = { SLURM_CONF: value };
        break;
      default:
        (out as Record<string, string>)[key] = value;
    }
  }
  validateSlurmOptions(out);
  return out;
}
