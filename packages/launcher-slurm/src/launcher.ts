import {
  AbortError,
  type AgentCommand,
  type Connector,
  deadline,
  type ExecResult,
  type LaunchContext,
  type Launcher,
  type LauncherEvent,
  type LauncherPrepareOptions,
  raceSignal,
  SchedulerError,
} from "@sremote/core";
import { parseJobId, sallocArgv, slurmMessage, srunArgv, stepEnd } from "./commands.js";
import { clientHost, makeJobName } from "./job-name.js";
import { type SlurmOptions, validateSlurmOptions } from "./options.js";
import {
  cancelJob,
  HOLDING_STATES,
  jobIdByName,
  jobState,
  nodesOfJob,
  type RunSlurm,
  sweepDeadClients,
  usable,
  watchPending,
} from "./queue.js";

/** An allocation the launcher holds. */
export interface SlurmJob {
  /** Slurm's job id. */
  id: string;
  /** The job's name, `sremote-<host>-<pid>-<random>`. */
  name: string;
  /** Its nodes, in Slurm's order; slot `s` runs on `nodes[s % nodes.length]`. */
  nodes: string[];
}

/** The Slurm launcher: see {@link slurm}. */
export interface SlurmLauncher extends Launcher {
  readonly name: "slurm";
  /** The allocation held now, if any. */
  readonly job: SlurmJob | undefined;
  /** The options it was made with (validated). */
  readonly options: Readonly<SlurmOptions>;
  prepare(connector: Connector, options?: LauncherPrepareOptions): Promise<void>;
  /** Also reports `released` to `options.onEvent` (the client passes its own receiver). */
  release(connector: Connector, options?: LauncherPrepareOptions): Promise<void>;
  invalidate(): void;
  /**
   * The `SCHEDULER` error for an agent that Slurm ended — its step's stderr names a
   * cancellation, the time limit, a node failure or a job already gone (see {@link stepEnd}) —
   * or `undefined` when the text does not say so. For a client that wants to report such a
   * death as `SCHEDULER` rather than a lost connection.
   */
  explainExit(stderr: string): SchedulerError | undefined;
}

/** Bound on the Slurm commands the launcher runs besides `salloc` (squeue, scancel…). */
const COMMAND_TIMEOUT_MS = 30_000;
const FIRST_LOOK_MS = 300;
/** Longest wait between two `squeue` looks at a pending request (sites ask not to poll hard). */
const DEFAULT_POLL_MAX_MS = 30_000;
/** How long `release` waits for Slurm to confirm the cancellation. */
const RELEASE_CONFIRM_MS = 10_000;

interface Acquisition {
  promise: Promise<SlurmJob>;
  settled: boolean;
  controller: AbortController;
  waiters: number;
  listeners: Set<(event: LauncherEvent) => void>;
}

/**
 * A launcher that runs agents on Slurm compute nodes. The first `prepare` asks for one
 * allocation (`salloc --no-shell --job-name=sremote-… --time=…`), reporting a pending job as
 * `pending` events (from `squeue`) and honouring the caller's abort and timeout (the request
 * is then cancelled: no job is left). Each agent then starts as a step of that allocation —
 * `srun --jobid=ID -N1 -n1 -u --overlap --nodelist=NODE -- <agent>` — slot `s` on node
 * `s % nodes`, for sessions and file-carrier calls alike. `release` cancels the job
 * (`scancel`); after `invalidate` the next `prepare` asks `squeue` whether the job still runs
 * and allocates anew when it does not. Slurm's refusals (bad partition, a request over a
 * per-job limit, an unknown account…) reject with a `SCHEDULER` {@link SchedulerError}
 * carrying Slurm's message, retryable (nothing ran).
 */
export function slurm(options: SlurmOptions = {}): SlurmLauncher {
  validateSlurmOptions(options);
  const opts: SlurmOptions = { ...options, env: { ...(options.env ?? {}) } };
  const env = opts.env as Record<string, string>;
  const pollMs = opts.pollIntervalMs ?? DEFAULT_POLL_MAX_MS;
  const host = clientHost();
  let job: SlurmJob | undefined;
  let checkNeeded = false;
  let swept = opts.sweep === false;
  let acquiring: Acquisition | undefined;

  const emitTo = (listeners: Iterable<(event: LauncherEvent) => void>, event: LauncherEvent) => {
    for (const listener of new Set([launcher.onEvent, ...listeners])) {
      try {
        listener?.(event);
      } catch {
        // A listener's failure is not the allocation's.
      }
    }
  };
  const event = (kind: LauncherEvent["kind"], message: string, detail?: Record<string, unknown>): LauncherEvent => ({
    launcher: "slurm",
    kind,
    message,
    ...(detail ? { detail } : {}),
  });

  const runner =
    (connector: Connector): RunSlurm =>
    (argv, signal) =>
      connector.exec(argv, { env, timeoutMs: COMMAND_TIMEOUT_MS, ...(signal ? { signal } : {}) });

  const acquire = async (connector: Connector, acq: Acquisition): Promise<SlurmJob> => {
    const emit = (e: LauncherEvent) => emitTo(acq.listeners, e);
    const signal = acq.controller.signal;
    const run = runner(connector);
    if (job && checkNeeded) {
      const held = job;
      const state = await jobState(run, held.id, signal); // rejects when Slurm cannot be asked
      checkNeeded = false;
      if (usable(state)) return held;
      job = undefined;
      await cancelJob(run, { id: held.id });
      emit(event("info", `job ${held.id} is ${state || "gone"}: allocating anew`, { jobId: held.id, state }));
    }
    if (job) return job;
    const name = makeJobName(host);
    const sweeping = swept
      ? Promise.resolve()
      : sweepDeadClients(run, host).then((dead) => {
          if (dead.length === 0) return;
          const message = `cancelled ${dead.length} leftover job(s) of dead clients: ${dead.join(", ")}`;
          emit(event("info", message, { jobs: dead }));
        });
    swept = true;
    let refused: SchedulerError | undefined;
    const stopWatch = new AbortController();
    const watcher = watchPending(
      run,
      name,
      { firstMs: Math.min(FIRST_LOOK_MS, pollMs), maxMs: pollMs },
      stopWatch.signal,
      {
        onPending: (id, reason) =>
          emit(event("pending", `job ${id} pending: ${reason}`, { jobId: id, state: "PENDING", reason })),
        onNeverStarts: (id, reason) => {
          const asked = sallocArgv(opts, name).slice(3).join(" ");
          refused = new SchedulerError("slurm", `job ${id} can never start: ${reason} (salloc ${asked})`, {
            retryable: true,
            details: { jobId: id, state: "PENDING", reason },
          });
          acq.controller.abort(refused);
        },
      },
    );
    let result: ExecResult;
    try {
      // salloc waits as long as the request is pending: bounded by its callers' deadlines only.
      result = await connector.exec(sallocArgv(opts, name), { env, signal }).catch(async (err: unknown) => {
        await cancelJob(run, { name });
        throw refused ?? (signal.aborted ? signal.reason : err);
      });
    } finally {
      stopWatch.abort();
      await watcher;
      await sweeping;
    }
    // `--quiet` (in `extra`, or SALLOC_* variables at the site) hides salloc's message: ask by name.
    const id =
      parseJobId(result.stderr) ??
      (result.exitCode === 0 && !refused && !signal.aborted ? await jobIdByName(run, name, signal) : undefined);
    if (result.exitCode !== 0 || id === undefined || refused || signal.aborted) {
      await cancelJob(run, id ? { id } : { name });
      if (refused) throw refused;
      if (signal.aborted) throw signal.reason;
      const message = slurmMessage(result.stderr, `salloc exited with status ${result.exitCode}`);
      const missing = result.exitCode === 127 ? " (is Slurm installed there and on PATH?)" : "";
      throw new SchedulerError("slurm", `${message}${missing}`, {
        retryable: id === undefined,
        details: { command: "salloc", exitCode: result.exitCode, ...(id ? { jobId: id } : {}) },
      });
    }
    try {
      const granted: SlurmJob = { id, name, nodes: await nodesOfJob(run, id, signal) };
      emit(event("ready", `job ${id} running on ${granted.nodes.join(",")}`, { jobId: id, nodes: granted.nodes }));
      return granted;
    } catch (err) {
      await cancelJob(run, { id });
      throw err;
    }
  };

  const launcher: SlurmLauncher = {
    name: "slurm",
    onEvent: opts.onEvent,
    options: opts,
    get job() {
      return job;
    },
    wrap(command: AgentCommand, context: LaunchContext): AgentCommand {
      if (!job) {
        throw new SchedulerError(
          "slurm",
          `no allocation is held: prepare() must come before wrap() (${context.carrier} slot ${context.slot})`,
        );
      }
      const node = job.nodes[Math.abs(context.slot) % job.nodes.length];
      return { argv: srunArgv(opts, job.id, node, command.argv), env: { ...env, ...command.env } };
    },
    async prepare(connector: Connector, options: LauncherPrepareOptions = {}): Promise<void> {
      if (job && !checkNeeded) return;
      const dl = deadline(options);
      try {
        dl.throwIfDone("slurm: allocation");
        if (!acquiring) {
          const acq: Acquisition = {
            controller: new AbortController(),
            settled: false,
            waiters: 0,
            listeners: new Set(),
            promise: Promise.resolve(undefined as unknown as SlurmJob),
          };
          acq.promise = acquire(connector, acq).then(
            (granted) => {
              acq.settled = true;
              if (acquiring === acq) acquiring = undefined;
              job = granted;
              return granted;
            },
            (err: unknown) => {
              acq.settled = true;
              if (acquiring === acq) acquiring = undefined;
              throw err;
            },
          );
          acq.promise.catch(() => undefined);
          acquiring = acq;
        }
        const acq = acquiring;
        const listener = options.onEvent;
        acq.waiters++;
        if (listener) acq.listeners.add(listener);
        try {
          await raceSignal(acq.promise, dl.signal);
        } catch (err) {
          if (dl.signal.aborted) throw dl.error("slurm: waiting for an allocation");
          throw err;
        } finally {
          acq.waiters--;
          if (listener) acq.listeners.delete(listener);
          // The last caller gave up: cancel the request and wait until no job is left.
          if (acq.waiters === 0 && dl.signal.aborted && !acq.settled) {
            acq.controller.abort(new AbortError("slurm: every caller gave up waiting for the allocation"));
            const granted = await acq.promise.catch(() => undefined);
            // Granted at the last moment: nobody wants it any more.
            if (granted && job === granted) {
              job = undefined;
              await cancelJob(runner(connector), { id: granted.id });
            }
          }
        }
      } finally {
        dl.dispose();
      }
    },
    async release(connector: Connector, options: LauncherPrepareOptions = {}): Promise<void> {
      const acq = acquiring;
      if (acq) {
        acq.controller.abort(new AbortError("slurm: the allocation request was cancelled by release()"));
        await acq.promise.catch(() => undefined);
      }
      const held = job;
      job = undefined;
      checkNeeded = false;
      if (!held) return;
      const r = await connector.exec(["scancel", held.id], {
        env,
        timeoutMs: options.timeoutMs ?? COMMAND_TIMEOUT_MS,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (r.exitCode !== 0 && !/Invalid job id|already completing or completed/i.test(r.stderr)) {
        throw new SchedulerError(
          "slurm",
          `scancel ${held.id}: ${slurmMessage(r.stderr, `exit status ${r.exitCode}`)}`,
          {
            details: { command: "scancel", jobId: held.id, exitCode: r.exitCode },
          },
        );
      }
      // scancel only asks slurmctld: wait (bounded) until the job no longer holds or waits for nodes.
      const end = Date.now() + Math.min(options.timeoutMs ?? COMMAND_TIMEOUT_MS, RELEASE_CONFIRM_MS);
      const run = runner(connector);
      let state = "";
      for (;;) {
        state = await jobState(run, held.id, options.signal).catch(() => "");
        if (!HOLDING_STATES.has(state) || Date.now() > end) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      emitTo(
        options.onEvent ? [options.onEvent] : [],
        event("released", `job ${held.id} cancelled`, { jobId: held.id, ...(state ? { state } : {}) }),
      );
    },
    invalidate(): void {
      if (job) checkNeeded = true;
    },
    explainExit(stderr: string): SchedulerError | undefined {
      const end = stepEnd(stderr);
      if (!end) return undefined;
      return new SchedulerError("slurm", `job ${end.jobId} ended the agent: ${end.message}`, {
        details: { jobId: end.jobId, cause: end.cause },
      });
    },
  };
  return launcher;
}
