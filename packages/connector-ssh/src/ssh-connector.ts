import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type Connector,
  type ConnectorCapabilities,
  type ConnectorDefinition,
  ConnectorError,
  type ConnectorRuntime,
  type ConnectorStatus,
  type Deadline,
  defineConnector,
  type ExecOptions,
  type ExecResult,
  isSremoteError,
  type OperationOptions,
  type ProcessExit,
  type RemoteProcess,
  raceSignal,
  UsageError,
} from "@sremote/core";
import { type ResolvedSettings, resolveSettings } from "./config.js";
import { retryNothingRan } from "./connect-retry.js";
import type { SshConnectorOptions, SshLogger } from "./options.js";
import { killCommandLine, PidScanner, remoteCommandLine, takePidMarker } from "./remote-command.js";
import { createTransport } from "./select-transport.js";
import type { ChannelEnd, CommandChannel, SshTransport } from "./transport.js";

const NAME = "ssh";

/** After a KILL signal request, how long to wait for the channel before also killing by PID. */
const SIGNAL_REQUEST_GRACE_MS = 300;
/** After `kill()`, how long before escalating to SIGKILL. */
const KILL_GRACE_MS = 2_000;
/** Bound on waiting for a killed command's channel to close. */
const CLOSE_WAIT_MS = 3_000;

/** The SSH connector: a {@link Connector} whose `spawn` always exists. */
export interface SshConnector extends Connector {
  /**
   * Starts `argv` on its own exec channel with live streams: `stdout` is the channel
   * itself (no copy, no extra buffering). `signal` and `timeoutMs` bound the start only;
   * the process then runs until it exits, `kill()` or `close()`. `stdin.destroy()` closes
   * the whole channel. Read (or `resume()`) both stdout and stderr: like a Node child
   * process, `exited` settles once both have ended.
   */
  spawn(argv: readonly string[], options?: Omit<ExecOptions, "stdin">): Promise<RemoteProcess>;
  /** The resolved connection settings (host, user, port, jumps, timeouts…), never secrets. */
  readonly settings: Readonly<ResolvedSettings>;
}

/** A command this connector started and has not seen end. */
interface Running {
  channel: CommandChannel;
  /** Resolves with the remote shell's PID once the marker line arrived (undefined if it never does). */
  pid: Promise<number | undefined>;
  ended: boolean;
  /** Ended by the connector's close(): report CLOSED, not the kill. */
  closedByConnector: boolean;
}

function positiveInt(value: number | undefined, what: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw new UsageError(`${NAME}: ${what} must be a positive integer, got ${value}`);
  return value;
}

function delay(ms: number): Promise<void> {
  return sleep(ms, undefined, { ref: false });
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, delay(ms).then(() => undefined)]);
}

function streamEnded(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once("end", () => resolve());
    stream.once("close", () => resolve());
  });
}

/**
 * Once the channel is done: the end of `stream` if someone reads it; at once if nobody does
 * (a stream never read never emits `end`, and waiting for it would hang `exited` — its data
 * stays buffered for a late reader).
 */
function readEnded(stream: Readable): Promise<void> {
  if (stream.readableFlowing !== true && stream.listenerCount("readable") === 0) return Promise.resolve();
  return streamEnded(stream);
}

/** The SSH transport; core supplies checks, deadlines, CLOSED and the close protocol. */
class SshDefinition implements ConnectorDefinition<{ settings: Readonly<ResolvedSettings> }> {
  readonly name = NAME;
  readonly capabilities: ConnectorCapabilities;
  readonly settings: Readonly<ResolvedSettings>;
  readonly extra: { settings: Readonly<ResolvedSettings> };
  readonly #runtime: ConnectorRuntime;
  readonly #transport: SshTransport;
  readonly #logger: SshLogger | undefined;
  readonly #running = new Set<Running>();

  constructor(options: SshConnectorOptions, runtime: ConnectorRuntime) {
    if (typeof options !== "object" || options === null) throw new UsageError(`${NAME}: options must be an object`);
    this.#runtime = runtime;
    this.settings = Object.freeze(resolveSettings(options));
    this.extra = { settings: this.settings };
    this.#logger = options.logger;
    const { transport, signals } = createTransport({
      settings: this.settings,
      options,
      maxConnections: positiveInt(options.maxConnections, "maxConnections", 4),
      maxChannelsPerConnection: positiveInt(options.maxChannelsPerConnection, "maxChannelsPerConnection", 10),
      logger: options.logger,
    });
    this.#transport = transport;
    // Per instance: the system ssh client cannot tell a signal from an exit status.
    this.capabilities = Object.freeze({ spawn: true, stdin: true, signals, fileModes: true });
  }

  connect(dl: Deadline): Promise<void> {
    return this.#transport.connect(dl.signal);
  }

  async status(options: OperationOptions = {}): Promise<ConnectorStatus> {
    const t = this.settings.target;
    const where = `${t.username}@${t.hostname}:${t.port}`;
    const base = {
      host: t.hostname,
      port: t.port,
      user: t.username,
      jumps: this.settings.jumps.map((j) => `${j.username}@${j.hostname}:${j.port}`),
      hostKeyPolicy: this.settings.hostKeyPolicy,
      sshConfig: this.settings.configPath ?? null,
      running: this.#running.size,
    };
    if (this.#runtime.closed) return { connected: false, detail: `ssh: ${where} (closed)`, info: base };
    try {
      await this.#runtime.run("connect", options, (dl) => this.connect(dl));
    } catch (err) {
      return {
        connected: false,
        detail: `ssh: ${where}: ${(err as Error).message}`,
        info: { ...base, error: isSremoteError(err) ? err.code : "INTERNAL" },
      };
    }
    const info = this.#transport.info();
    return {
      connected: this.#transport.connected,
      detail: `ssh: ${where} via ${info.transport}, ${info.connections} connection(s), ${info.activeChannels} channel(s) open`,
      info: { ...base, ...info },
    };
  }

  homeDir(dl: Deadline): Promise<string> {
    return this.#transport.homeDir(dl.signal);
  }

  putFile(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void> {
    return this.#transport.writeFile(path, data, mode, dl.signal);
  }

  getFile(path: string, dl: Deadline): Promise<Uint8Array> {
    return this.#transport.readFile(path, dl.signal);
  }

  deleteFile(path: string, dl: Deadline): Promise<void> {
    return this.#transport.deleteFile(path, dl.signal);
  }

  /** Registers a channel; `collect` attaches the stdout scanner now, `stream` reads only the marker. */
  #track(
    channel: CommandChannel,
    mode: "collect" | "stream",
  ): Running & { scanner?: PidScanner; marker?: ReturnType<typeof takePidMarker> } {
    let setPid: (pid: number | undefined) => void = () => {};
    const pid = new Promise<number | undefined>((resolve) => {
      setPid = resolve;
    });
    const run: Running & { scanner?: PidScanner; marker?: ReturnType<typeof takePidMarker> } = {
      channel,
      pid,
      ended: false,
      closedByConnector: false,
    };
    this.#running.add(run);
    void channel.done.then(() => {
      run.ended = true;
      setPid(undefined);
      this.#running.delete(run);
    });
    if (mode === "collect") {
      const scanner = new PidScanner(setPid);
      run.scanner = scanner;
    } else {
      run.marker = takePidMarker(channel.stdout);
      void run.marker.then((m) => setPid(m.pid));
    }
    return run;
  }

  /** Sends `signal` to the command's process group; SIGKILL first as an SSH signal request. */
  async #signal(run: Running, signal: string): Promise<void> {
    if (run.ended) return;
    const name = signal.replace(/^SIG/, "");
    if (name === "KILL" && this.#transport.signalRequests !== false) {
      // OpenSSH ≥ 7.9 delivers this to the whole process group at once.
      run.channel.signal("KILL");
      if ((await within(run.channel.done, SIGNAL_REQUEST_GRACE_MS)) !== undefined) return;
    }
    const pid = await within(run.pid, CLOSE_WAIT_MS);
    if (run.ended) return;
    if (pid === undefined) {
      run.channel.signal(name);
      if (this.#transport.signalRequests === false) run.channel.close();
      return;
    }
    // A second channel runs `kill` on the group: works whatever the server does with signal requests.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10_000);
    try {
      const killer = await this.#transport.openCommand(killCommandLine(pid, name), controller.signal, true);
      killer.stdin.end();
      killer.stdout.resume();
      killer.stderr.resume();
      await killer.done;
    } catch (err) {
      this.#logger?.debug?.(`ssh: could not send ${name} to remote process group ${pid}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends a command and everything it started, then closes its channel. */
  async #terminate(run: Running): Promise<void> {
    await this.#signal(run, "SIGKILL");
    await within(run.channel.done, CLOSE_WAIT_MS);
    run.channel.close();
  }

  /** Opens a channel for `command`; a channel that opens after the deadline is ended at once. */
  async #start(command: string, dl: Deadline, what: string, mode: "collect" | "stream") {
    const opening = this.#transport.openCommand(command, dl.signal, false, mode === "stream");
    let channel: CommandChannel;
    try {
      channel = await raceSignal(opening, dl.signal);
    } catch (err) {
      if (dl.signal.aborted) {
        opening.then(
          (late) => {
            const run = this.#track(late, "collect");
            late.stdout.on("data", (c: Buffer) => run.scanner?.push(c));
            late.stderr.resume();
            void this.#terminate(run);
          },
          () => {},
        );
        throw dl.error(what);
      }
      throw err;
    }
    const run = this.#track(channel, mode);
    if (this.#runtime.closed) {
      run.closedByConnector = true;
      void this.#terminate(run);
      throw new ConnectorError("CLOSED", NAME, "connector is closed");
    }
    return run;
  }

  async exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult> {
    const command = remoteCommandLine(argv, options);
    const what = `${NAME}: exec ${argv[0]}`;
    const run = await this.#start(command, dl, what, "collect");
    return await this.#collect(run, options.stdin, dl, what);
  }

  async #collect(
    run: Running & { scanner?: PidScanner },
    stdin: Uint8Array | string | undefined,
    dl: Deadline,
    what: string,
  ): Promise<ExecResult> {
    const { channel } = run;
    const scanner = run.scanner as PidScanner;
    const stderr: Buffer[] = [];
    channel.stdout.on("data", (chunk: Buffer) => scanner.push(chunk));
    channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    channel.stdin.end(stdin === undefined ? undefined : typeof stdin === "string" ? Buffer.from(stdin) : stdin);
    const aborted = new Promise<"aborted">((resolve) => {
      if (dl.signal.aborted) resolve("aborted");
      dl.signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    });
    const finished = Promise.all([channel.done, streamEnded(channel.stdout), streamEnded(channel.stderr)]).then(
      ([end]) => end,
    );
    const outcome: ChannelEnd | "aborted" = await Promise.race([finished, aborted]);
    if (outcome === "aborted") {
      await this.#terminate(run);
      throw dl.error(what);
    }
    if (run.closedByConnector) throw new ConnectorError("CLOSED", NAME, `connector closed while ${what} ran`);
    if (outcome.lost) throw outcome.lost;
    if (outcome.exitCode === null && outcome.signal === null) {
      throw new ConnectorError("COMMAND_FAILED", NAME, `${what}: the server closed the channel without an exit status`);
    }
    return {
      stdout: scanner.finish().toString("utf8"),
      stderr: Buffer.concat(stderr).toString("utf8"),
      exitCode: outcome.exitCode,
      signal: outcome.signal,
    };
  }

  async spawn(argv: readonly string[], options: Omit<ExecOptions, "stdin">, dl: Deadline): Promise<RemoteProcess> {
    const command = remoteCommandLine(argv, options);
    const what = `${NAME}: spawn ${argv[0]}`;
    const run = await this.#start(command, dl, what, "stream");
    let marker: Awaited<NonNullable<typeof run.marker>>;
    try {
      // The marker is the first line the shell prints: waiting for it costs no extra round trip.
      marker = await raceSignal(run.marker as NonNullable<typeof run.marker>, dl.signal);
    } catch (err) {
      void this.#terminate(run);
      if (dl.signal.aborted) throw dl.error(what);
      throw err;
    }
    return this.#live(run, marker.ended ?? run.channel.stdout);
  }

  #live(run: Running, stdout: Readable): RemoteProcess {
    const { channel } = run;
    let escalation: ReturnType<typeof setTimeout> | undefined;
    // As with Node's child processes, `exited` also waits until the streams being read have
    // been read to their end, so no output is still pending when it settles; streams nobody
    // reads do not hold it up.
    const ended = channel.done.then((end) =>
      Promise.all([readEnded(stdout), readEnded(channel.stderr)]).then(() => [end] as const),
    );
    const exited: Promise<ProcessExit> = ended.then(([end]) => {
      if (escalation) clearTimeout(escalation);
      if (end.lost) return { exitCode: null, signal: null, error: end.lost };
      if (run.closedByConnector && end.exitCode === null && end.signal === null) {
        return { exitCode: null, signal: null, error: new ConnectorError("CLOSED", NAME, "connector closed") };
      }
      return { exitCode: end.exitCode, signal: end.signal };
    });
    let killing = false;
    const kill = (signal: NodeJS.Signals = "SIGTERM") => {
      if (run.ended) return;
      if (signal === "SIGKILL") {
        void this.#terminate(run);
        return;
      }
      if (killing) return;
      killing = true;
      void this.#signal(run, signal).then(() => {
        escalation = setTimeout(() => {
          if (!run.ended) void this.#terminate(run);
        }, KILL_GRACE_MS);
        escalation.unref?.();
      });
    };
    return {
      stdin: channel.stdin,
      stdout,
      stderr: channel.stderr,
      exited,
      kill,
      // Not when stdout is a stand-in for a stream that ended before the start marker.
      readStdoutInto: stdout === channel.stdout ? channel.readStdoutInto : undefined,
    };
  }

  /** Ends every running command (their operations reject `CLOSED`), then the connections. */
  async close(): Promise<void> {
    const runs = [...this.#running];
    for (const run of runs) run.closedByConnector = true;
    await Promise.all(runs.map((run) => this.#terminate(run)));
    await this.#transport.close();
  }
}

/**
 * Creates an SSH connector: one authenticated connection (more when many channels are
 * needed), SFTP for files, an exec channel per command, a long-lived exec channel per
 * spawned process. Connects lazily on first use; verifies the host key against
 * known_hosts before anything runs.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for bad options or an unreadable ssh config.
 */
export function sshConnector(options: SshConnectorOptions): SshConnector {
  const connector = defineConnector((runtime) => new SshDefinition(options, runtime)) as SshConnector;
  return retryNothingRan(connector, options?.connectAttempts, options?.logger);
}
