import { AGENT_PROTOCOL_VERSION } from "@sremote/agent";
import {
  type Connector,
  ConnectorError,
  type Deadline,
  deadline,
  hasErrorCode,
  type Launcher,
  type RemoteLayout,
} from "@sremote/core";
import { type CallMessage, DEFAULT_MAX_FRAME_BYTES, type ProbeMessage, type ResultMessage } from "@sremote/protocol";
import { LearnedPython, sessionCommand } from "./agent-command.js";
import type { EarlySession } from "./endpoint-agent.js";
import type { LauncherLifecycle } from "./launcher-lifecycle.js";
import type { Logger } from "./logger.js";
import type { RemoteClientOptions } from "./options.js";
import { AgentSession, type OutputListener } from "./session.js";

/** Options of a {@link SessionPool}. */
export interface SessionPoolOptions {
  /** Most sessions kept (each is one agent process). */
  size: number;
  /** Requests sent to one session before it has answered (pipelining). */
  maxInFlightPerSession: number;
  /** Calls one agent runs at once (its worker pool); beyond it requests queue in the agent. */
  workersPerSession: number;
  /** How long a cancelled call may take to end before its session is recycled. */
  cancelGraceMs: number;
  /**
   * Starts one session in `slot` (0 … size-1, the lowest free one), so a launcher can place
   * slots on distinct nodes.
   */
  start(signal: AbortSignal, slot: number): Promise<AgentSession>;
  /** A session ended that the pool did not end (its agent died, its node went away). */
  onSessionLost?: ((slot: number) => void) | undefined;
  /** A better error for a call whose session ended under it (a launcher's explanation), or undefined. */
  explainLoss?: ((session: AgentSession, error: unknown) => unknown) | undefined;
  /** The connector's name, for the errors the pool raises. */
  connectorName: string;
  logger: Logger;
}

interface Job {
  message: CallMessage | ProbeMessage;
  onOutput: OutputListener | undefined;
  /** Absent when the call has neither a signal nor a timeout (the common fast path). */
  deadline: Deadline | undefined;
  resolve(result: ResultMessage): void;
  reject(error: unknown): void;
  settled: boolean;
  session: AgentSession | undefined;
}

/**
 * Sessions shared by the calls of one client: calls go to the least busy session, new
 * sessions start (up to `size`) when all are busy, a session whose call cannot be
 * interrupted is recycled, and calls that never started are moved to another session.
 */
export class SessionPool {
  readonly #options: SessionPoolOptions;
  readonly #sessions = new Set<AgentSession>();
  /** The slot of each live session, and the slots of sessions starting. */
  readonly #slots = new Map<AgentSession, number>();
  readonly #startingSlots = new Set<number>();
  /** Sessions the pool itself ended (shutdown, recycle, retire): their end is expected. */
  readonly #ending = new WeakSet<AgentSession>();
  readonly #queue: Job[] = [];
  #starting = 0;
  #closed = false;
  /** Aborted by close and by {@link SessionPool.retireAll} (then replaced). */
  #startAbort = new AbortController();

  constructor(options: SessionPoolOptions) {
    this.#options = options;
  }

  /** Number of live sessions (for tests and `doctor`). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Live sessions' process facts. */
  sessions(): readonly AgentSession[] {
    return [...this.#sessions];
  }

  /** Sends one request through the pool. */
  request(
    message: CallMessage | ProbeMessage,
    options: {
      signal?: AbortSignal | undefined;
      timeoutMs?: number | undefined;
      onOutput?: OutputListener | undefined;
    },
  ): Promise<ResultMessage> {
    if (this.#closed) {
      return Promise.reject(new ConnectorError("CLOSED", this.#options.connectorName, "the client is closed"));
    }
    const d = options.signal || options.timeoutMs !== undefined ? deadline(options) : undefined;
    return new Promise<ResultMessage>((resolve, reject) => {
      const job: Job = {
        message,
        onOutput: options.onOutput,
        deadline: d,
        resolve,
        reject,
        settled: false,
        session: undefined,
      };
      if (d) {
        if (d.signal.aborted) {
          this.#settle(job, d.error(`call ${message.id}`));
          return;
        }
        d.signal.addEventListener("abort", () => this.#onDeadline(job), { once: true });
      }
      this.#queue.push(job);
      this.#pump();
    });
  }

  /** Shuts every session down (running calls get `graceMs` to finish); queued calls reject `CLOSED`. */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    this.#startAbort.abort();
    for (const job of this.#queue.splice(0)) {
      this.#settle(
        job,
        new ConnectorError("CLOSED", this.#options.connectorName, "the client was closed before the call was sent"),
      );
    }
    await Promise.all([...this.#sessions].map((s) => this.#shutdown(s, graceMs)));
  }

  /**
   * Ends every session and every start under way, keeping the pool open: the next request
   * starts fresh sessions. Used before a launcher gives back the resources the agents run in.
   */
  async retireAll(graceMs: number): Promise<void> {
    this.#startAbort.abort();
    this.#startAbort = new AbortController();
    await Promise.all([...this.#sessions].map((s) => this.#shutdown(s, graceMs)));
  }

  #shutdown(session: AgentSession, graceMs: number): Promise<void> {
    this.#ending.add(session);
    return session.shutdown(graceMs);
  }

  /** The lowest slot neither live nor starting. */
  #freeSlot(): number {
    const used = new Set([...this.#slots.values(), ...this.#startingSlots]);
    let slot = 0;
    while (used.has(slot)) slot++;
    return slot;
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      const session = this.#pick();
      if (!session) break;
      const job = this.#queue.shift() as Job;
      this.#dispatch(job, session);
    }
    if (this.#queue.length > 0 && !this.#closed) this.#maybeStart();
  }

  /** The least busy session that may take one more request now, or none. */
  #pick(): AgentSession | undefined {
    let best: AgentSession | undefined;
    for (const s of this.#sessions) {
      if (!s.accepting || !s.alive || s.inFlight >= this.#options.maxInFlightPerSession) continue;
      if (!best || s.inFlight < best.inFlight) best = s;
    }
    if (!best) return undefined;
    // A session about to start (or starting already) will have free workers; prefer waiting
    // for it over queueing behind work that may be long.
    if (best.inFlight >= this.#options.workersPerSession) {
      if (this.#canGrow()) this.#maybeStart();
      if (this.#starting > 0) return undefined;
    }
    return best;
  }

  #canGrow(): boolean {
    return this.#sessions.size + this.#starting < this.#options.size;
  }

  #maybeStart(): void {
    const workers = this.#options.workersPerSession;
    const busy = [...this.#sessions].every((s) => !s.accepting || s.inFlight >= workers);
    if (!busy || !this.#canGrow()) return;
    // One more start only for work the starts under way will not take: a burst (a map)
    // starts its sessions side by side — through a launcher each start may take seconds —
    // while a lone call never starts two.
    if (this.#starting > 0 && this.#queue.length <= this.#starting * workers) return;
    this.#starting++;
    const slot = this.#freeSlot();
    this.#startingSlots.add(slot);
    const startSignal = this.#startAbort.signal;
    this.#options
      .start(startSignal, slot)
      .then(
        (session) => {
          if (this.#closed || startSignal.aborted) {
            void this.#shutdown(session, 0);
            return;
          }
          this.#sessions.add(session);
          this.#slots.set(session, slot);
          session.closed.then(() => {
            this.#sessions.delete(session);
            this.#slots.delete(session);
            if (!this.#closed && !this.#ending.has(session)) this.#options.onSessionLost?.(slot);
            this.#pump();
          });
        },
        (error: unknown) => {
          // Nothing ran: every waiting call learns why, unless another session (live, or
          // starting besides this one) can take it.
          if (this.#sessions.size === 0 && this.#starting === 1) {
            for (const job of this.#queue.splice(0)) this.#settle(job, error);
          }
        },
      )
      .finally(() => {
        this.#starting--;
        this.#startingSlots.delete(slot);
        this.#pump();
      });
  }

  #dispatch(job: Job, session: AgentSession): void {
    job.session = session;
    session.send(job.message, {
      onOutput: job.onOutput,
      resolve: (result) => {
        if (result.ok === false && result.error?.kind === "cancelled" && !job.settled) {
          // Cancelled before it started (its session is being recycled): safe to run elsewhere.
          job.session = undefined;
          this.#queue.unshift(job);
        } else {
          this.#settle(job, undefined, result);
        }
        this.#pump();
      },
      reject: (error) => {
        this.#settle(job, (!session.alive && this.#options.explainLoss?.(session, error)) || error);
        this.#pump();
      },
    });
  }

  #onDeadline(job: Job): void {
    if (job.settled || !job.deadline) return;
    const error = job.deadline.error(
      `call ${job.message.kind === "call" ? `${job.message.module}.${job.message.function}` : "probe"}`,
    );
    const session = job.session;
    if (!session) {
      const i = this.#queue.indexOf(job);
      if (i >= 0) this.#queue.splice(i, 1);
      this.#settle(job, error);
      return;
    }
    this.#settle(job, error);
    session.cancel(job.message.id);
    const id = job.message.id;
    const timer = setTimeout(() => {
      if (session.alive && session.pendingIds().includes(id)) this.#recycle(session, id);
    }, this.#options.cancelGraceMs);
    timer.unref?.();
  }

  /** The call `stuckId` could not be interrupted: move the others away, then end the session. */
  #recycle(session: AgentSession, stuckId: string): void {
    this.#options.logger.warn?.("recycling a session whose call could not be interrupted", { id: stuckId });
    session.accepting = false;
    this.#ending.add(session);
    for (const id of session.pendingIds()) if (id !== stuckId) session.cancel(id);
    const timer = setTimeout(() => {
      session.kill(
        new ConnectorError(
          "CONNECTION_LOST",
          "session",
          "the agent session was ended because a timed-out call could not be interrupted",
        ),
      );
    }, this.#options.cancelGraceMs);
    timer.unref?.();
    session.closed.then(() => clearTimeout(timer));
    this.#pump();
  }

  #settle(job: Job, error: unknown, result?: ResultMessage): void {
    if (job.settled) return;
    job.settled = true;
    job.deadline?.dispose();
    if (result) job.resolve(result);
    else job.reject(error);
  }
}

/**
 * The client's pool: `options`' sizes and timeouts, each session started through the
 * launcher — `prepare` first, `wrap` with the session's slot — and a failed start or an
 * agent's unexpected end told to the launcher's lifecycle.
 */
export function createSessionPool(facts: {
  options: RemoteClientOptions;
  connector: Connector;
  layout: RemoteLayout;
  logger: Logger;
  launcher: Launcher | undefined;
  lifecycle: LauncherLifecycle | undefined;
  /** A session started beside the agent-file check, for the first start of slot 0. */
  early?: EarlySession | undefined;
}): SessionPool {
  const { options: o, connector, logger, launcher, lifecycle: life } = facts;
  const workers = o.workersPerSession ?? 1;
  let early = facts.early;
  return new SessionPool({
    size: o.poolSize ?? 1,
    workersPerSession: workers,
    maxInFlightPerSession: o.maxInFlightPerSession ?? 64,
    cancelGraceMs: o.cancelGraceMs ?? 2_000,
    logger,
    connectorName: connector.name,
    onSessionLost: () => life?.invalidate(),
    explainLoss: (session, error) =>
      launcher?.explainExit && hasErrorCode(error, "CONNECTION_LOST")
        ? launcher.explainExit(session.stderrTail())
        : undefined,
    start: async (signal, slot) => {
      try {
        // The session started beside the agent-file check (the check found the files current).
        const session = slot === 0 ? await early?.take() : undefined;
        early = undefined;
        if (session?.alive) return session;
        if (life) await life.prepare({ signal });
        return await startSessionAgent(facts, signal, slot);
      } catch (err) {
        if (life && !signal.aborted) life.startFailed();
        throw err;
      }
    },
  });
}

/** Starts one agent session in `slot` with the client's options (no launcher `prepare`). */
export function startSessionAgent(
  facts: {
    options: RemoteClientOptions;
    connector: Connector;
    layout: RemoteLayout;
    logger: Logger;
    launcher: Launcher | undefined;
    /** Where the first agent's interpreter is kept for later starts (see LearnedPython). */
    learnedPython?: LearnedPython | undefined;
  },
  signal: AbortSignal,
  slot: number,
): Promise<AgentSession> {
  const { options: o, launcher } = facts;
  const maxFrameBytes = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const learned = LearnedPython.applies(o.python, launcher) ? facts.learnedPython : undefined;
  const session = AgentSession.start({
    connector: facts.connector,
    command: sessionCommand(facts.layout, {
      python: learned ? learned.path : o.python,
      launcher,
      workers: o.workersPerSession ?? 1,
      maxFrameBytes,
      slot,
    }),
    loginEnv: o.loginEnv,
    maxFrameBytes,
    startTimeoutMs: o.startTimeoutMs ?? 60_000,
    protocol: AGENT_PROTOCOL_VERSION,
    logger: facts.logger,
    signal,
  });
  if (!learned) return session;
  return session.then((started) => {
    learned.learn(started.info.executable);
    return started;
  });
}
