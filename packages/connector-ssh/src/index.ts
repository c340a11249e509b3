export type { ResolvedHost, ResolvedSettings } from "./config.js";
export {
  checkHostKey,
  formatKnownHostsLine,
  type HostKeyVerdict,
  hostFieldMatches,
  type KnownHostEntry,
  knownHostName,
  parseKnownHosts,
  sha256Fingerprint,
} from "./known-hosts.js";
export type {
  HostKeyPolicy,
  KeyboardInteractiveContext,
  KeyboardInteractivePrompt,
  SshConnectorOptions,
  SshLogger,
} from "./options.js";
export { type SshConnector, sshConnector } from "./ssh-connector.js";
export type { ChannelEnd, CommandChannel, SshTransport, TransportInfo } from "./transport.js";
