/**
 * The private sshd's files and process: its sshd_config, keys, a free port, the watchdog
 * that ends it with its owner, and readiness. startSshd (fixture.ts) puts them together.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { isAlive } from "./processes.js";

const run = promisify(execFile);
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function keygen(path: string, comment: string): Promise<string> {
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
  return (await readFile(`${path}.pub`, "utf8")).trim();
}

// The watchdog shell is sshd's parent. When the fixture's process ends for any reason
// (including a crash that skips stop()), its stdin pipe closes and the watchdog kills
// the daemon and its whole process tree, so no sshd outlives the tests.
export const WATCHDOG = `
killtree() { for c in $(pgrep -P "$1"); do killtree "$c"; done; kill -KILL "$1" 2>/dev/null; }
exec 3<&0
"$0" -D -f "$1" -E "$2" </dev/null &
sshd=$!
{ cat <&3 >/dev/null; killtree "$sshd"; rm -rf "$3"; } &
wait "$sshd"
`;

/** Removes fixture folders whose owning process is gone (a run killed before its watchdog could clean up). */
export async function sweepStaleFixtures(base: string): Promise<void> {
  for (const name of await readdir(base).catch(() => [] as string[])) {
    if (!name.startsWith("fixture-")) continue;
    const owner = Number(await readFile(join(base, name, "owner"), "utf8").catch(() => "0"));
    if (owner > 0 && (await isAlive(owner))) continue;
    const sshdPid = Number(await readFile(join(base, name, "sshd.pid"), "utf8").catch(() => "0"));
    if (sshdPid > 0 && (await isAlive(sshdPid))) continue;
    // No owner file yet may mean another fixture is being created right now: leave young ones.
    if (owner === 0) {
      const age = Date.now() - (await stat(join(base, name)).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age < 60_000) continue;
    }
    await rm(join(base, name), { recursive: true, force: true });
  }
}

export function sshdConfig(o: {
  port: number;
  dir: string;
  user: string;
  password: boolean;
  keyboardInteractive: boolean;
  maxSessions: number;
  maxStartups: string;
  strictModes: boolean;
  authorizedKeys: boolean;
  userCa: boolean;
  extra: readonly string[];
}): string {
  return [
    // sshd keeps the first value it reads for most keywords: extra lines go first to win.
    ...o.extra,
    `Port ${o.port}`,
    "ListenAddress 127.0.0.1",
    "AddressFamily inet",
    `HostKey ${o.dir}/ssh_host_ed25519_key`,
    `PidFile ${o.dir}/sshd.pid`,
    `AuthorizedKeysFile ${o.authorizedKeys ? `${o.dir}/authorized_keys` : "none"}`,
    ...(o.userCa ? [`TrustedUserCAKeys ${o.dir}/user_ca.pub`] : []),
    `AllowUsers ${o.user}`,
    `StrictModes ${o.strictModes ? "yes" : "no"}`,
    // PAM's session modules (pam_loginuid, pam_systemd) may fail in containers: only when asked.
    `UsePAM ${o.keyboardInteractive ? "yes" : "no"}`,
    "PubkeyAuthentication yes",
    `PasswordAuthentication ${o.password && !o.keyboardInteractive ? "yes" : "no"}`,
    `KbdInteractiveAuthentication ${o.keyboardInteractive ? "yes" : "no"}`,
    "PermitRootLogin no",
    "PermitEmptyPasswords no",
    `MaxSessions ${o.maxSessions}`,
    `MaxStartups ${o.maxStartups}`,
    "MaxAuthTries 20",
    "LoginGraceTime 60",
    "UseDNS no",
    "PrintMotd no",
    "PrintLastLog no",
    "X11Forwarding no",
    "AllowTcpForwarding yes",
    "Subsystem sftp internal-sftp",
    "LogLevel VERBOSE",
    "",
  ].join("\n");
}

export async function waitReady(child: ChildProcess, pidFile: string, logPath: string): Promise<number | "port-taken"> {
  const end = Date.now() + 15_000;
  for (;;) {
    const text = await readFile(pidFile, "utf8").catch(() => "");
    if (/^\d+\s*$/.test(text)) return Number(text);
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = await readFile(logPath, "utf8").catch(() => "");
      if (/Address already in use/.test(log)) return "port-taken";
      throw new Error(`sshd fixture: sshd exited before it was ready. Its log:\n${log.slice(-4000)}`);
    }
    if (Date.now() > end) {
      const log = await readFile(logPath, "utf8").catch(() => "");
      throw new Error(`sshd fixture: sshd not ready after 15 s. Its log:\n${log.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
