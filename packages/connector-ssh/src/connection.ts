// ssh2 ships no types: this package's own declarations, referenced so that programs
// compiling these sources from another package (the @sremote/source condition) see them.
import { connect as netConnect, Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ConnectorError } from "@sremote/core";
import ssh2, {
  type ClientChannel,
  type ServerHostKeyAlgorithm,
  type SFTPWrapper,
  type Client as Ssh2Client,
} from "ssh2";
import { nudgeAcksAfterAuth } from "./ack-nudge.js";
import { type AuthPlan, buildAuthPlan, opensshHint } from "./auth.js";
import type { ResolvedHost, ResolvedSettings } from "./config.js";
import { decideHostKey } from "./host-key.js";
import { type KnownHostEntry, knownHostName, knownKeyTypes, preferredHostKeyAlgorithms } from "./known-hosts.js";
import type { SshConnectorOptions, SshLogger } from "./options.js";

let nextConnectionId = 1;

/** An exec channel whose exit and close were watched from the moment it opened. */
export interface ObservedChannel {
  channel: ClientChannel;
  /** Exit status or signal, once reported. */
  exit: { code: number | null; signal: string | null };
  /**
   * Resolves when the server closed the channel. ssh2's own 'close' event waits until the
   * reader consumed stdout; this does not, so a channel nobody reads still frees its slot.
   */
  closed: Promise<void>;
}

function observeChannel(channel: ClientChannel): ObservedChannel {
  let serverClosed: () => void = () => {};
  const observed: ObservedChannel = {
    channel,
    exit: { code: null, signal: null },
    closed: new Promise((resolve) => {
      serverClosed = resolve;
    }),
  };
  channel.on("exit", (code: number | null, signal?: string) => {
    if (typeof code === "number") observed.exit.code = code;
    else if (signal) observed.exit.signal = signal;
  });
  // ssh2 marks the channel closed, then ends its readable side with push(null).
  const internals = channel as unknown as { incoming?: { state?: string } };
  const push = channel.push.bind(channel);
  channel.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (chunk === null && internals.incoming?.state === "closed") serverClosed();
    return push(chunk, encoding);
  };
  channel.once("close", () => serverClosed());
  return observed;
}

function hostLabel(h: ResolvedHost): string {
  return `${h.username}@${h.hostname}:${h.port}`;
}

/**
 * One authenticated SSH connection (through its jump hosts, if any). It opens exec
 * channels and one SFTP session; when the transport drops, it tells its listeners once,
 * with a `CONNECTION_LOST` error, before ssh2 closes the channels.
 */
export class Ssh2Connection {
  readonly id = nextConnectionId++;
  /** Lost or closed: no new channels. */
  private dead: ConnectorError | undefined;
  private readonly lostListeners = new Set<(error: ConnectorError) => void>();
  private lastError: Error | undefined;
  private closing = false;
  /** The SFTP session, opened on first use. */
  sftp: Promise<SFTPWrapper> | undefined;

  constructor(
    private readonly client: Ssh2Client,
    private readonly chain: readonly Ssh2Client[],
    readonly label: string,
    readonly hostKeyFingerprint: string,
    private readonly logger: SshLogger | undefined,
  ) {
    client.on("error", (err: Error) => {
      this.lastError = err;
    });
    client.on("close", () => this.markDead());
    for (const hop of chain) hop.on("close", () => this.markDead());
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  private markDead(): void {
    if (this.dead) return;
    const why = this.lastError ? `: ${this.lastError.message}` : "";
    this.dead = this.closing
      ? new ConnectorError("CLOSED", "ssh", `connection to ${this.label} closed`)
      : new ConnectorError("CONNECTION_LOST", "ssh", `connection to ${this.label} lost${why}`, {
          cause: this.lastError,
          details: { host: this.label, connection: this.id },
        });
    if (!this.closing) this.logger?.warn(this.dead.message, { connection: this.id });
    for (const fn of this.lostListeners) fn(this.dead);
    this.lostListeners.clear();
    for (const c of [this.client, ...this.chain]) c.destroy();
  }

  /** Calls `fn` once when the connection drops (at once if it already has). Returns an unsubscribe. */
  onLost(fn: (error: ConnectorError) => void): () => void {
    if (this.dead) {
      fn(this.dead);
      return () => {};
    }
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /** The error that ended this connection, if it ended. */
  get endError(): ConnectorError | undefined {
    return this.dead;
  }

  /**
   * Opens an exec channel running `command` through the user's shell. The channel's exit
   * and close are observed from inside ssh2's callback: a quick command's exit status and
   * close may be parsed from the same packet batch, before a promise continuation runs.
   */
  exec(command: string): Promise<ObservedChannel> {
    return new Promise((resolve, reject) => {
      if (this.dead) {
        reject(this.dead);
        return;
      }
      try {
        this.client.exec(command, (err, channel) => (err ? reject(err) : resolve(observeChannel(channel))));
      } catch (err) {
        reject(this.dead ?? err);
      }
    });
  }

  /** Opens the SFTP subsystem channel. */
  openSftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => {
      if (this.dead) {
        reject(this.dead);
        return;
      }
      try {
        this.client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp)));
      } catch (err) {
        reject(this.dead ?? err);
      }
    });
  }

  /** Ends the connection politely; channels still open are closed by the server. */
  async close(): Promise<void> {
    if (this.dead) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => this.onLost(() => resolve()));
    this.client.end();
    const timer = setTimeout(() => this.markDead(), 2_000);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}

function connectTcp(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = netConnect({ host, port });
    // Without this every exec (and every agent reply after one) waits ~40 ms on delayed ACKs.
    sock.setNoDelay(true);
    const onAbort = () => {
      sock.destroy();
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    sock.once("connect", () => {
      signal.removeEventListener("abort", onAbort);
      sock.removeAllListeners("error");
      // ssh2 reports socket errors itself once it owns the socket; until then, and after
      // it let go, an unlistened 'error' would crash the process.
      sock.on("error", () => {});
      resolve(sock);
    });
    sock.once("error", (err: NodeJS.ErrnoException) => {
      signal.removeEventListener("abort", onAbort);
      reject(
        new ConnectorError("CONNECT_FAILED", "ssh", `cannot connect to ${host}:${port}: ${err.code ?? err.message}`, {
          cause: err,
          retryable: true,
          details: { host, port, errno: err.code },
        }),
      );
    });
  });
}

function forwardOut(client: Ssh2Client, host: ResolvedHost, via: ResolvedHost): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardOut("127.0.0.1", 0, host.hostname, host.port, (err, stream) => {
        if (err) {
          reject(
            new ConnectorError(
              "CONNECT_FAILED",
              "ssh",
              `jump host ${hostLabel(via)} could not reach ${host.hostname}:${host.port}: ${err.message}`,
              { cause: err, retryable: true, details: { host: host.hostname, port: host.port, via: via.hostname } },
            ),
          );
        } else resolve(stream);
      });
    } catch (err) {
      reject(
        new ConnectorError("CONNECT_FAILED", "ssh", `jump host ${hostLabel(via)} closed`, {
          cause: err,
          retryable: true,
        }),
      );
    }
  });
}

/** Everything needed to open connections, prepared once per connector. */
export interface ConnectPlan {
  settings: ResolvedSettings;
  options: SshConnectorOptions;
  knownHosts: readonly KnownHostEntry[];
  logger: SshLogger | undefined;
}

/** Authenticates one hop over `sock`; resolves with the ready client and the host key fingerprint. */
function handshake(
  host: ResolvedHost,
  sock: Duplex,
  plan: ConnectPlan,
  auth: AuthPlan,
  signal: AbortSignal,
): Promise<{ client: Ssh2Client; fingerprint: string }> {
  const { settings, knownHosts, logger } = plan;
  sock.on("error", () => {});
  const client = new ssh2.Client();
  let refusal: ConnectorError | undefined;
  let fingerprint = "";
  const knownName = knownHostName(host.hostKeyName, host.port);
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (err) {
        client.destroy();
        sock.destroy();
        reject(err);
      } else resolve({ client, fingerprint });
    };
    const onAbort = () => finish(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    client.on("ready", () => {
      if (sock instanceof Socket) nudgeAcksAfterAuth(client, sock);
      finish(undefined);
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (refusal) return finish(refusal);
      if (err.level === "client-authentication" || auth.stepError()) {
        const accepted = auth.serverMethods();
        const stepError = auth.stepError();
        finish(
          new ConnectorError(
            "AUTH_FAILED",
            "ssh",
            `authentication failed for ${hostLabel(host)}` +
              (auth.tried.length > 0 ? `; tried ${auth.tried.join(", ")}` : "; no credentials to try") +
              (accepted ? `; the server accepts ${accepted.join(", ")}` : "") +
              (stepError ? `; keyboard-interactive callback failed: ${stepError.message}` : "") +
              opensshHint(auth),
            {
              cause: stepError,
              details: { user: host.username, host: host.hostname, port: host.port, tried: [...auth.tried] },
            },
          ),
        );
        return;
      }
      finish(
        new ConnectorError("CONNECT_FAILED", "ssh", `SSH handshake with ${hostLabel(host)} failed: ${err.message}`, {
          cause: err,
          retryable: true,
          details: { host: host.hostname, port: host.port, level: err.level },
        }),
      );
    });
    client.on("close", () =>
      finish(
        refusal ??
          new ConnectorError(
            "CONNECT_FAILED",
            "ssh",
            `${hostLabel(host)} closed the connection during the handshake (server busy: MaxStartups?)`,
            { retryable: true, details: { host: host.hostname, port: host.port } },
          ),
      ),
    );
    try {
      client.connect({
        sock,
        username: host.username,
        authHandler: auth.handler,
        keepaliveInterval: settings.keepaliveIntervalMs,
        keepaliveCountMax: settings.keepaliveCountMax,
        readyTimeout: 0,
        algorithms: {
          serverHostKey: preferredHostKeyAlgorithms(knownKeyTypes(knownHosts, knownName)) as ServerHostKeyAlgorithm[],
        },
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
          decideHostKey(
            {
              hostKeyName: host.hostKeyName,
              port: host.port,
              display:
                host.alias === host.hostname
                  ? `${host.hostname}:${host.port}`
                  : `${host.alias} (${host.hostname}:${host.port})`,
              policy: settings.hostKeyPolicy,
              entries: knownHosts,
              files: settings.knownHostsFiles,
              writeFile: settings.knownHostsWriteFile,
              hash: settings.hashKnownHosts,
              logger,
            },
            key,
          ).then(
            (decision) => {
              if (decision.ok) fingerprint = decision.fingerprint;
              else refusal = decision.error;
              verify(decision.ok);
            },
            (err: unknown) => {
              refusal = new ConnectorError(
                "CONNECT_FAILED",
                "ssh",
                `cannot record the host key of ${host.hostname}: ${(err as Error).message}`,
                { cause: err },
              );
              verify(false);
            },
          );
          return undefined;
        },
      });
    } catch (err) {
      finish(
        new ConnectorError(
          "CONNECT_FAILED",
          "ssh",
          `cannot start SSH to ${hostLabel(host)}: ${(err as Error).message}`,
          { cause: err },
        ),
      );
    }
  });
}

/**
 * Opens one authenticated connection to the target, through every jump host in turn
 * (ssh2 `forwardOut` channels carry the next hop's SSH stream). `signal` bounds the whole
 * chain: TCP connect, handshakes, host key checks and authentication.
 */
export async function openConnection(plan: ConnectPlan, signal: AbortSignal): Promise<Ssh2Connection> {
  const { settings } = plan;
  const hops = [...settings.jumps, settings.target];
  const first = hops[0] as ResolvedHost;
  const opened: Ssh2Client[] = [];
  // Read keys (and fail on a bad passphrase) before any network traffic.
  const auths = await Promise.all(
    hops.map((host, i) => buildAuthPlan(host, plan.options, i === hops.length - 1, plan.logger)),
  );
  try {
    let sock: Duplex = await connectTcp(first.hostname, first.port, signal);
    let via: ResolvedHost | undefined;
    let fingerprint = "";
    for (let i = 0; i < hops.length; i++) {
      const host = hops[i] as ResolvedHost;
      if (via) sock = await forwardOut(opened[opened.length - 1] as Ssh2Client, host, via);
      const done = await handshake(host, sock, plan, auths[i] as AuthPlan, signal);
      opened.push(done.client);
      fingerprint = done.fingerprint;
      via = host;
    }
    const client = opened.pop() as Ssh2Client;
    return new Ssh2Connection(client, opened, hostLabel(settings.target), fingerprint, plan.logger);
  } catch (err) {
    for (const c of opened) c.destroy();
    throw err;
  }
}
