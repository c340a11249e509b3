import { UsageError } from "@sremote/core";
import type { ResolvedSettings } from "../config.js";
import type { SshConnectorOptions } from "../options.js";

/** What the ssh command lines are built from. */
export interface SshArgsInput {
  options: SshConnectorOptions;
  settings: ResolvedSettings;
  /** Private key file to use (`privateKeyPath`, or the in-memory key written to the private folder). */
  identityFile: string | undefined;
  /** The master's `ControlPath` (with `%C`). */
  controlPath: string;
}

function quoteValue(value: string): string {
  if (/["\r\n]/.test(value)) throw new UsageError(`ssh: ${JSON.stringify(value)} cannot be passed to the ssh program`);
  return /[\s'\\]/.test(value) ? `"${value}"` : value;
}

/** `-o Key=value`. */
function o(key: string, value: string): string[] {
  return ["-o", `${key}=${value}`];
}

/**
 * The options every `ssh` invocation of one connector shares (the master and each
 * multiplexed session): config file, destination, identity, host key checking. Values the
 * caller did not give are left to the user's ssh_config, as OpenSSH would resolve them.
 */
export function commonArgs(input: SshArgsInput, controlPath: string, withJump: boolean): string[] {
  const { options, settings } = input;
  const args: string[] = [];
  if (options.sshConfigPath === false) args.push("-F", "/dev/null");
  else if (options.sshConfigPath !== undefined) args.push("-F", options.sshConfigPath);
  if (options.port !== undefined) args.push("-p", String(options.port));
  if (options.username !== undefined) args.push("-l", options.username);
  if (withJump && options.proxyJump !== undefined) args.push(...o("ProxyJump", options.proxyJump));
  if (input.identityFile !== undefined) args.push("-i", input.identityFile);
  if (options.agent === false) args.push(...o("IdentityAgent", "none"));
  else if (typeof options.agent === "string") args.push(...o("IdentityAgent", quoteValue(options.agent)));
  else if (options.agent === true) args.push(...o("IdentityAgent", "SSH_AUTH_SOCK"));
  if (settings.hostKeyPolicy === "off") {
    // No check, and nothing written to any known_hosts (as with ssh2).
    args.push(...o("UserKnownHostsFile", "/dev/null"), ...o("GlobalKnownHostsFile", "/dev/null"));
  } else if (options.knownHostsPath !== undefined) {
    args.push(...o("UserKnownHostsFile", settings.knownHostsFiles.map(quoteValue).join(" ")));
    args.push(...o("GlobalKnownHostsFile", "/dev/null"));
  }
  const strict = { strict: "yes", "accept-new": "accept-new", off: "no" }[settings.hostKeyPolicy];
  args.push(...o("StrictHostKeyChecking", strict));
  args.push(...o("ControlPath", quoteValue(controlPath)));
  // No forwardings, no local commands, no escape character, no terminal: a byte pipe.
  // (A config `RemoteCommand` would clash with ours.)
  args.push(...o("ClearAllForwardings", "yes"), ...o("PermitLocalCommand", "no"), ...o("RemoteCommand", "none"));
  args.push("-e", "none", "-T");
  return args;
}

/** Arguments of the master: authenticates once, then serves sessions over the control socket. */
export function masterArgs(input: SshArgsInput, prompts: boolean): string[] {
  const { settings, options } = input;
  const args = [
    ...commonArgs(input, input.controlPath, true),
    "-N",
    ...o("ControlMaster", "yes"),
    ...o("ControlPersist", "no"),
  ];
  args.push(...o("BatchMode", prompts ? "no" : "yes"));
  if (prompts && options.onKeyboardInteractive === undefined) args.push(...o("NumberOfPasswordPrompts", "1"));
  args.push(...o("ConnectTimeout", String(Math.max(1, Math.ceil(settings.connectTimeoutMs / 1000)))));
  if (settings.keepaliveIntervalMs > 0) {
    args.push(...o("ServerAliveInterval", String(Math.max(1, Math.ceil(settings.keepaliveIntervalMs / 1000)))));
    args.push(...o("ServerAliveCountMax", String(settings.keepaliveCountMax)));
  }
  args.push(...o("LogLevel", "ERROR"), "--", options.host);
  return args;
}

/**
 * Arguments of one session multiplexed over the master's socket (its literal path, so no
 * `%C` hash is recomputed), `remoteLine` as ONE argument after `--` (no local shell).
 * Should the master be gone, ssh must not quietly open a connection of its own (it would
 * authenticate again): `ProxyCommand=false` (which also overrides a config `ProxyJump`)
 * makes that fallback fail at once.
 */
export function sessionArgs(input: SshArgsInput, socket: string, remoteLine: string): string[] {
  return [
    ...commonArgs(input, socket, false),
    ...o("ControlMaster", "no"),
    ...o("BatchMode", "yes"),
    ...o("ProxyCommand", "false"),
    ...o("LogLevel", "ERROR"),
    "--",
    input.options.host,
    remoteLine,
  ];
}

/** Arguments of `ssh -O <command>` against the master's socket. */
export function controlArgs(input: SshArgsInput, socket: string, command: "check" | "exit"): string[] {
  return [...commonArgs(input, socket, false), "-O", command, "--", input.options.host];
}
