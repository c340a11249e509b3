import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConnectorError } from "@sremote/core";

/**
 * The private folders of the openssh transport: `<tmp>/sremote-ssh-<uid>/` (0700, owned by
 * us, checked), one `<pid>-<random>/` per connector instance below it holding the control
 * socket (`c/%C`), the askpass helper and its socket, and an in-memory private key. The
 * path stays short: a unix socket path has ~104 bytes.
 */
export function baseDir(): string {
  const uid = process.getuid?.() ?? 0;
  const tmp = tmpdir();
  return join(tmp.length <= 40 ? tmp : "/tmp", `sremote-ssh-${uid}`);
}

function ensurePrivate(path: string): void {
  try {
    mkdirSync(path, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const st = lstatSync(path);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid) || (st.mode & 0o077) !== 0) {
    throw new ConnectorError(
      "UNAVAILABLE",
      "ssh",
      `openssh transport: ${path} must be a folder owned by this user with mode 0700 (remove it and retry)`,
    );
  }
}

/** Creates this instance's private folder (and its `c/` for the control socket). */
export function makeInstanceDir(): string {
  const base = baseDir();
  ensurePrivate(base);
  const dir = join(base, `${process.pid}-${randomBytes(3).toString("hex")}`);
  mkdirSync(dir, { mode: 0o700 });
  mkdirSync(join(dir, "c"), { mode: 0o700 });
  return dir;
}

/** True while `pid` runs; a zombie (killed, not yet reaped: common in containers) is dead. */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (not Linux): the signal test is all we have
  }
}

/**
 * Cleans up after processes that died without `close()`: for each instance folder whose
 * owner PID is gone, asks a master still listening on its socket to exit (`ssh -O exit`),
 * then removes the folder (stale socket, key, askpass). Errors are ignored.
 */
export async function sweepStale(sshPath: string): Promise<void> {
  const base = baseDir();
  const names = await readdir(base).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const pid = Number(name.split("-")[0]);
      if (!Number.isInteger(pid) || pid <= 0 || pidAlive(pid)) return;
      const dir = join(base, name);
      const sockets = await readdir(join(dir, "c")).catch(() => [] as string[]);
      await Promise.all(
        sockets.map(
          (s) =>
            new Promise<void>((resolve) => {
              const child = execFile(
                sshPath,
                ["-F", "/dev/null", "-o", `ControlPath=${join(dir, "c", s)}`, "-O", "exit", "stale"],
                { timeout: 5_000 },
                () => resolve(),
              );
              child.on("error", () => resolve());
            }),
        ),
      );
      await rm(dir, { recursive: true, force: true });
    }),
  );
}

/** What must not outlive this process: master PIDs to end and private folders to remove. */
const leftovers = { pids: new Set<number>(), dirs: new Set<string>() };
let hooked = false;

/**
 * Registers a master process or private folder to be ended/removed if this process exits
 * without `close()` (a script that forgets it, `process.exit()`). A process killed by a
 * signal cannot run this: the next connector's {@link sweepStale} cleans up instead.
 */
export function cleanupAtExit(what: { pid?: number | undefined; dir?: string | undefined }, add = true): void {
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const pid of leftovers.pids) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // Already gone.
        }
      }
      for (const dir of leftovers.dirs) rmSync(dir, { recursive: true, force: true });
    });
  }
  if (what.pid !== undefined) {
    if (add) leftovers.pids.add(what.pid);
    else leftovers.pids.delete(what.pid);
  }
  if (what.dir !== undefined) {
    if (add) leftovers.dirs.add(what.dir);
    else leftovers.dirs.delete(what.dir);
  }
}
