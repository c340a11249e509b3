import { isSremoteError, UsageError } from "@sremote/core";
import type { ResolvedSettings } from "./config.js";
import { configText, decideFromConfig, effectiveConfig } from "./openssh/auto.js";
import { opensshTransport } from "./openssh/transport.js";
import { opensshVersion } from "./openssh/version.js";
import type { SshConnectorOptions, SshLogger } from "./options.js";
import { ssh2Transport } from "./ssh2-transport.js";
import type { SshTransport, TransportInfo } from "./transport.js";

/** What {@link createTransport} needs. */
export interface TransportConfig {
  settings: ResolvedSettings;
  options: SshConnectorOptions;
  maxConnections: number;
  maxChannelsPerConnection: number;
  logger: SshLogger | undefined;
}

/**
 * Builds the transport `options.transport` asks for, and whether the connector can report
 * signal names with it (ssh2 only: `auto` may end up on the system ssh, so it says false).
 */
export function createTransport(config: TransportConfig): { transport: SshTransport; signals: boolean } {
  const kind = config.options.transport ?? "ssh2";
  if (kind === "ssh2") return { transport: ssh2Transport(config), signals: true };
  if (kind === "openssh") return { transport: opensshTransport(config), signals: false };
  if (kind === "auto") return { transport: autoTransport(config), signals: false };
  throw new UsageError(`ssh: transport must be "ssh2", "openssh" or "auto", got ${JSON.stringify(kind)}`);
}

/**
 * `auto`: asks `ssh -G` once (on first use) and picks openssh when the config needs it,
 * ssh2 otherwise; an ssh2 that fails to authenticate hands over to openssh (when the
 * system ssh exists) — the user's agent, certificates or prompts may still get in.
 */
function autoTransport(config: TransportConfig): SshTransport {
  const { options, logger } = config;
  const sshPath = options.sshPath ?? "ssh";
  let current: SshTransport | undefined;
  let reason = "";
  let choosing: Promise<SshTransport> | undefined;
  let closed = false;

  const choose = (): Promise<SshTransport> => {
    choosing ??= (async () => {
      const haveSsh = await opensshVersion(sshPath).then(
        () => true,
        () => false,
      );
      const effective = haveSsh ? await effectiveConfig(sshPath, options) : undefined;
      const decision = effective
        ? decideFromConfig(effective, options, configText(options))
        : { transport: "ssh2" as const, reason: `no usable ${sshPath}` };
      reason = decision.reason;
      logger?.debug?.(`ssh: transport auto chose ${decision.transport} (${decision.reason})`);
      current = decision.transport === "openssh" ? opensshTransport(config) : ssh2Transport(config);
      if (decision.transport === "openssh") return current;
      if (!haveSsh) return current;
      try {
        await current.connect(AbortSignal.timeout(config.settings.connectTimeoutMs + 1_000));
        return current;
      } catch (err) {
        if (!(isSremoteError(err) && err.code === "AUTH_FAILED") || closed) throw err;
        logger?.info?.(`ssh: ssh2 could not authenticate (${err.message}); trying the system ssh (transport auto)`);
        await current.close();
        reason = "ssh2 failed to authenticate";
        current = opensshTransport(config);
        return current;
      }
    })();
    choosing.catch(() => {
      choosing = undefined;
    });
    return choosing;
  };

  return {
    get signalRequests() {
      return current?.signalRequests ?? true;
    },
    async connect(signal) {
      await (await choose()).connect(signal);
    },
    async openCommand(command, signal, urgent, stream) {
      return (await choose()).openCommand(command, signal, urgent, stream);
    },
    async readFile(path, signal) {
      return (await choose()).readFile(path, signal);
    },
    async writeFile(path, data, mode, signal) {
      return (await choose()).writeFile(path, data, mode, signal);
    },
    async deleteFile(path, signal) {
      return (await choose()).deleteFile(path, signal);
    },
    async homeDir(signal) {
      return (await choose()).homeDir(signal);
    },
    get connected() {
      return current?.connected ?? false;
    },
    info(): TransportInfo {
      const base = current?.info() ?? { transport: "auto", connections: 0, activeChannels: 0, queuedChannels: 0 };
      return { ...base, autoReason: reason };
    },
    async close() {
      closed = true;
      // Closing the current transport first also aborts a connection it is still opening.
      await current?.close();
      await choosing?.catch(() => undefined);
      await current?.close();
    },
  };
}
