import { writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectorError, isSremoteError, raceSignal, UsageError } from "@sremote/core";
import type { ResolvedSettings } from "../config.js";
import type { SshConnectorOptions, SshLogger } from "../options.js";
import { type ChannelSlot, ConnectionPool } from "../pool.js";
import type { CommandChannel, SshTransport, TransportInfo } from "../transport.js";
import type { SshArgsInput } from "./args.js";
import { type AskpassBridge, startAskpass } from "./askpass.js";
import { afterMarker, deleteScript, fileError, homeScript, readScript, writeScript } from "./files.js";
import { OpensshMaster, quietEnv } from "./master.js";
import { cleanupAtExit, makeInstanceDir, sweepStale } from "./private-dir.js";
import { openSession, SessionRefused } from "./session.js";
import { checkOpensshVersion } from "./version.js";

/** Options of {@link opensshTransport}. */
export interface OpensshTransportOptions {
  settings: ResolvedSettings;
  options: SshConnectorOptions;
  maxChannelsPerConnection: number;
  logger: SshLogger | undefined;
}

/** Session refusals tolerated for one open, and the pause before each retry. */
const MAX_REFUSALS = 200;
const REFUSAL_PAUSE_MS = 10;

/** The transport's extra: signal requests are impossible through the ssh client. */
export interface OpensshTransport extends SshTransport {
  readonly signalRequests: false;
  /** The master's PID and control socket (for tests and diagnostics), when connected. */
  readonly master: { pid: number | undefined; socket: string } | undefined;
  /** This instance's private folder, once created. */
  readonly privateDir: string | undefined;
}

/**
 * The system OpenSSH client as transport: one ControlMaster per connector (authenticating
 * once, with everything the user's ssh_config, agent, certificates, Kerberos or prompts
 * need), and every command and file operation as an `ssh` process multiplexed over it.
 */
export function opensshTransport(config: OpensshTransportOptions): OpensshTransport {
  const { settings, options, logger } = config;
  const sshPath = options.sshPath ?? "ssh";
  const label = `${options.username ? `${options.username}@` : ""}${options.host}${options.port ? `:${options.port}` : ""}`;
  if (options.privateKey !== undefined && options.privateKeyPath !== undefined) {
    throw new UsageError("ssh: give privateKey or privateKeyPath, not both");
  }
  if (options.password !== undefined && typeof options.password !== "string") {
    throw new UsageError("ssh: password must be a string");
  }
  if (options.onKeyboardInteractive !== undefined && typeof options.onKeyboardInteractive !== "function") {
    throw new UsageError("ssh: onKeyboardInteractive must be a function");
  }
  const prompts =
    options.password !== undefined || options.onKeyboardInteractive !== undefined || options.passphrase !== undefined;
  let dir: string | undefined;
  let args: SshArgsInput | undefined;
  let askpass: AskpassBridge | undefined;
  let callbackError: Error | undefined;
  let setup: Promise<void> | undefined;
  let closed = false;

  async function answer(prompt: string, kind: string): Promise<string | undefined> {
    if (kind === "confirm") return undefined; // host key or agent confirmations: never "yes"
    if (/passphrase/i.test(prompt)) return options.passphrase;
    if (/'s password: *$/.test(prompt) && options.password !== undefined) return options.password;
    const callback = options.onKeyboardInteractive;
    if (callback) {
      try {
        const t = settings.target;
        const answers = await callback([{ prompt, echo: false }], {
          host: t.hostname,
          port: t.port,
          username: t.username,
          name: "",
          instructions: "",
        });
        if (!Array.isArray(answers) || typeof answers[0] !== "string") {
          throw new UsageError("ssh: onKeyboardInteractive must return one string per prompt");
        }
        return answers[0];
      } catch (err) {
        callbackError = err instanceof Error ? err : new Error(String(err));
        return undefined;
      }
    }
    if (/password/i.test(prompt)) return options.password;
    return undefined;
  }

  function prepare(): Promise<void> {
    setup ??= (async () => {
      await checkOpensshVersion(sshPath, prompts);
      await sweepStale(sshPath);
      dir = makeInstanceDir();
      cleanupAtExit({ dir });
      let identityFile = options.privateKeyPath;
      if (options.privateKey !== undefined) {
        if (typeof options.privateKey !== "string" && !(options.privateKey instanceof Uint8Array)) {
          throw new UsageError("ssh: privateKey must be a string or bytes");
        }
        identityFile = join(dir, "id");
        const text = Buffer.from(options.privateKey);
        writeFileSync(identityFile, text.at(-1) === 0x0a ? text : Buffer.concat([text, Buffer.from("\n")]), {
          mode: 0o600,
        });
      }
      args = { options, settings, identityFile, controlPath: join(dir, "c", "%C") };
      if (prompts) askpass = await startAskpass(dir, answer);
    })();
    setup.catch(() => {
      setup = undefined;
    });
    return setup;
  }

  const pool = new ConnectionPool<OpensshMaster>(
    async (closing) => {
      await prepare();
      callbackError = undefined;
      return OpensshMaster.start(
        {
          sshPath,
          args: args as SshArgsInput,
          dir: dir as string,
          prompts,
          env: quietEnv(askpass?.env),
          label,
          connectTimeoutMs: settings.connectTimeoutMs,
          logger,
          authHint: () =>
            callbackError ? `keyboard-interactive callback failed: ${callbackError.message}` : undefined,
        },
        closing,
      );
    },
    { maxConnections: 1, maxChannelsPerConnection: config.maxChannelsPerConnection, logger },
  );

  async function open(command: string, signal: AbortSignal, urgent: boolean, stream: boolean): Promise<CommandChannel> {
    for (let refusals = 0; ; refusals++) {
      const slot: ChannelSlot<OpensshMaster> = await pool.acquire(signal, urgent || refusals > 0);
      const master = slot.connection;
      try {
        const channel = await openSession(sshPath, args as SshArgsInput, master, command, () => slot.release(), stream);
        slot.opened();
        return channel;
      } catch (err) {
        if (err instanceof SessionRefused && master.alive && slot.refused() && refusals < MAX_REFUSALS) {
          await sleep(REFUSAL_PAUSE_MS);
          continue;
        }
        slot.release();
        if (isSremoteError(err)) throw err;
        throw new ConnectorError("UNAVAILABLE", "ssh", `cannot open a session on ${label}: ${(err as Error).message}`, {
          cause: err,
          retryable: true,
        });
      }
    }
  }

  /** Runs a file script to its end: stdout after the marker, stderr, status. */
  async function runScript(
    script: string,
    input: Uint8Array | undefined,
    signal: AbortSignal,
  ): Promise<{ stdout: Buffer; stderr: string; status: number }> {
    const channel = await open(script, signal, false, false);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    channel.stdout.on("data", (c: Buffer) => out.push(c));
    channel.stderr.on("data", (c: Buffer) => err.push(c));
    channel.stdin.end(input);
    const ended = (s: NodeJS.ReadableStream) => new Promise<void>((resolve) => s.once("end", () => resolve()));
    const work = Promise.all([channel.done, ended(channel.stdout), ended(channel.stderr)]);
    let end: Awaited<typeof channel.done>;
    try {
      [end] = await raceSignal(work, signal);
    } catch (e) {
      channel.close();
      throw e;
    }
    if (end.lost) throw end.lost;
    if (end.exitCode === null) {
      throw new ConnectorError("REMOTE_IO", "ssh", `file operation on ${label} ended without a status`);
    }
    return {
      stdout: afterMarker(Buffer.concat(out)),
      stderr: Buffer.concat(err).toString("utf8"),
      status: end.exitCode,
    };
  }

  return {
    signalRequests: false,

    get master() {
      const m = pool.connections[0];
      return m ? { pid: m.pid, socket: m.socket } : undefined;
    },

    get privateDir() {
      return dir;
    },

    async connect(signal) {
      await pool.connection(signal);
    },

    openCommand(command, signal, urgent = false, stream = false) {
      return open(command, signal, urgent, stream);
    },

    async readFile(path, signal) {
      const r = await runScript(readScript(path), undefined, signal);
      const err = fileError("read", path, r.status, r.stderr);
      if (err) throw err;
      return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
    },

    async writeFile(path, data, mode, signal) {
      const r = await runScript(writeScript(path, data.byteLength, mode), data, signal);
      const err = fileError("write", path, r.status, r.stderr);
      if (err) throw err;
    },

    async deleteFile(path, signal) {
      const r = await runScript(deleteScript(path), undefined, signal);
      const err = fileError("delete", path, r.status, r.stderr);
      if (err) throw err;
    },

    async homeDir(signal) {
      const r = await runScript(homeScript(), undefined, signal);
      const home = r.stdout.toString("utf8").replace(/\n$/, "");
      if (r.status !== 0 || !home.startsWith("/")) {
        throw new ConnectorError("REMOTE_IO", "ssh", `cannot find the login folder on ${label}: ${r.stderr.trim()}`);
      }
      return home;
    },

    get connected() {
      return pool.connections.some((c) => c.alive);
    },

    info(): TransportInfo {
      return {
        transport: "openssh",
        connections: pool.connections.length,
        activeChannels: pool.activeChannels,
        queuedChannels: pool.queued,
        channelCaps: pool.capacities,
        masterPid: pool.connections[0]?.pid,
      };
    },

    async close() {
      if (closed) return;
      closed = true;
      await pool.close();
      await setup?.catch(() => {});
      await askpass?.close();
      if (dir) {
        await rm(dir, { recursive: true, force: true });
        cleanupAtExit({ dir }, false);
      }
    },
  };
}
