import { type ChildProcess, spawn } from "node:child_process";

/** What a finished command gave. */
export interface CommandOutcome {
  stdout: string;
  stderr: string;
  /** Exit status (kept for the log only: NEWT never reported it). */
  exitCode: number | null;
  signal: string | null;
  /** The double's time limit ended the command (its whole process group was killed). */
  timedOut: boolean;
  /** The program could not be started at all (ENOENT, EACCES…). */
  spawnError?: string | undefined;
}

/**
 * Runs commands in their own process groups and ends them all on demand. Each command
 * gets stdin from /dev/null (NEWT has no stdin), its output collected until both pipes
 * close, and a time limit that kills the whole group — so background children die too.
 */
export class ProcessRunner {
  private readonly running = new Set<ChildProcess>();
  private readonly settled = new Set<Promise<unknown>>();
  private closed = false;

  /** Number of commands still running. */
  get size(): number {
    return this.running.size;
  }

  run(
    argv: readonly string[],
    options: {
      cwd: string;
      env: NodeJS.ProcessEnv;
      timeoutMs: number;
      /** Sees output as it arrives (the SFAPI double shows it as a task's partial result). */
      onOutput?: ((stream: "stdout" | "stderr", chunk: Buffer) => void) | undefined;
    },
  ): {
    /** A process was started (false when the program could not be run at all). */
    started: boolean;
    /** The process id, which also names its process group (undefined when not started). */
    pid: number | undefined;
    /** Settles when the command has ended and both pipes are closed; never rejects. */
    done: Promise<CommandOutcome>;
    /** Kills the command's process group. */
    kill(): void;
  } {
    const [file, ...args] = argv;
    if (this.closed || file === undefined) {
      return {
        started: false,
        pid: undefined,
        kill: () => undefined,
        done: Promise.resolve({
          stdout: "",
          stderr: "",
          exitCode: null,
          signal: null,
          timedOut: false,
          spawnError: this.closed ? "server is shutting down" : "empty command",
        }),
      };
    }
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const started = child.pid !== undefined;
    if (started) this.running.add(child);
    const done = new Promise<CommandOutcome>((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      let spawnError: string | undefined;
      child.stdout?.on("data", (b: Buffer) => {
        out.push(b);
        options.onOutput?.("stdout", b);
      });
      child.stderr?.on("data", (b: Buffer) => {
        err.push(b);
        options.onOutput?.("stderr", b);
      });
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, options.timeoutMs);
      child.once("error", (e: NodeJS.ErrnoException) => {
        spawnError = `${file}: ${e.code === "ENOENT" ? "No such file or directory" : e.message}`;
      });
      child.once("close", (exitCode, signal) => {
        clearTimeout(timer);
        this.running.delete(child);
        resolve({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
          exitCode,
          signal,
          timedOut,
          spawnError,
        });
      });
    });
    this.settled.add(done);
    void done.then(() => this.settled.delete(done));
    return { started, pid: child.pid, done, kill: () => killGroup(child) };
  }

  /** Kills every running command's process group and waits until all have ended. */
  async close(): Promise<void> {
    this.closed = true;
    for (const child of this.running) killGroup(child);
    await Promise.all([...this.settled]);
  }
}

/** SIGKILL to the child's process group (the child leads it: it was spawned detached). */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // the group is already gone
  }
}
