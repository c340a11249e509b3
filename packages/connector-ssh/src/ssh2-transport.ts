import { setTimeout as sleep } from "node:timers/promises";
import { ConnectorError, isSremoteError, raceSignal } from "@sremote/core";
import type { ClientChannel, SFTPWrapper } from "ssh2";

import type { ResolvedSettings } from "./config.js";
import { type ConnectPlan, type ObservedChannel, openConnection, type Ssh2Connection } from "./connection.js";
import { readKnownHosts } from "./known-hosts.js";
import type { SshConnectorOptions, SshLogger } from "./options.js";
import { type ChannelSlot, ConnectionPool } from "./pool.js";
import { call, readWhole, unlinkQuietly, writeAtomically } from "./sftp-files.js";
import type { ChannelEnd, CommandChannel, SshTransport, TransportInfo } from "./transport.js";

/** Options of {@link ssh2Transport}. */
export interface Ssh2TransportOptions {
  settings: ResolvedSettings;
  options: SshConnectorOptions;
  maxConnections: number;
  maxChannelsPerConnection: number;
  logger: SshLogger | undefined;
}

/** Channel refusals tolerated for one open, and the pause before each retry. */
const MAX_REFUSALS = 200;
const REFUSAL_PAUSE_MS = 10;

function isChannelRefusal(err: unknown): boolean {
  return err instanceof Error && /channel open fail/i.test(err.message);
}

/** ssh2 internals that {@link sendSignal} reaches for. */
interface ChannelInternals {
  outgoing?: { id?: number; state?: string };
  _client?: { _protocol?: { signal?: (id: number, name: string) => void } };
}

/**
 * Sends an SSH "signal" channel request. ssh2's `channel.signal()` silently does nothing
 * once our side sent EOF (stdin ended), which is exactly when an exec is waiting for its
 * command; the request is still valid then, so send it through ssh2's protocol object.
 */
function sendSignal(channel: ClientChannel, name: string): void {
  const internals = channel as unknown as ChannelInternals;
  const state = internals.outgoing?.state;
  const id = internals.outgoing?.id;
  const protocol = internals._client?._protocol;
  try {
    if ((state === "open" || state === "eof") && id !== undefined && typeof protocol?.signal === "function") {
      protocol.signal(id, name);
    } else channel.signal(name);
  } catch {
    // The channel closed meanwhile.
  }
}

/** A channel wrapped for the connector: `done` settles once, with the loss error if the connection dropped. */
function wrapChannel(observed: ObservedChannel, slot: ChannelSlot<Ssh2Connection>): CommandChannel {
  const { channel } = observed;
  // Counted before anything can release the slot: a quick command may already be closed.
  slot.opened();
  const done = new Promise<ChannelEnd>((resolve) => {
    let lost: ChannelEnd["lost"];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      unsubscribe();
      slot.release();
      const { code, signal } = observed.exit;
      // An exit already reported is the truth, even if the connection dropped right after.
      resolve({ exitCode: code, signal, lost: code === null && signal === null ? lost : undefined });
    };
    const unsubscribe = slot.connection.onLost((error) => {
      lost = error;
      // Writes to a dead channel would wait forever: fail them.
      channel.destroy();
      setImmediate(finish);
    });
    void observed.closed.then(finish);
  });
  // ssh2 emits stream errors (e.g. writes after close) that would otherwise crash the process.
  channel.on("error", () => {});
  channel.stderr.on("error", () => {});
  return {
    stdin: channel,
    stdout: channel,
    stderr: channel.stderr,
    done,
    signal: (name) => sendSignal(channel, name),
    close: () => {
      try {
        channel.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/**
 * The ssh2 transport: a pool of ssh2 connections (each capped at the server's
 * `MaxSessions` channels), exec channels for commands, one long-lived SFTP channel per
 * connection for files (it counts against that connection's cap).
 */
export function ssh2Transport(config: Ssh2TransportOptions): SshTransport {
  const { settings, logger } = config;
  let knownHosts: Awaited<ReturnType<typeof readKnownHosts>> | undefined;
  let lastFingerprint: string | undefined;
  const sftpSlots = new Map<Ssh2Connection, ChannelSlot<Ssh2Connection>>();

  const pool = new ConnectionPool<Ssh2Connection>(
    async (closing) => {
      // Re-read known_hosts per connection: accept-new may have added a key meanwhile.
      knownHosts = await readKnownHosts(settings.knownHostsFiles);
      const plan: ConnectPlan = { settings, options: config.options, knownHosts, logger };
      const controller = new AbortController();
      const timer = setTimeout(
        () =>
          controller.abort(
            new ConnectorError(
              "CONNECT_TIMEOUT",
              "ssh",
              `connecting to ${settings.target.username}@${settings.target.hostname}:${settings.target.port} timed out after ${settings.connectTimeoutMs} ms (TCP, handshake and authentication)`,
              { retryable: true, details: { host: settings.target.hostname, port: settings.target.port } },
            ),
          ),
        settings.connectTimeoutMs,
      );
      try {
        const conn = await openConnection(plan, AbortSignal.any([controller.signal, closing]));
        lastFingerprint = conn.hostKeyFingerprint;
        logger?.debug?.(`ssh: connection ${conn.id} to ${conn.label} ready`);
        return conn;
      } finally {
        clearTimeout(timer);
      }
    },
    {
      maxConnections: config.maxConnections,
      maxChannelsPerConnection: config.maxChannelsPerConnection,
      logger,
    },
  );

  /**
   * Acquires a slot and runs `open` on its connection. A channel refused by the server
   * (its MaxSessions below our cap, or a just-closed channel not yet freed there) is queued
   * again after a short pause: nothing ran. Gives up after {@link MAX_REFUSALS}.
   */
  async function withChannel<T>(
    signal: AbortSignal,
    urgent: boolean,
    what: string,
    open: (slot: ChannelSlot<Ssh2Connection>) => Promise<T>,
  ): Promise<T> {
    for (let refusals = 0; ; refusals++) {
      const slot = await pool.acquire(signal, urgent || refusals > 0);
      const conn = slot.connection;
      try {
        return await open(slot);
      } catch (err) {
        if (isChannelRefusal(err) && conn.alive && slot.refused() && refusals < MAX_REFUSALS) {
          await sleep(REFUSAL_PAUSE_MS);
          continue;
        }
        slot.release();
        if (isSremoteError(err)) throw err;
        throw (
          conn.endError ??
          new ConnectorError("UNAVAILABLE", "ssh", `cannot open ${what} on ${conn.label}: ${(err as Error).message}`, {
            cause: err,
            retryable: true,
          })
        );
      }
    }
  }

  function openChannel(command: string, signal: AbortSignal, urgent: boolean): Promise<CommandChannel> {
    return withChannel(signal, urgent, "a channel", async (slot) =>
      wrapChannel(await slot.connection.exec(command), slot),
    );
  }

  async function sftpSession(signal: AbortSignal): Promise<{ conn: Ssh2Connection; sftp: SFTPWrapper }> {
    for (;;) {
      const existing = pool.connections.find((c) => c.alive && c.sftp);
      if (existing?.sftp) {
        try {
          return { conn: existing, sftp: await raceSignal(existing.sftp, signal) };
        } catch (err) {
          if (signal.aborted) throw err;
          continue;
        }
      }
      let reused = false;
      const session = await withChannel(signal, false, "an SFTP session", async (slot) => {
        const conn = slot.connection;
        if (conn.sftp) {
          reused = true;
          slot.release();
          return { conn, sftp: await conn.sftp };
        }
        const opening = conn.openSftp();
        conn.sftp = opening;
        let sftp: SFTPWrapper;
        try {
          sftp = await opening;
        } catch (err) {
          conn.sftp = undefined;
          throw err;
        }
        slot.opened();
        sftpSlots.set(conn, slot);
        const forget = () => {
          if (conn.sftp === opening) conn.sftp = undefined;
          sftpSlots.delete(conn);
          slot.release();
        };
        sftp.on("close", forget);
        sftp.on("error", () => {});
        conn.onLost(forget);
        return { conn, sftp };
      }).catch((err: unknown) => {
        if (reused && !signal.aborted) return undefined;
        throw err;
      });
      if (session) return session;
    }
  }

  return {
    async connect(signal) {
      await pool.connection(signal);
    },

    openCommand(command, signal, urgent = false) {
      return openChannel(command, signal, urgent);
    },

    async readFile(path, signal) {
      const { conn, sftp } = await sftpSession(signal);
      const work = readWhole(conn, sftp, path);
      work.catch(() => {});
      return raceSignal(work, signal);
    },

    async writeFile(path, data, mode, signal) {
      const { conn, sftp } = await sftpSession(signal);
      const work = writeAtomically(conn, sftp, path, data, mode, signal);
      work.catch(() => {});
      return raceSignal(work, signal);
    },

    async deleteFile(path, signal) {
      const { conn, sftp } = await sftpSession(signal);
      const work = unlinkQuietly(conn, sftp, path);
      work.catch(() => {});
      return raceSignal(work, signal);
    },

    async homeDir(signal) {
      const { conn, sftp } = await sftpSession(signal);
      return raceSignal(
        call<string>(conn, "realpath", ".", (cb) => sftp.realpath(".", cb)),
        signal,
      );
    },

    get connected() {
      return pool.connections.some((c) => c.alive);
    },

    info(): TransportInfo {
      return {
        transport: "ssh2",
        connections: pool.connections.length,
        activeChannels: pool.activeChannels,
        queuedChannels: pool.queued,
        sftpSessions: sftpSlots.size,
        channelCaps: pool.capacities,
        hostKeyFingerprint: lastFingerprint,
      };
    },

    close() {
      return pool.close();
    },
  };
}
