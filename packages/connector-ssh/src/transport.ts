import type { Readable, Writable } from "node:stream";
import type { ConnectorError, RemoteProcess } from "@sremote/core";

/** How a command channel ended. */
export interface ChannelEnd {
  /** Exit status, when the server reported one. */
  exitCode: number | null;
  /** `SIGKILL`-style name of the signal that ended the command, when reported. */
  signal: string | null;
  /** Set when the connection dropped before the command's end was reported. */
  lost?: ConnectorError | undefined;
}

/** A running remote command: one exec channel (or one multiplexed `ssh` process). */
export interface CommandChannel {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Settles once the channel has closed; never rejects. */
  readonly done: Promise<ChannelEnd>;
  /** Asks the server to deliver a signal (`"KILL"`, `"TERM"`…); servers may ignore it. */
  signal(name: string): void;
  /** Closes the channel (does not by itself end the remote process). */
  close(): void;
  /** Present when stdout can be read into caller memory (`RemoteProcess.readStdoutInto`). */
  readonly readStdoutInto?: RemoteProcess["readStdoutInto"];
}

/** Facts for `status()`. */
export interface TransportInfo {
  transport: string;
  connections: number;
  activeChannels: number;
  queuedChannels: number;
  hostKeyFingerprint?: string | undefined;
  [key: string]: unknown;
}

/**
 * The byte-moving layer under {@link sshConnector}: everything that depends on the SSH
 * implementation. The connector above it builds command lines, ends remote processes,
 * applies timeouts and shapes results, so a second transport (the system OpenSSH client
 * with connection sharing, for certificates, Kerberos and MFA that ssh2 cannot do) plugs
 * in behind the same options without touching that logic.
 *
 * Every method rejects with `ConnectorError`s (`CONNECTION_LOST`, `FILE_NOT_FOUND`…) or
 * with `signal`'s reason once it fired.
 */
export interface SshTransport {
  /** Makes sure one authenticated connection exists. */
  connect(signal: AbortSignal): Promise<void>;
  /**
   * Runs `command` (one shell command line) on a new channel. `urgent` jumps the channel
   * queue; `stream` says the caller reads stdout as it comes (a spawned process), so a
   * transport that can should offer `readStdoutInto` — not worth its set-up for a command
   * whose output is collected.
   */
  openCommand(command: string, signal: AbortSignal, urgent?: boolean, stream?: boolean): Promise<CommandChannel>;
  readFile(path: string, signal: AbortSignal): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array, mode: number, signal: AbortSignal): Promise<void>;
  /** Deletes a file; a missing file is not an error. */
  deleteFile(path: string, signal: AbortSignal): Promise<void>;
  /** The login folder, as the server reports it. */
  homeDir(signal: AbortSignal): Promise<string>;
  /**
   * False when the transport cannot deliver SSH signal requests (the system ssh client):
   * the connector then ends commands by process group at once. Default true.
   */
  readonly signalRequests?: boolean;
  /** True while at least one connection is up. */
  readonly connected: boolean;
  info(): TransportInfo;
  /** Closes every connection; pending operations reject with `CLOSED`. Idempotent. */
  close(): Promise<void>;
}
