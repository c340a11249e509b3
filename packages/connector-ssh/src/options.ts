/** How host keys are checked against known_hosts. */
export type HostKeyPolicy =
  /** Unknown or changed keys are refused before anything runs (the default). */
  | "strict"
  /** Unknown hosts are trusted on first use and their key is written to known_hosts; changed keys are refused. */
  | "accept-new"
  /** No check at all. Explicit opt-in only; a warning is logged on every connection. */
  | "off";

/** One question of a keyboard-interactive exchange. */
export interface KeyboardInteractivePrompt {
  /** The text the server shows (`"Password: "`, `"Verification code: "`). */
  prompt: string;
  /** True when the answer may be shown while typed (false for passwords and codes). */
  echo: boolean;
}

/** Where a keyboard-interactive exchange comes from. */
export interface KeyboardInteractiveContext {
  /** The host asking (a ProxyJump hop or the target), as connected to. */
  host: string;
  port: number;
  username: string;
  /** The server's name and instructions for this round (often empty). */
  name: string;
  instructions: string;
}

/**
 * Receives what the connector reports. Messages and fields never contain passwords,
 * passphrases, private keys or keyboard-interactive answers.
 */
export interface SshLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  info?(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/**
 * Which SSH implementation carries the connection:
 * - `"ssh2"` (default): the pure-JavaScript ssh2 library — fastest start, full signal
 *   reporting, no external program; no OpenSSH certificates, GSSAPI/Kerberos, `ProxyCommand`,
 *   `Match exec` or `Include`.
 * - `"openssh"`: the system `ssh` program (OpenSSH ≥ 7.6; ≥ 8.4 for password/prompt
 *   answers) with one ControlMaster per connector: everything the user's ssh_config, agent,
 *   certificates, Kerberos tickets and MFA prompts allow. Reports exit statuses but not
 *   signal names (`capabilities.signals` is false: a command killed by signal N exits 128+N).
 * - `"auto"`: `"openssh"` when `ssh -G` shows the host needs what ssh2 lacks (a certificate,
 *   GSSAPI, ProxyCommand, a config with `Match exec` or `Include`), or when ssh2 fails to
 *   authenticate; `"ssh2"` otherwise.
 */
export type SshTransportKind = "ssh2" | "openssh" | "auto";

/**
 * Options of {@link sshConnector}. Everything but `host` is optional; values missing here
 * come from the OpenSSH client config (`~/.ssh/config`) for `host`, then from defaults.
 */
export interface SshConnectorOptions {
  /** Host name, address or `~/.ssh/config` alias (resolved through `HostName`). */
  host: string;
  /** The SSH implementation (default `"ssh2"`); see {@link SshTransportKind}. */
  transport?: SshTransportKind | undefined;
  /** The OpenSSH client program for the `"openssh"`/`"auto"` transports (default `ssh` on PATH). */
  sshPath?: string | undefined;
  /** TCP port (config `Port`, else 22). */
  port?: number | undefined;
  /** Remote user name (config `User`, else the local user name). */
  username?: string | undefined;

  /** A private key (OpenSSH, PEM or PPK text/bytes). Tried before config `IdentityFile`s. */
  privateKey?: string | Uint8Array | undefined;
  /** A private key file; read when connecting. */
  privateKeyPath?: string | undefined;
  /** Passphrase of `privateKey`/`privateKeyPath` (also tried on config `IdentityFile`s). Never logged. */
  passphrase?: string | undefined;
  /**
   * An ssh-agent: its socket path, `true` for `$SSH_AUTH_SOCK`, `false` for none. Default:
   * config `IdentityAgent`, else `$SSH_AUTH_SOCK` when set.
   */
  agent?: string | boolean | undefined;
  /** Password for `password` authentication (and for a lone password prompt of keyboard-interactive). Never logged. */
  password?: string | undefined;
  /**
   * Answers keyboard-interactive prompts (PAM passwords, one-time codes of MFA sites).
   * Return one answer per prompt. Answers are never logged.
   */
  onKeyboardInteractive?:
    | ((prompts: KeyboardInteractivePrompt[], context: KeyboardInteractiveContext) => string[] | Promise<string[]>)
    | undefined;

  /**
   * known_hosts file(s) to verify against; the first is the one `accept-new` writes to.
   * Default: config `UserKnownHostsFile`, else `~/.ssh/known_hosts` (plus
   * `/etc/ssh/ssh_known_hosts`, read only).
   */
  knownHostsPath?: string | readonly string[] | undefined;
  /** Host key policy (default `"strict"`, or config `StrictHostKeyChecking accept-new`). */
  hostKeyPolicy?: HostKeyPolicy | undefined;
  /**
   * The OpenSSH client config to read: a path, or `false` for none. Default
   * `~/.ssh/config` when it exists. With ssh2, `Include` and `Match exec` are not
   * supported; the `"openssh"` transport hands the file to `ssh -F` (`false`: `-F /dev/null`).
   */
  sshConfigPath?: string | false | undefined;
  /**
   * Jump hosts, as OpenSSH's `-J`: `"[user@]host[:port][,…]"`, or `"none"`. Default:
   * config `ProxyJump`. Each hop is resolved through the config and verified like the target.
   */
  proxyJump?: string | undefined;

  /** Time allowed for TCP connect, handshake and authentication (config `ConnectTimeout`, else 30 000 ms). */
  connectTimeoutMs?: number | undefined;
  /**
   * Interval of SSH-level keepalives; a connection that misses `keepaliveCountMax` of them
   * in a row is dropped. Default: config `ServerAliveInterval`, else 15 000 ms; `0` disables.
   */
  keepaliveIntervalMs?: number | undefined;
  /** Missed keepalives before the connection counts as lost (config `ServerAliveCountMax`, else 3). */
  keepaliveCountMax?: number | undefined;

  /**
   * Attempts per operation when the connection could not be opened and nothing ran
   * (`CONNECT_FAILED`, e.g. sshd's `MaxStartups` dropping a burst of logins): retried with
   * jittered backoff within the operation's `timeoutMs`. Default 4; `1` disables.
   */
  connectAttempts?: number | undefined;

  /** At most this many SSH connections to the host (default 4); opened one at a time, only when needed. */
  maxConnections?: number | undefined;
  /**
   * Channels (commands, sessions, the SFTP session) per connection: the server's
   * `MaxSessions`, 10 unless the server says otherwise. Further operations wait for a
   * free channel or a new connection. When the server refuses a channel below this cap,
   * the connector lowers the cap for that connection and retries the open (nothing ran).
   */
  maxChannelsPerConnection?: number | undefined;

  /** Receives diagnostics (never secrets). Default: nothing is logged. */
  logger?: SshLogger | undefined;
}
