import { type ChildProcess, spawn as spawnChild } from "node:child_process";
import { once } from "node:events";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { homedir, hostname, userInfo } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { Readable, Writable } from "node:stream";
import {
  assertEnv,
  type Connector,
  type ConnectorCapabilities,
  type ConnectorDefinition,
  ConnectorError,
  type ConnectorRuntime,
  type ConnectorStatus,
  checkPath,
  type Deadline,
  defineConnector,
  type ExecOptions,
  type ExecResult,
  openSocketStdout,
  type ProcessExit,
  type RemoteProcess,
  type SocketStdout,
  UsageError,
} from "@sremote/core";
import { deleteWholeFile, readWholeFile, writeFileAtomic } from "./files.js";
import { ProcessGroup } from "./process-groups.js";

const NAME = "local";

/** Options of {@link localConnector}. Every field is optional. */
export interface LocalConnectorOptions {
  /**
   * The home folder reported by `homeDir()` (default `os.homedir()`). When given, commands
   * also see it as `$HOME`, and it is the default working folder — handy in tests.
   */
  homeDir?: string | undefined;
  /**
   * The environment commands start from (default `process.env`); `ExecOptions.env` is
   * merged over it.
   */
  baseEnv?: Readonly<Record<string, string>> | undefined;
  /** Working folder of commands run without `cwd` (default: the home folder). */
  cwd?: string | undefined;
  /**
   * Milliseconds between SIGTERM and SIGKILL when a command's process group is ended by a
   * timeout, an abort, `kill()` or `close()` (default 2000).
   */
  killGraceMs?: number | undefined;
}

/** What `close()` and `kill()` need to know about one running command. */
interface Running {
  group: ProcessGroup;
  /** Ends the command on the connector's `close()`. */
  stop(error: Error): void;
}

/** The capabilities of every local connector: it can do everything. */
const CAPABILITIES: ConnectorCapabilities = Object.freeze({
  spawn: true,
  stdin: true,
  signals: true,
  fileModes: true,
});

/** A finished "process" for a program that could not start, shaped as a shell reports it. */
function notStarted(exitCode: number, message: string): ExecResult {
  return { stdout: "", stderr: `${message}\n`, exitCode, signal: null };
}

/** A {@link RemoteProcess} that already ended: the program could not start. */
function endedProcess(result: ExecResult): RemoteProcess {
  const stdout = new Readable({ read() {} });
  stdout.push(null);
  const stderr = new Readable({ read() {} });
  stderr.push(Buffer.from(result.stderr));
  stderr.push(null);
  const stdin = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  return {
    stdin,
    stdout,
    stderr,
    exited: Promise.resolve({ exitCode: result.exitCode, signal: null }),
    kill() {},
  };
}

/**
 * The embedded connector: the local machine, through child processes and local files.
 * Create one with {@link localConnector}. `spawn` is always present.
 */
export interface LocalConnector extends Connector {
  /**
   * Starts `argv` with live streams (the child's own pipes, no extra buffering). `signal` and
   * `timeoutMs` bound the start only; the process then runs until it exits, `kill()` or
   * `close()`. A program that cannot start gives an already ended process (127/126).
   */
  spawn(argv: readonly string[], options?: Omit<ExecOptions, "stdin">): Promise<RemoteProcess>;
}

/** The local transport: child processes and local files; core supplies checks, deadlines and close. */
class LocalTransport implements ConnectorDefinition {
  readonly name = NAME;
  readonly capabilities = CAPABILITIES;
  readonly #runtime: ConnectorRuntime;
  readonly #home: string;
  readonly #homeOverridden: boolean;
  readonly #cwd: string;
  readonly #baseEnv: Readonly<Record<string, string>> | undefined;
  readonly #graceMs: number;
  readonly #running = new Set<Running>();

  constructor(options: LocalConnectorOptions, runtime: ConnectorRuntime) {
    this.#runtime = runtime;
    const { homeDir, baseEnv, cwd, killGraceMs = 2000 } = options;
    if (homeDir !== undefined) {
      checkPath(NAME, homeDir, "homeDir");
      if (!isAbsolute(homeDir)) throw new UsageError(`${NAME}: homeDir must be absolute, got ${homeDir}`);
    }
    if (baseEnv !== undefined) assertEnv(baseEnv, `${NAME}: baseEnv`);
    if (!Number.isFinite(killGraceMs) || killGraceMs < 0) {
      throw new UsageError(`${NAME}: killGraceMs must be a non-negative number, got ${killGraceMs}`);
    }
    this.#home = homeDir ?? homedir();
    this.#homeOverridden = homeDir !== undefined;
    if (cwd !== undefined) checkPath(NAME, cwd, "cwd");
    this.#cwd = cwd === undefined ? this.#home : resolve(this.#home, cwd);
    this.#baseEnv = baseEnv;
    this.#graceMs = killGraceMs;
  }

  async status(): Promise<ConnectorStatus> {
    const connected = !this.#runtime.closed;
    let user = "";
    try {
      user = userInfo().username;
    } catch {
      // No passwd entry for our uid (some containers): leave the name out.
    }
    return {
      connected,
      detail: connected ? `local: ${user || `uid ${process.getuid?.()}`}@${hostname()}` : "local: closed",
      info: { pid: process.pid, user, host: hostname(), home: this.#home, running: this.#running.size },
    };
  }

  async homeDir(): Promise<string> {
    return this.#home;
  }

  /** Relative paths are relative to the home folder, as they are over SFTP. */
  putFile(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void> {
    return writeFileAtomic(resolve(this.#home, path), data, mode, dl);
  }

  getFile(path: string, dl: Deadline): Promise<Uint8Array> {
    return readWholeFile(resolve(this.#home, path), dl);
  }

  deleteFile(path: string): Promise<void> {
    return deleteWholeFile(resolve(this.#home, path));
  }

  /**
   * Starts `argv` in its own process group, without a shell. A program that cannot start
   * (missing, not executable, bad cwd) gives the result a shell would report instead.
   */
  async #start(
    argv: readonly string[],
    options: Omit<ExecOptions, "signal" | "timeoutMs">,
    withStdin: boolean,
    stdoutTo?: Socket,
  ): Promise<{ child: ChildProcess } | { failed: ExecResult }> {
    const cwd = options.cwd === undefined ? this.#cwd : resolve(this.#home, options.cwd);
    // Build an environment only when something differs from ours: spawning with
    // `env: undefined` inherits process.env at no cost.
    let env: NodeJS.ProcessEnv | undefined;
    if (this.#baseEnv !== undefined || this.#homeOverridden || options.env !== undefined) {
      env = { ...(this.#baseEnv ?? process.env) };
      if (this.#homeOverridden) env["HOME"] = this.#home;
      Object.assign(env, options.env);
    }
    const words = options.loginEnv ? ["/bin/sh", "-lc", 'exec "$@"', "sh", ...argv] : argv;
    const [file, ...args] = words as [string, ...string[]];
    let child: ChildProcess;
    try {
      child = spawnChild(file, args, {
        cwd,
        env,
        // Its own process group, so that ending the command ends everything it started.
        detached: true,
        stdio: [withStdin ? "pipe" : "ignore", stdoutTo ?? "pipe", "pipe"],
      });
    } catch (err) {
      return this.#startFailure(err, file, cwd);
    }
    if (child.pid === undefined) {
      // Run-time spawn errors (ENOENT, EACCES…) arrive as an 'error' event on the next tick.
      const [err] = (await once(child, "error")) as [unknown];
      return this.#startFailure(err, file, cwd);
    }
    return { child };
  }

  async #startFailure(err: unknown, file: string, cwd: string): Promise<{ failed: ExecResult }> {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === "E2BIG") {
      throw new UsageError(`${NAME}: argv and environment are too long for one command`, { cause: err });
    }
    if (code === "ENOENT" || code === "EACCES" || code === "ENOTDIR" || code === "EPERM") {
      // libuv reports a failed chdir and a failed exec alike: look at the folder first.
      const cwdProblem = await stat(cwd).then(
        async (s) =>
          s.isDirectory()
            ? access(cwd, constants.X_OK).then(
                () => null,
                () => "Permission denied",
              )
            : "Not a directory",
        (e: NodeJS.ErrnoException) => (e.code === "EACCES" ? "Permission denied" : "No such file or directory"),
      );
      if (cwdProblem !== null) return { failed: notStarted(1, `${NAME}: cd: ${cwd}: ${cwdProblem}`) };
      if (code === "ENOENT") return { failed: notStarted(127, `${NAME}: ${file}: command not found`) };
      return { failed: notStarted(126, `${NAME}: ${file}: Permission denied`) };
    }
    throw new ConnectorError("UNAVAILABLE", NAME, `cannot start ${file}: ${(err as Error)?.message ?? err}`, {
      cause: err,
      retryable: true,
      details: { errno: code },
    });
  }

  /** close() ran while a command was starting: the new process must not outlive it. */
  #abandonIfClosed(child: ChildProcess, stdout?: SocketStdout): void {
    if (!this.#runtime.closed) return;
    void new ProcessGroup(child, this.#graceMs).end("SIGKILL");
    stdout?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
    throw new ConnectorError("CLOSED", NAME, "connector is closed");
  }

  async exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult> {
    const { stdin } = options;
    const started = await this.#start(argv, options, stdin !== undefined);
    if ("failed" in started) return started.failed;
    this.#abandonIfClosed(started.child);
    return await this.#collect(started.child, stdin, dl.signal, () => dl.error(`${NAME}: exec ${argv[0]}`));
  }

  #collect(
    child: ChildProcess,
    stdin: Uint8Array | string | undefined,
    signal: AbortSignal,
    abortError: () => Error,
  ): Promise<ExecResult> {
    const group = new ProcessGroup(child, this.#graceMs);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
    if (child.stdin) {
      // EPIPE when the command exits without reading its input: not our error to report.
      child.stdin.on("error", () => {});
      child.stdin.end(stdin);
    }
    return new Promise<ExecResult>((resolvePromise, reject) => {
      let settled = false;
      const entry: Running = { group, stop };
      const finish = () => {
        settled = true;
        signal.removeEventListener("abort", onAbort);
        this.#running.delete(entry);
      };
      function stop(error: Error): void {
        if (settled) return;
        finish();
        void group.end().then(() => {
          // A member that escaped the group may still hold our pipes: let go of them.
          child.stdout?.destroy();
          child.stderr?.destroy();
          child.stdin?.destroy();
          reject(error);
        });
      }
      const onAbort = () => stop(abortError());
      this.#running.add(entry);
      signal.addEventListener("abort", onAbort, { once: true });
      void group.closed.then(({ exitCode, signal: endSignal }) => {
        if (settled) return;
        finish();
        resolvePromise({
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
          exitCode,
          signal: endSignal,
        });
      });
    });
  }

  async spawn(argv: readonly string[], options: Omit<ExecOptions, "stdin">): Promise<RemoteProcess> {
    // stdout as a socket this side reads with `onread` (see socket-stdout.ts); a plain pipe
    // when the pair cannot be made.
    const pair = await openSocketStdout().catch(() => undefined);
    let started: { child: ChildProcess } | { failed: ExecResult };
    try {
      started = await this.#start(argv, options, true, pair?.childEnd);
    } catch (err) {
      pair?.stdout.destroy();
      throw err;
    } finally {
      pair?.childEnd.destroy(); // the command has its own copy
    }
    if ("failed" in started) {
      pair?.stdout.destroy();
      return endedProcess(started.failed);
    }
    this.#abandonIfClosed(started.child, pair?.stdout);
    return this.#live(started.child, pair?.stdout);
  }

  #live(child: ChildProcess, socketStdout: SocketStdout | undefined): RemoteProcess {
    const group = new ProcessGroup(child, this.#graceMs, socketStdout?.closed);
    const entry: Running = { group, stop: () => void kill("SIGTERM") };
    this.#running.add(entry);
    const graceMs = this.#graceMs;
    const kill = (signal: NodeJS.Signals = "SIGTERM") => {
      if (group.done) return;
      void group.end(signal).then(() => {
        // Give output in flight a moment, then let go of pipes that a member which left
        // the group may hold, so `exited` settles.
        const timer = setTimeout(() => {
          socketStdout?.destroy();
          child.stdout?.destroy();
          child.stderr?.destroy();
          child.stdin?.destroy();
        }, graceMs);
        timer.unref();
        void group.closed.then(() => clearTimeout(timer));
      });
    };
    // Writes to a process that has exited fail with EPIPE; `exited` reports the ending, and
    // an unhandled stream error must not crash the caller.
    child.stdin!.on("error", () => {});
    const exited: Promise<ProcessExit> = group.closed.then(({ exitCode, signal }) => {
      this.#running.delete(entry);
      return { exitCode, signal };
    });
    return {
      stdin: child.stdin!,
      stdout: socketStdout?.stream ?? child.stdout!,
      stderr: child.stderr!,
      exited,
      kill,
      readStdoutInto: socketStdout && ((reader) => socketStdout.readInto(reader)),
    };
  }

  /** Ends every running command (their operations reject `CLOSED`); resolves once their leaders exited. */
  async close(): Promise<void> {
    const running = [...this.#running];
    for (const entry of running)
      entry.stop(new ConnectorError("CLOSED", NAME, "connector closed while the command ran"));
    await Promise.all(running.map((entry) => entry.group.leaderExited));
  }
}

/**
 * Creates the embedded connector, which runs commands as child processes of this Node
 * process (argv passed as an array, no shell) and reads and writes local files.
 *
 * - `exec` collects stdout/stderr, reports `exitCode` and `signal`, honours `cwd`, `env`,
 *   `stdin`, `loginEnv` (through `/bin/sh -lc`), `timeoutMs` and `signal` — which end the
 *   command's whole process group (SIGTERM, then SIGKILL after `killGraceMs`).
 * - A program that cannot be started is reported as a shell would: exit code 127 (not
 *   found) or 126 (not executable) with the reason on stderr, not as a rejection.
 * - Files are written atomically (temporary file + rename) with `mode` applied whatever the
 *   umask; relative paths are relative to the home folder.
 * - `close()` ends every command still running; later operations reject with `CLOSED`.
 *
 * @example
 * ```ts
 * await using local = localConnector();
 * const r = await local.exec(["python3", "-c", "print(6 * 7)"]);
 * ```
 */
export function localConnector(options: LocalConnectorOptions = {}): LocalConnector {
  return defineConnector((runtime) => new LocalTransport(options, runtime)) as LocalConnector;
}
