import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { promisify } from "node:util";
import { isAlive, listProcesses, signalAll, waitGone } from "./processes.js";

const run = promisify(execFile);

/** The account tests log in as. */
export interface TestAccount {
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** True when the account was created for tests (running as root). */
  dedicated: boolean;
}

/** A registration of one fixture on one account; release it when the fixture stops. */
export interface AccountLease {
  account: TestAccount;
  /** The account's password, when one was asked for. */
  password?: string | undefined;
  release(): Promise<void>;
}

/** Where fixtures that run as root keep their state (root-owned, 0755, not world-writable). */
export const ROOT_STATE_DIR = "/run/sremote-sshd";

const USER_NAME = /^[a-z_][a-z0-9_-]{0,30}$/;

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

async function lookupUser(user: string): Promise<{ uid: number; gid: number; home: string } | undefined> {
  try {
    const { stdout } = await run("getent", ["passwd", user]);
    const f = stdout.trim().split(":");
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "" };
  } catch {
    return undefined;
  }
}

/** A cross-process mutex: `mkdir` is atomic; a lock whose owner died is broken. */
async function withMutex<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(`${dir}/owner`, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(await readFile(`${dir}/owner`, "utf8").catch(() => "0"));
      if (owner > 0 && owner !== process.pid && !(await isAlive(owner))) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`sshd fixture: lock ${dir} held too long by pid ${owner}`);
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function liveHolders(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const live: string[] = [];
  for (const name of names) {
    const pid = Number(name.split("-")[0]);
    if (pid > 0 && (await isAlive(pid))) live.push(name);
    else await rm(`${dir}/${name}`, { force: true });
  }
  return live;
}

async function killUserProcesses(uid: number): Promise<void> {
  const pids = (await listProcesses()).filter((p) => p.uid === uid && p.state !== "Z").map((p) => p.pid);
  if (pids.length === 0) return;
  signalAll(pids, "SIGKILL");
  await waitGone(pids, 5_000);
}

/**
 * Registers a fixture on a test account. As root: creates `user` when missing (shell
 * `/bin/bash`, unlocked with `usermod -p '*'` so key logins work with `UsePAM no`) and,
 * when no other live fixture holds the account, ends its leftover processes and gives it
 * a fresh, empty home. Fixtures in several processes may share one account; the last to
 * release it ends its processes and locks its password again. Not root: the current user
 * and its home, untouched.
 */
export async function leaseAccount(user: string, wantPassword: boolean): Promise<AccountLease> {
  if (!isRoot()) {
    if (wantPassword) {
      throw new Error("sshd fixture: the password variant needs root (it sets the test account's password)");
    }
    const me = userInfo();
    if (user !== me.username) {
      throw new Error(`sshd fixture: not running as root, so it can only log in as ${me.username}, not ${user}`);
    }
    return {
      account: { user: me.username, uid: me.uid, gid: me.gid, home: me.homedir, dedicated: false },
      release: async () => {},
    };
  }
  if (!USER_NAME.test(user)) throw new Error(`sshd fixture: invalid user name ${JSON.stringify(user)}`);
  const base = `${ROOT_STATE_DIR}/users`;
  await mkdir(base, { recursive: true, mode: 0o755 });
  const holdersDir = `${base}/${user}.holders`;
  const passwordFile = `${base}/${user}.password`;
  const holderName = `${process.pid}-${randomBytes(6).toString("hex")}`;
  let password: string | undefined;
  const account = await withMutex(`${base}/${user}.lock`, async () => {
    await mkdir(holdersDir, { recursive: true, mode: 0o700 });
    const first = (await liveHolders(holdersDir)).length === 0;
    let found = await lookupUser(user);
    if (!found) {
      await run("useradd", ["--no-create-home", "--home-dir", `/home/${user}`, "--shell", "/bin/bash", user]);
      found = await lookupUser(user);
      if (!found) throw new Error(`sshd fixture: useradd ${user} did not create the account`);
    }
    if (first) {
      await killUserProcesses(found.uid);
      await rm(passwordFile, { force: true });
      await run("usermod", ["-p", "*", user]);
      if (!found.home.startsWith("/home/")) throw new Error(`sshd fixture: refusing to wipe home ${found.home}`);
      await rm(found.home, { recursive: true, force: true });
      await mkdir(found.home, { mode: 0o755 });
      await chown(found.home, found.uid, found.gid);
      await chmod(found.home, 0o755);
    }
    if (wantPassword) {
      password = await readFile(passwordFile, "utf8").catch(() => undefined);
      if (password === undefined) {
        password = `pw-${randomBytes(12).toString("base64url")}`;
        const child = execFile("chpasswd");
        const done = new Promise<void>((resolve, reject) => {
          child.on("error", reject);
          child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd exited ${code}`))));
        });
        child.stdin?.end(`${user}:${password}\n`);
        await done;
        await writeFile(passwordFile, password, { mode: 0o600 });
      }
    }
    await writeFile(`${holdersDir}/${holderName}`, "");
    return { user, uid: found.uid, gid: found.gid, home: found.home, dedicated: true };
  });
  let released = false;
  return {
    account,
    password,
    release: async () => {
      if (released) return;
      released = true;
      await withMutex(`${base}/${user}.lock`, async () => {
        await rm(`${holdersDir}/${holderName}`, { force: true });
        if ((await liveHolders(holdersDir)).length === 0) {
          await killUserProcesses(account.uid);
          await rm(passwordFile, { force: true });
          await run("usermod", ["-p", "*", user]);
        }
      });
    },
  };
}
