import type { ChildProcess } from "node:child_process";

/**
 * Process groups started by any local connector and not known to be over. Kept at module
 * level so that one `exit` listener (not one per connector) kills what is left when Node
 * exits: children are spawned `detached` (each leads its own group, so a timeout can end
 * its grandchildren too), and detached children would otherwise outlive us.
 */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const pgid of liveGroups) signalGroup(pgid, "SIGKILL");
  });
}

/** Sends `signal` to every process in group `pgid`; a group already gone is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    // ESRCH: the group is empty. EPERM cannot happen for our own children.
    return false;
  }
}

/** How the leader of a group ended. */
export interface LeaderExit {
  exitCode: number | null;
  signal: string | null;
}

/**
 * A child spawned `detached`, so it leads its own process group. The command counts as
 * running until the child's stdio has closed (as a shell waits for a pipeline's output):
 * until then, {@link ProcessGroup.end} signals the whole group — SIGTERM now, SIGKILL after
 * a grace period for members that ignored it.
 */
export class ProcessGroup {
  readonly pgid: number;
  /** Settles when the leader has exited (its stdio may still be held by other members). */
  readonly leaderExited: Promise<LeaderExit>;
  /** Settles when the leader has exited and every stdio pipe is closed. */
  readonly closed: Promise<LeaderExit>;
  #ending = false;
  #done = false;
  #killTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param stdio the closing of stdio the command holds that is not one of `child`'s own
   *   streams (a socket given to `spawn`): the command is running until it has closed too.
   */
  constructor(
    readonly child: ChildProcess,
    private readonly graceMs: number,
    stdio?: Promise<void>,
  ) {
    // Constructed only once the child has spawned, so it has a pid.
    this.pgid = child.pid!;
    liveGroups.add(this.pgid);
    installExitHook();
    this.leaderExited = new Promise((resolve) => {
      child.once("exit", (exitCode, signal) => resolve({ exitCode, signal }));
    });
    const childClosed = new Promise<LeaderExit>((resolve) => {
      child.once("close", (exitCode, signal) => resolve({ exitCode, signal }));
    });
    this.closed = Promise.all([childClosed, stdio]).then(([exit]) => {
      this.#done = true;
      // A command that ended on its own is over: background jobs that let go of its
      // output are their own business, as with a shell. After end(), the SIGKILL timer
      // still sweeps the group.
      if (!this.#ending) liveGroups.delete(this.pgid);
      return exit;
    });
  }

  /** True once the command is over: leader exited and stdio closed. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Ends the whole group: `signal` now, SIGKILL to the group after the grace period.
   * Idempotent; does nothing once the command is over (the group number may be reused).
   * Resolves once the leader has exited.
   */
  end(signal: NodeJS.Signals = "SIGTERM"): Promise<LeaderExit> {
    if (this.#done) return this.leaderExited;
    signalGroup(this.pgid, signal);
    if (!this.#ending) {
      this.#ending = true;
      this.#killTimer = setTimeout(() => this.#sweep(), this.graceMs);
      // Never keep Node alive for this; the exit hook covers the rest.
      this.#killTimer.unref();
      // Once the group is empty, stop: a later SIGKILL could only hit a reused group number.
      const settleEarly = () => {
        if (this.#killTimer !== undefined && !groupAlive(this.pgid)) {
          clearTimeout(this.#killTimer);
          liveGroups.delete(this.pgid);
        }
      };
      void this.leaderExited.then(settleEarly);
      void this.closed.then(settleEarly);
    }
    return this.leaderExited;
  }

  #sweep(): void {
    signalGroup(this.pgid, "SIGKILL");
    liveGroups.delete(this.pgid);
  }
}

/** True while process group `pgid` has at least one member. */
export function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0);
}
