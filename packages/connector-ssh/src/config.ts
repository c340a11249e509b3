import { existsSync, readFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { isAbsolute, join } from "node:path";
import { UsageError } from "@sremote/core";
import SSHConfig from "ssh-config";
import type { HostKeyPolicy, SshConnectorOptions } from "./options.js";

/** One host to connect to (a jump host or the target), with everything resolved. */
export interface ResolvedHost {
  /** The name as the user wrote it (alias), for messages. */
  alias: string;
  /** What TCP connects to (config `HostName`). */
  hostname: string;
  port: number;
  username: string;
  /** The name looked up in known_hosts (`HostKeyAlias`, else the host name). */
  hostKeyName: string;
  /** Config `IdentityFile`s, expanded (existing or not). */
  identityFiles: string[];
  /** Only use identity files, not every agent key (config `IdentitiesOnly`). */
  identitiesOnly: boolean;
  /** Agent socket, or undefined for none. */
  agentSocket: string | undefined;
}

/** Settings for the whole connection chain. */
export interface ResolvedSettings {
  target: ResolvedHost;
  /** Jump hosts in order (first is dialled over TCP). */
  jumps: ResolvedHost[];
  connectTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  knownHostsFiles: string[];
  /** Where `accept-new` writes. */
  knownHostsWriteFile: string;
  hashKnownHosts: boolean;
  hostKeyPolicy: HostKeyPolicy;
  /** Where the config came from, for `status()`. */
  configPath: string | undefined;
}

type Computed = Record<string, string | string[]>;

function get(c: Computed, key: string): string | undefined {
  const v = c[key.toLowerCase()];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v[0] : v;
}

function getAll(c: Computed, key: string): string[] {
  const v = c[key.toLowerCase()];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

function localUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "root";
  }
}

/** Expands `~` and the `%` tokens OpenSSH allows in file names. */
export function expandPath(path: string, tokens: { host: string; port: number; user: string }): string {
  const home = homedir();
  let p = path.startsWith("~/") || path === "~" ? `${home}${path.slice(1)}` : path;
  p = p.replace(/%([%dhpru])/g, (_, t: string) => {
    switch (t) {
      case "%":
        return "%";
      case "d":
        return home;
      case "h":
        return tokens.host;
      case "p":
        return String(tokens.port);
      case "r":
        return tokens.user;
      default:
        return localUser();
    }
  });
  return isAbsolute(p) ? p : join(home, p);
}

function positiveInt(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`ssh config: ${what} must be a non-negative integer, got ${value}`);
  return n;
}

function checkMs(value: number | undefined, what: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new UsageError(`ssh: ${what} must be a number ≥ ${min}, got ${String(value)}`);
  }
  return value;
}

/** Parses one `[user@]host[:port]` or `ssh://[user@]host[:port]` jump spec. */
export function parseJump(spec: string): { host: string; user?: string; port?: number } {
  const text = spec.startsWith("ssh://") ? spec.slice("ssh://".length).replace(/\/$/, "") : spec;
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new UsageError(`ssh: bad ProxyJump entry ${JSON.stringify(spec)}; expected [user@]host[:port]`);
  const [, user, host = "", port] = m;
  const out: { host: string; user?: string; port?: number } = {
    host: host.startsWith("[") ? host.slice(1, -1) : host,
  };
  if (user !== undefined) out.user = user;
  if (port !== undefined) {
    const n = Number(port);
    if (n < 1 || n > 65535) throw new UsageError(`ssh: bad port in ProxyJump entry ${JSON.stringify(spec)}`);
    out.port = n;
  }
  return out;
}

function readConfig(options: SshConnectorOptions): { config: SSHConfig | undefined; path: string | undefined } {
  if (options.sshConfigPath === false) return { config: undefined, path: undefined };
  const explicit = options.sshConfigPath !== undefined;
  const path = options.sshConfigPath ?? join(homedir(), ".ssh", "config");
  if (!explicit && !existsSync(path)) return { config: undefined, path: undefined };
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`ssh: cannot read ssh config ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return { config: SSHConfig.parse(text), path };
  } catch (err) {
    throw new UsageError(`ssh: cannot parse ssh config ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function compute(config: SSHConfig | undefined, host: string, user?: string): Computed {
  if (!config) return {};
  // `Match exec` would run commands from the config file: not from a library.
  const computeOptions = { ignoreCase: true, matchExec: false };
  return user ? config.compute({ Host: host, User: user }, computeOptions) : config.compute(host, computeOptions);
}

function agentSocketFrom(options: SshConnectorOptions, c: Computed): string | undefined {
  if (options.agent === false) return undefined;
  if (typeof options.agent === "string") {
    if (options.agent === "") throw new UsageError("ssh: agent socket path is empty");
    return options.agent;
  }
  const fromEnv = process.env.SSH_AUTH_SOCK || undefined;
  if (options.agent === true) {
    if (!fromEnv) throw new UsageError("ssh: agent: true but SSH_AUTH_SOCK is not set");
    return fromEnv;
  }
  const configured = get(c, "IdentityAgent");
  if (configured !== undefined) {
    if (configured.toLowerCase() === "none") return undefined;
    if (configured === "SSH_AUTH_SOCK") return fromEnv;
    if (configured.startsWith("$")) return process.env[configured.slice(1)] || undefined;
    return expandPath(configured, { host: "", port: 0, user: "" });
  }
  return fromEnv;
}

function resolveHost(
  config: SSHConfig | undefined,
  options: SshConnectorOptions,
  alias: string,
  overrides: { user?: string | undefined; port?: number | undefined },
): { host: ResolvedHost; computed: Computed } {
  const c = compute(config, alias, overrides.user);
  const hostname = get(c, "HostName")?.replaceAll("%h", alias) ?? alias;
  const port = overrides.port ?? positiveInt(get(c, "Port"), "Port") ?? 22;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`ssh: port must be an integer 1-65535, got ${port}`);
  }
  const username = overrides.user ?? get(c, "User") ?? localUser();
  const tokens = { host: hostname, port, user: username };
  const identityFiles = getAll(c, "IdentityFile")
    .filter((f) => f.toLowerCase() !== "none")
    .map((f) => expandPath(f, tokens));
  return {
    host: {
      alias,
      hostname,
      port,
      username,
      hostKeyName: get(c, "HostKeyAlias") ?? hostname,
      identityFiles,
      identitiesOnly: get(c, "IdentitiesOnly")?.toLowerCase() === "yes",
      agentSocket: agentSocketFrom(options, c),
    },
    computed: c,
  };
}

function policyFromConfig(value: string | undefined): HostKeyPolicy | undefined {
  switch (value?.toLowerCase()) {
    case undefined:
      return undefined;
    case "yes":
    case "ask":
      return "strict";
    // OpenSSH's "no" also accepts changed keys; we never do that silently.
    case "accept-new":
    case "no":
    case "off":
      return "accept-new";
    default:
      return undefined;
  }
}

/**
 * Resolves connector options and the OpenSSH client config into concrete settings:
 * explicit options win over the config, which wins over defaults.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for bad options or an unreadable config file.
 */
export function resolveSettings(options: SshConnectorOptions): ResolvedSettings {
  if (typeof options?.host !== "string" || options.host.trim() === "" || /[\s\0]/.test(options.host)) {
    throw new UsageError(`ssh: host must be a non-empty name without spaces, got ${JSON.stringify(options?.host)}`);
  }
  if (options.port !== undefined && (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)) {
    throw new UsageError(`ssh: port must be an integer 1-65535, got ${String(options.port)}`);
  }
  if (options.username !== undefined && (typeof options.username !== "string" || options.username === "")) {
    throw new UsageError("ssh: username must be a non-empty string");
  }
  if (
    options.hostKeyPolicy !== undefined &&
    !["strict", "accept-new", "off"].includes(options.hostKeyPolicy as string)
  ) {
    throw new UsageError(
      `ssh: hostKeyPolicy must be "strict", "accept-new" or "off", got ${JSON.stringify(options.hostKeyPolicy)}`,
    );
  }
  const { config, path } = readConfig(options);
  const { host: target, computed } = resolveHost(config, options, options.host, {
    user: options.username,
    port: options.port,
  });

  const jumpSpec = options.proxyJump ?? get(computed, "ProxyJump");
  const jumps: ResolvedHost[] = [];
  if (jumpSpec !== undefined && jumpSpec.toLowerCase() !== "none") {
    for (const part of jumpSpec.split(",")) {
      const j = parseJump(part.trim());
      jumps.push(resolveHost(config, options, j.host, { user: j.user, port: j.port }).host);
    }
  }

  const configTimeout = positiveInt(get(computed, "ConnectTimeout"), "ConnectTimeout");
  const connectTimeoutMs =
    checkMs(options.connectTimeoutMs, "connectTimeoutMs", 1) ??
    (configTimeout ? configTimeout * 1000 : undefined) ??
    30_000;
  const configAlive = positiveInt(get(computed, "ServerAliveInterval"), "ServerAliveInterval");
  const keepaliveIntervalMs =
    checkMs(options.keepaliveIntervalMs, "keepaliveIntervalMs") ??
    (configAlive !== undefined ? configAlive * 1000 : undefined) ??
    15_000;
  const keepaliveCountMax =
    checkMs(options.keepaliveCountMax, "keepaliveCountMax", 1) ??
    positiveInt(get(computed, "ServerAliveCountMax"), "ServerAliveCountMax") ??
    3;

  const tokens = { host: target.hostname, port: target.port, user: target.username };
  let userFiles: string[];
  if (options.knownHostsPath !== undefined) {
    const list = typeof options.knownHostsPath === "string" ? [options.knownHostsPath] : [...options.knownHostsPath];
    if (list.length === 0 || list.some((p) => typeof p !== "string" || p === "")) {
      throw new UsageError("ssh: knownHostsPath must be a path or a non-empty list of paths");
    }
    userFiles = list.map((p) => expandPath(p, tokens));
  } else {
    const fromConfig = getAll(computed, "UserKnownHostsFile").flatMap((v) => v.split(/\s+/));
    userFiles = (fromConfig.length > 0 ? fromConfig : ["~/.ssh/known_hosts"]).map((p) => expandPath(p, tokens));
  }
  const globalFiles =
    options.knownHostsPath !== undefined
      ? []
      : (() => {
          const fromConfig = getAll(computed, "GlobalKnownHostsFile").flatMap((v) => v.split(/\s+/));
          return fromConfig.length > 0 ? fromConfig : ["/etc/ssh/ssh_known_hosts"];
        })();

  return {
    target,
    jumps,
    connectTimeoutMs,
    keepaliveIntervalMs,
    keepaliveCountMax,
    knownHostsFiles: [...userFiles, ...globalFiles],
    knownHostsWriteFile: userFiles[0] as string,
    hashKnownHosts: get(computed, "HashKnownHosts")?.toLowerCase() === "yes",
    hostKeyPolicy: options.hostKeyPolicy ?? policyFromConfig(get(computed, "StrictHostKeyChecking")) ?? "strict",
    configPath: path,
  };
}
