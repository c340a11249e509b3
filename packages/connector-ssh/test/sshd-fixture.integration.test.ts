import { execFile, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { isAlive, type SshdFacts, startSshd } from "@sremote/testkit/sshd";
import { expect, it, vi } from "vitest";
import { describeSsh } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const run = promisify(execFile);

/** OpenSSH's own client, strict about the host key: the fixture must satisfy it as is. */
function openssh(f: SshdFacts, command: string) {
  return run("ssh", [
    "-F",
    "none",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${f.knownHostsPath}`,
    "-o",
    "IdentitiesOnly=yes",
    "-i",
    f.privateKeyPath,
    "-p",
    String(f.port),
    `${f.user}@${f.host}`,
    command,
  ]);
}

async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

// The password variants are exercised for real in auth.integration.test.ts.
describeSsh("private sshd fixture", () => {
  it("serves OpenSSH's client with its key and known_hosts; two start at once on different ports", async () => {
    const [a, b] = await Promise.all([startSshd(), startSshd()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dir).not.toBe(b.dir);
      for (const f of [a, b]) {
        const { stdout } = await openssh(f, "id -un; pwd; ls -A");
        const [user, home, ...files] = stdout.trim().split("\n");
        expect(user).toBe(f.user);
        expect(home).toBe(f.home);
        if (f.dedicatedUser) {
          // A dedicated account: unprivileged, and nothing in its home but what tests put there.
          expect(files.every((name) => !name.startsWith(".ssh"))).toBe(true);
          const uid = Number((await run("id", ["-u", f.user])).stdout);
          expect(uid).toBeGreaterThan(0);
          expect(statSync(f.home).uid).toBe(uid);
        }
      }
      expect(a.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("counts connections and their commands, and kills connections on demand", async () => {
    const f = await startSshd();
    try {
      const session = openssh(f, "sleep 20").catch((err: { code?: number }) => err.code);
      await eventually("the session's command", async () => (await f.userProcesses()).length === 1);
      expect((await f.connectionProcesses()).length).toBeGreaterThan(0);
      await f.killConnections();
      expect(await session).toBe(255);
      expect(await f.connectionProcesses()).toEqual([]);
      // sshd's death does not end the command: it is an orphan, still counted.
      const left = await f.userProcesses();
      expect(left).toHaveLength(1);
      for (const pid of left) process.kill(pid, "SIGKILL");
    } finally {
      await f.stop();
    }
  });

  it("stop() ends sshd and everything it started, removes its folder, and is idempotent", async () => {
    const f = await startSshd();
    const session = openssh(f, "sleep 30").catch(() => "ended");
    await eventually("the session's command", async () => (await f.userProcesses()).length === 1);
    const commands = await f.userProcesses();
    await Promise.all([f.stop(), f.stop()]);
    await f.stop();
    expect(await isAlive(f.pid)).toBe(false);
    for (const pid of commands) expect(await isAlive(pid)).toBe(false);
    expect(existsSync(f.dir)).toBe(false);
    expect(await session).toBe("ended");
  });

  it("a test process that dies without stop() leaves no sshd and no folder behind", async () => {
    const script = fileURLToPath(new URL("./fixtures/start-sshd-and-wait.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=@sremote/source", "--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const facts = await new Promise<SshdFacts>((resolve, reject) => {
      let text = "";
      child.stdout.on("data", (d: Buffer) => {
        text += d.toString();
        if (text.includes("\n")) resolve(JSON.parse(text.split("\n")[0] as string) as SshdFacts);
      });
      child.on("exit", (code) => reject(new Error(`fixture process exited early (${code})`)));
    });
    expect(await isAlive(facts.pid)).toBe(true);
    child.kill("SIGKILL");
    await eventually("the orphaned sshd to be killed", async () => !(await isAlive(facts.pid)));
    await eventually("its folder to be removed", () => !existsSync(facts.dir));
  });
});
