import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectorError } from "@sremote/core";
import type { SshLogger } from "../options.js";
import { controlArgs, masterArgs, type SshArgsInput } from "./args.js";
import { masterError, tail } from "./errors.js";
import { cleanupAtExit } from "./private-dir.js";

let nextId = 1;

/** How often to look for the control socket while the master authenticates. */
const SOCKET_POLL_MS = 10;

/** What starting a master needs. */
export interface MasterPlan {
  sshPath: string;
  args: SshArgsInput;
  /** The instance folder; the socket appears in `<dir>/c/`. */
  dir: string;
  /** Prompts allowed (askpass environment present). */
  prompts: boolean;
  env: NodeJS.ProcessEnv;
  label: string;
  connectTimeoutMs: number;
  logger: SshLogger | undefined;
  /** Added to AUTH_FAILED messages (e.g. what the askpass callback raised). */
  authHint: () => string | undefined;
}

/** An environment for ssh without anything that would make it prompt or slow a Node helper. */
export function quietEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!extra.SSH_ASKPASS) {
    delete env.SSH_ASKPASS;
    delete env.SSH_ASKPASS_REQUIRE;
  }
  delete env.NODE_OPTIONS;
  return env;
}

/**
 * One OpenSSH ControlMaster (`ssh -M -N`) kept as a child process: it authenticates once
 * and then serves every session over its control socket. When the process ends without
 * `close()`, listeners hear `CONNECTION_LOST` once.
 */
export class OpensshMaster {
  readonly id = nextId++;
  private dead: ConnectorError | undefined;
  private closing = false;
  private readonly lostListeners = new Set<(error: ConnectorError) => void>();
  private stderr = "";
  readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly socket: string,
    private readonly plan: MasterPlan,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
    child.stderr?.on("data", (c: Buffer) => {
      this.stderr = (this.stderr + c.toString("utf8")).slice(-4096);
    });
    void this.exited.then(() => this.markDead());
  }

  get label(): string {
    return this.plan.label;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  get endError(): ConnectorError | undefined {
    return this.dead;
  }

  private markDead(): void {
    if (this.dead) return;
    const why = tail(this.stderr);
    this.dead = this.closing
      ? new ConnectorError("CLOSED", "ssh", `connection to ${this.label} closed`)
      : new ConnectorError(
          "CONNECTION_LOST",
          "ssh",
          `connection to ${this.label} lost (the ssh ControlMaster ended${why ? `: ${why}` : ""})`,
          { details: { host: this.label, connection: this.id } },
        );
    if (!this.closing) this.plan.logger?.warn(this.dead.message, { connection: this.id });
    for (const fn of this.lostListeners) fn(this.dead);
    this.lostListeners.clear();
    // A killed master leaves its socket file behind: remove it so the next master can bind.
    void rm(this.socket, { force: true });
  }

  onLost(fn: (error: ConnectorError) => void): () => void {
    if (this.dead) {
      fn(this.dead);
      return () => {};
    }
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /** Ends the master (`ssh -O exit`, then signals) and waits until its process is gone. */
  async close(): Promise<void> {
    if (this.dead && this.child.exitCode !== null) return;
    this.closing = true;
    await new Promise<void>((resolve) => {
      const c = execFile(
        this.plan.sshPath,
        controlArgs(this.plan.args, this.socket, "exit"),
        { timeout: 5_000, env: quietEnv() },
        () => resolve(),
      );
      c.on("error", () => resolve());
    });
    const gone = await Promise.race([this.exited.then(() => true), sleep(2_000, false, { ref: false })]);
    if (!gone) {
      this.child.kill("SIGTERM");
      const gone2 = await Promise.race([this.exited.then(() => true), sleep(1_000, false, { ref: false })]);
      if (!gone2) this.child.kill("SIGKILL");
      await this.exited;
    }
    this.markDead();
    await rm(this.socket, { force: true });
  }

  /**
   * Starts a master and resolves once its control socket exists (authentication done),
   * or rejects with what ssh said (`AUTH_FAILED`, `HOST_KEY_*`, `CONNECT_*`).
   */
  static async start(plan: MasterPlan, signal: AbortSignal): Promise<OpensshMaster> {
    const socketDir = join(plan.dir, "c");
    // A master killed earlier (or by a crashed process) may have left its socket file.
    for (const name of await readdir(socketDir).catch(() => [] as string[])) {
      await rm(join(socketDir, name), { force: true });
    }
    const child = spawn(plan.sshPath, masterArgs(plan.args, plan.prompts), {
      stdio: ["ignore", "ignore", "pipe"],
      env: plan.env,
    });
    cleanupAtExit({ pid: child.pid });
    child.once("exit", () => cleanupAtExit({ pid: child.pid }, false));
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    let exited = false;
    let spawnError: Error | undefined;
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
    child.on("error", (err) => {
      spawnError = err;
      exited = true;
    });
    child.on("exit", () => {
      exited = true;
    });
    const started = Date.now();
    try {
      for (;;) {
        if (signal.aborted) throw signal.reason;
        if (spawnError) {
          throw new ConnectorError("UNAVAILABLE", "ssh", `cannot run ${plan.sshPath}: ${spawnError.message}`, {
            cause: spawnError,
          });
        }
        const names = await readdir(socketDir).catch(() => [] as string[]);
        // ssh binds a temporary name and renames it into place: only the final name counts.
        const ready = names.find((n) => !/\.[A-Za-z0-9]{16}$/.test(n));
        if (ready && !exited) {
          const master = new OpensshMaster(child, join(socketDir, ready), plan);
          master.stderr = stderr;
          plan.logger?.debug?.(`ssh: openssh master ${master.id} to ${plan.label} ready (pid ${child.pid})`);
          return master;
        }
        if (exited) {
          // Let the last stderr bytes arrive.
          await Promise.race([closed, sleep(500, undefined, { ref: false })]);
          throw masterError(stderr, plan.label, { authHint: plan.authHint() });
        }
        if (Date.now() - started > plan.connectTimeoutMs) {
          throw new ConnectorError(
            "CONNECT_TIMEOUT",
            "ssh",
            `connecting to ${plan.label} with the system ssh timed out after ${plan.connectTimeoutMs} ms${stderr ? `: ${tail(stderr)}` : ""}`,
            { retryable: true, details: { host: plan.label } },
          );
        }
        await sleep(SOCKET_POLL_MS);
      }
    } catch (err) {
      if (!exited) {
        child.kill("SIGTERM");
        await new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) resolve();
          else child.once("exit", () => resolve());
        });
      }
      for (const name of await readdir(socketDir).catch(() => [] as string[])) {
        await rm(join(socketDir, name), { force: true });
      }
      throw err;
    }
  }
}
