import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { descendantsOf, isAlive, listProcesses, signalAll, waitGone } from "./processes.js";
import { freePort, keygen, sshdConfig, sweepStaleFixtures, WATCHDOG, waitReady } from "./server.js";
import { type AccountLease, isRoot, leaseAccount, ROOT_STATE_DIR } from "./users.js";

const run = promisify(execFile);

/** Where Debian's `openssh-server` installs the daemon. */
export const SSHD_PATH = "/usr/sbin/sshd";
/** The dedicated account tests log in as when the fixture runs as root (vitest's first worker). */
export const DEFAULT_TEST_USER = "sremote-test";

/**
 * The default account of this process: {@link DEFAULT_TEST_USER} in vitest's first worker (and
 * outside vitest), `sremote-test-w<N>` in worker N. Test files running in parallel then never
 * share an account, so one file's "nothing of the account is left running" check cannot see
 * another file's processes.
 */
export function defaultTestUser(): string {
  const worker = Number(process.env.VITEST_POOL_ID ?? "1");
  return Number.isInteger(worker) && worker > 1 ? `${DEFAULT_TEST_USER}-w${worker}` : DEFAULT_TEST_USER;
}

/** Options of {@link startSshd}. */
export interface StartSshdOptions {
  /**
   * Also accept password logins (`PasswordAuthentication yes`); the fixture sets a random
   * password on the account and reports it in {@link SshdFacts.password}. Needs root.
   */
  password?: boolean;
  /**
   * Password logins through keyboard-interactive only (`UsePAM yes`,
   * `KbdInteractiveAuthentication yes`, `PasswordAuthentication no`), as PAM/MFA sites do:
   * the server asks `Password: ` as a prompt. Implies a password; needs root and a PAM stack
   * that works in the container (Debian's does here).
   */
  keyboardInteractive?: boolean;
  /**
   * A user certificate authority, as NERSC's sshproxy: the fixture makes a CA key, has sshd
   * trust it (`TrustedUserCAKeys`), and signs the client key for the account — an OpenSSH
   * user certificate `<privateKeyPath>-cert.pub`, principal = the account, valid for an hour
   * ({@link SshdFacts.certificatePath}). ssh2 cannot log in with it; the system `ssh` can.
   */
  userCertificate?: boolean;
  /**
   * Keep the client's public key in an authorized_keys file (default true). `false`: the
   * account has no authorized keys at all (`AuthorizedKeysFile none`), so only a certificate
   * (with {@link StartSshdOptions.userCertificate}) or a password logs in.
   */
  authorizedKeys?: boolean;
  /** sshd's `MaxSessions`: channels per connection (default 10, OpenSSH's default). */
  maxSessions?: number;
  /** sshd's `MaxStartups` (default `"10:30:100"`, OpenSSH's default). */
  maxStartups?: string;
  /**
   * The account to log in as. As root: default `sremote-test` (`sremote-test-w<N>` in vitest
   * worker N, see {@link defaultTestUser}), created when missing,
   * given a fresh empty home. Not root: must be (and defaults to) the current user.
   */
  user?: string;
  /**
   * Extra `sshd_config` lines (e.g. `["ClientAliveInterval 1"]`). They come first in the
   * file, so they override the fixture's own settings (sshd keeps the first value).
   */
  extraConfig?: readonly string[];
}

/** The serialisable facts of a running fixture; what a vitest global setup `provide`s. */
export interface SshdFacts {
  /** Always `"127.0.0.1"`. */
  host: string;
  port: number;
  /** The account to log in as. */
  user: string;
  /** That account's home folder. */
  home: string;
  /** An unencrypted ed25519 client key authorised for {@link SshdFacts.user}. */
  privateKeyPath: string;
  /** Its public key line (`ssh-ed25519 AAAA… comment`). */
  publicKey: string;
  /** A known_hosts file holding the server's host key for `[127.0.0.1]:port`. */
  knownHostsPath: string;
  /** The account's password (password variant only). */
  password?: string | undefined;
  /** The OpenSSH user certificate of the client key (`<privateKeyPath>-cert.pub`; with `userCertificate`). */
  certificatePath?: string | undefined;
  /** The user CA's public key line sshd trusts (with `userCertificate`). */
  userCaPublicKey?: string | undefined;
  /** The host key's fingerprint as OpenSSH prints it (`SHA256:…`). */
  hostKeyFingerprint: string;
  /** The host public key line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string;
  /** PID of the listening sshd. */
  pid: number;
  /** The fixture's private folder: config, keys, log. */
  dir: string;
  /** sshd's log file (`LogLevel VERBOSE`). */
  logPath: string;
  /** True when the account is dedicated to tests (the fixture ran as root). */
  dedicatedUser: boolean;
}

/** Helpers that work from {@link SshdFacts} alone (e.g. inside a test worker after `inject`). */
export interface SshdProbe {
  /**
   * PIDs of the commands running through this server: the live non-sshd descendants of
   * this sshd and, for a dedicated account, its orphans (processes re-parented to PID 1,
   * e.g. commands that outlived a killed connection; orphans of other fixtures sharing the
   * account count too). Use it to check that nothing was left running.
   */
  userProcesses(): Promise<number[]>;
  /** PIDs of sshd's per-connection processes (one or two per open TCP connection). */
  connectionProcesses(): Promise<number[]>;
  /** Kills (SIGKILL) every per-connection sshd process, so clients see their connections drop. */
  killConnections(): Promise<void>;
  /** Adds a public key line to the keys this server accepts for the account. */
  authorizeKey(publicKeyLine: string): Promise<void>;
  /** The sshd log so far. */
  readLog(): Promise<string>;
}

/** A running private sshd; {@link SshdFixture.stop} ends it and everything it started. */
export interface SshdFixture extends SshdFacts, SshdProbe {
  /** The plain facts, for `provide`. */
  facts(): SshdFacts;
  /** Stops sshd, kills its sessions and their processes, removes the folder. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Options for `sshConnector` (from `@sremote/connector-ssh`) that log in to a fixture's
 * server as its account, with its client key and its known_hosts only — no `~/.ssh/config`,
 * no ssh-agent. Spread them and add your own: `sshConnector({ ...sshConnectorOptions(f), keepaliveMs: 0 })`.
 */
export function sshConnectorOptions(facts: SshdFacts): {
  host: string;
  port: number;
  username: string;
  privateKeyPath: string;
  knownHostsPath: string;
  sshConfigPath: false;
  agent: false;
} {
  return {
    host: facts.host,
    port: facts.port,
    username: facts.user,
    privateKeyPath: facts.privateKeyPath,
    knownHostsPath: facts.knownHostsPath,
    sshConfigPath: false,
    agent: false,
  };
}

/** The `ssh://user@host:port` target string of a fixture, as the CLI and examples take it. */
export function sshTarget(facts: SshdFacts): string {
  return `ssh://${facts.user}@${facts.host}:${facts.port}`;
}

/**
 * The command-line flags that reach a fixture with its key and known_hosts and no
 * ~/.ssh/config (`--identity`, `--known-hosts`, `--ssh-config /dev/null`), for the CLI and
 * the examples; `knownHostsPath` replaces the fixture's own (e.g. an empty file).
 */
export function sshCliFlags(facts: SshdFacts, options: { knownHostsPath?: string } = {}): string[] {
  return [
    "--identity",
    facts.privateKeyPath,
    "--known-hosts",
    options.knownHostsPath ?? facts.knownHostsPath,
    "--ssh-config",
    "/dev/null",
  ];
}

/** SHA256 fingerprint of an OpenSSH public key line, as `ssh-keygen -l` prints it. */
export function publicKeyFingerprint(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not an OpenSSH public key line: ${line}`);
  const digest = createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64");
  return `SHA256:${digest.replace(/=+$/, "")}`;
}

function isSshdProcess(cmdline: string): boolean {
  return cmdline.startsWith("sshd:") || cmdline.startsWith(SSHD_PATH);
}

/** Builds the helpers of {@link SshdProbe} from facts, e.g. in a worker after `inject`. */
export function sshdProbe(facts: SshdFacts): SshdProbe {
  const authorizedKeys = join(facts.dir, "authorized_keys");
  const connections = async () =>
    descendantsOf(await listProcesses(), facts.pid)
      .filter((p) => isSshdProcess(p.cmdline))
      .map((p) => p.pid);
  return {
    async userProcesses() {
      const all = await listProcesses();
      const mine = descendantsOf(all, facts.pid).filter((p) => !isSshdProcess(p.cmdline));
      if (!facts.dedicatedUser) return mine.map((p) => p.pid);
      // Commands that outlived their session were re-parented to PID 1: count them too.
      const uid = Number((await run("id", ["-u", facts.user])).stdout.trim());
      const orphans = all.filter((p) => p.uid === uid && p.ppid === 1 && p.state !== "Z" && !isSshdProcess(p.cmdline));
      return [...new Set([...mine, ...orphans].map((p) => p.pid))];
    },
    connectionProcesses: connections,
    async killConnections() {
      const pids = await connections();
      signalAll(pids, "SIGKILL");
      await waitGone(pids, 10_000);
    },
    async authorizeKey(line) {
      if (/[\r\n]/.test(line.trim())) throw new Error("authorizeKey takes one public key line");
      await appendFile(authorizedKeys, `${line.trim()}\n`);
    },
    readLog: () => readFile(facts.logPath, "utf8").catch(() => ""),
  };
}

/**
 * Why {@link startSshd} cannot run on this machine — OpenSSH's server or client programs
 * are missing — or `null` when it can. For `describeUnless(sshdMissing())`.
 */
export function sshdMissing(): string | null {
  const programs: Array<[path: string, debianPackage: string]> = [
    [SSHD_PATH, "openssh-server"],
    ["/usr/bin/ssh-keygen", "openssh-client"],
  ];
  const need = programs.filter(([path]) => !existsSync(path));
  if (need.length === 0) return null;
  const packages = need.map(([, pkg]) => pkg).join(" ");
  return `${need.map(([path]) => path).join(", ")} not found (Debian: apt-get install -y ${packages})`;
}

/**
 * Starts a private OpenSSH `sshd` on 127.0.0.1 and a free port, with its own host key,
 * config, client key and known_hosts file in a fresh folder. As root it logs in a dedicated
 * unprivileged account (`sremote-test` by default) whose home is fresh and empty; otherwise
 * the current user (see the package README for the limits). Several fixtures may run at
 * once, in one process or several.
 *
 * @throws Error when `/usr/sbin/sshd` is missing (install `openssh-server`) or sshd fails to start.
 */
export async function startSshd(options: StartSshdOptions = {}): Promise<SshdFixture> {
  if (!existsSync(SSHD_PATH)) {
    throw new Error(
      `sshd fixture: ${SSHD_PATH} not found; install it with: apt-get install -y --no-install-recommends openssh-server`,
    );
  }
  const maxSessions = options.maxSessions ?? 10;
  if (!Number.isInteger(maxSessions) || maxSessions < 1) throw new Error("maxSessions must be a positive integer");
  const maxStartups = options.maxStartups ?? "10:30:100";
  if (!/^\d+(:\d+:\d+)?$/.test(maxStartups)) throw new Error(`bad maxStartups ${JSON.stringify(maxStartups)}`);
  const root = isRoot();
  const user = options.user ?? (root ? defaultTestUser() : userInfo().username);

  let dir: string;
  if (root) {
    // sshd's privilege separation needs this folder; systemd normally creates it.
    await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
    await mkdir(ROOT_STATE_DIR, { recursive: true, mode: 0o755 });
    await sweepStaleFixtures(ROOT_STATE_DIR);
    dir = await mkdtemp(join(ROOT_STATE_DIR, "fixture-"));
    // The account reads authorized_keys from here; StrictModes wants no group/other write.
    await chmod(dir, 0o755);
  } else {
    dir = await mkdtemp(join(tmpdir(), "sremote-sshd-"));
  }
  let lease: AccountLease | undefined;
  let watchdog: ChildProcess | undefined;
  const cleanupOnError = async () => {
    watchdog?.stdin?.end();
    if (watchdog?.pid) signalAll([watchdog.pid], "SIGKILL");
    await lease?.release();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await writeFile(join(dir, "owner"), String(process.pid));
    lease = await leaseAccount(user, options.password === true || options.keyboardInteractive === true);
    const hostPublicKey = await keygen(join(dir, "ssh_host_ed25519_key"), "sremote-test-host");
    const privateKeyPath = join(dir, "client_ed25519");
    const publicKey = await keygen(privateKeyPath, `sremote-test-client@${process.pid}`);
    const authorizedKeys = options.authorizedKeys ?? true;
    if (authorizedKeys) {
      await writeFile(join(dir, "authorized_keys"), `${publicKey}\n`, { mode: 0o644 });
      await chmod(join(dir, "authorized_keys"), 0o644);
    }
    let certificatePath: string | undefined;
    let userCaPublicKey: string | undefined;
    if (options.userCertificate) {
      userCaPublicKey = await keygen(join(dir, "user_ca"), `sremote-test-user-ca@${process.pid}`);
      await chmod(join(dir, "user_ca.pub"), 0o644);
      // -V from five minutes ago: a clock a little behind still accepts it.
      await run("ssh-keygen", [
        "-q",
        "-s",
        join(dir, "user_ca"),
        "-I",
        `sremote-test-${process.pid}`,
        "-n",
        user,
        "-V",
        "-5m:+1h",
        `${privateKeyPath}.pub`,
      ]);
      certificatePath = `${privateKeyPath}-cert.pub`;
    }
    const knownHostsPath = join(dir, "known_hosts");
    const logPath = join(dir, "sshd.log");
    const configPath = join(dir, "sshd_config");
    const pidFile = join(dir, "sshd.pid");
    const hostKeyBody = hostPublicKey.split(/\s+/).slice(0, 2).join(" ");

    let port = 0;
    let pid = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      await writeFile(
        configPath,
        sshdConfig({
          port,
          dir,
          user,
          password: options.password === true,
          keyboardInteractive: options.keyboardInteractive === true,
          maxSessions,
          maxStartups,
          strictModes: root,
          authorizedKeys,
          userCa: options.userCertificate === true,
          extra: options.extraConfig ?? [],
        }),
      );
      await rm(pidFile, { force: true });
      await writeFile(logPath, "");
      watchdog = spawn("/bin/sh", ["-c", WATCHDOG, SSHD_PATH, configPath, logPath, dir], {
        stdio: ["pipe", "ignore", "ignore"],
      });
      watchdog.on("error", () => {});
      const ready = await waitReady(watchdog, pidFile, logPath);
      if (ready !== "port-taken") {
        pid = ready;
        break;
      }
      watchdog.stdin?.end();
      if (attempt >= 9) throw new Error("sshd fixture: no free port after 10 attempts");
    }
    await writeFile(knownHostsPath, `[127.0.0.1]:${port} ${hostKeyBody}\n`, { mode: 0o600 });

    const facts: SshdFacts = {
      host: "127.0.0.1",
      port,
      user,
      home: lease.account.home,
      privateKeyPath,
      publicKey,
      knownHostsPath,
      password: lease.password,
      certificatePath,
      userCaPublicKey,
      hostKeyFingerprint: publicKeyFingerprint(hostPublicKey),
      hostPublicKey: hostKeyBody,
      pid,
      dir,
      logPath,
      dedicatedUser: lease.account.dedicated,
    };
    const probe = sshdProbe(facts);
    const runningWatchdog = watchdog;
    const runningLease = lease;
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        const tree = descendantsOf(await listProcesses(), pid).map((p) => p.pid);
        signalAll([pid], "SIGTERM");
        signalAll(tree, "SIGKILL");
        if (!(await waitGone([pid, ...tree], 5_000))) {
          signalAll([pid, ...tree], "SIGKILL");
          await waitGone([pid, ...tree], 5_000);
        }
        const exited = new Promise<void>((resolve) => {
          if (runningWatchdog.exitCode !== null || runningWatchdog.signalCode !== null) resolve();
          else runningWatchdog.once("exit", () => resolve());
        });
        runningWatchdog.stdin?.end();
        await exited;
        await runningLease.release();
        await rm(dir, { recursive: true, force: true });
      })();
      return stopping;
    };
    return {
      ...facts,
      ...probe,
      facts: () => ({ ...facts }),
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (err) {
    await cleanupOnError();
    throw err;
  }
}

/** True when the process is alive; re-exported for tests that check their own cleanup. */
export { isAlive };

/** A random suffix for names that must not collide between concurrent fixtures and tests. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString("hex")}`;
}
