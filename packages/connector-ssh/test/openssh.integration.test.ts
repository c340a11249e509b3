import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expectCode } from "@sremote/testkit";
import { listProcesses, type SshdFixture, sshConnectorOptions, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { baseDir } from "../src/openssh/private-dir.js";
import { connectorFor, describeSsh, recordingLogger, sshd } from "./helpers.js";
import { eventually, ourPrivateDirs, ourSshProcesses } from "./openssh-helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// One certificate-only sshd for the file (NERSC sshproxy style: no authorized_keys, a user
// CA signed the key, `<key>-cert.pub` beside it).
describeSsh("openssh transport", () => {
  let cert: SshdFixture;
  beforeAll(async () => {
    cert = await startSshd({ userCertificate: true, authorizedKeys: false });
  });
  afterAll(async () => {
    await cert?.stop();
  });

  it('ssh2 on a certificate-only account fails AUTH_FAILED recommending transport: "openssh"', async () => {
    const c = connectorFor(cert);
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).toContain('transport: "openssh"');
    expect(err.message).toContain(`${cert.privateKeyPath}-cert.pub`);
    await c.close();
  });

  it("auto picks the system ssh for the certificate, and logs in", async () => {
    const c = connectorFor(cert, { transport: "auto" });
    try {
      expect((await c.exec(["id", "-un"])).stdout).toBe(`${cert.user}\n`);
      const status = await c.status();
      expect(status.info).toMatchObject({ transport: "openssh" });
      expect(String(status.info?.autoReason)).toContain("-cert.pub");
      expect(c.capabilities.signals).toBe(false);
    } finally {
      await c.close();
    }
  });

  it("auto: ssh2 fails to authenticate (certificate only in the agent), so it hands over to the system ssh", async () => {
    // The key, without its certificate beside it, and an ssh-agent holding key + certificate:
    // `ssh -G` shows nothing ssh2 lacks, ssh2 offers the plain key (refused), OpenSSH the certificate.
    const dir = mkdtempSync(join(tmpdir(), "sremote-agent-"));
    const agentSock = join(dir, "agent.sock");
    const agent = spawn("ssh-agent", ["-D", "-a", agentSock], { stdio: "ignore" });
    try {
      expect(await eventually(() => existsSync(agentSock))).toBe(true);
      const key = join(dir, "key");
      writeFileSync(key, readFileSync(cert.privateKeyPath), { mode: 0o600 });
      writeFileSync(`${key}-cert.pub`, readFileSync(cert.certificatePath as string));
      const added = spawn("ssh-add", [key], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: "ignore" });
      expect(await new Promise((resolve) => added.on("exit", resolve))).toBe(0);
      rmSync(`${key}-cert.pub`);
      const { lines, logger } = recordingLogger();
      const c = connectorFor(cert, { transport: "auto", privateKeyPath: undefined, agent: agentSock, logger });
      try {
        expect((await c.exec(["id", "-un"])).stdout).toBe(`${cert.user}\n`);
        const info = (await c.status()).info as { transport: string; autoReason: string };
        expect(info).toMatchObject({ transport: "openssh", autoReason: "ssh2 failed to authenticate" });
        expect(lines.some((l) => /trying the system ssh/.test(l))).toBe(true);
      } finally {
        await c.close();
      }
    } finally {
      agent.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("close() ends the master and every session: no ssh process, socket or private folder is left", async () => {
    const c = connectorFor(cert, { transport: "openssh" });
    const spawned = await c.spawn(["sleep", "600"]);
    spawned.stdout.resume();
    spawned.stderr.resume();
    expect((await c.exec(["echo", "hi"])).stdout).toBe("hi\n");
    const running = await ourSshProcesses();
    expect(running.some((p) => / -N /.test(p.cmdline))).toBe(true);
    const dirs = ourPrivateDirs();
    expect(dirs.length).toBeGreaterThan(0);
    expect(statSync(dirs[0] as string).mode & 0o777).toBe(0o700);
    await c.close();
    await spawned.exited;
    expect(await eventually(async () => (await ourSshProcesses()).length === 0)).toBe(true);
    expect(ourPrivateDirs()).toEqual([]);
  });

  it("the master dying mid-call fails the call CONNECTION_LOST; the next call opens a new master", async () => {
    const c = connectorFor(cert, { transport: "openssh" });
    try {
      await c.exec(["true"]);
      const master = (await ourSshProcesses()).find((p) => / -N /.test(p.cmdline));
      expect(master).toBeDefined();
      // An hour-long command: only the loss can end it within the test's budget.
      const inFlight = c.exec(["sleep", "3607"]).then(
        () => "resolved",
        (err: unknown) => err,
      );
      await eventually(async () => (await ourSshProcesses()).length >= 2);
      process.kill(master?.pid as number, "SIGKILL");
      expect(await inFlight).toMatchObject({ code: "CONNECTION_LOST" });
      expect((await c.exec(["echo", "again"])).stdout).toBe("again\n");
      const after = (await ourSshProcesses()).filter((p) => / -N /.test(p.cmdline));
      expect(after.map((p) => p.pid)).not.toContain(master?.pid);
    } finally {
      await c.close();
    }
    expect(await eventually(async () => (await ourSshProcesses()).length === 0)).toBe(true);
    expect(ourPrivateDirs()).toEqual([]);
    // The orphaned `sleep 3607` on the server (no tty: a dropped connection does not end it).
    for (const p of await listProcesses()) {
      if (p.cmdline === "sleep 3607") process.kill(p.pid, "SIGKILL");
    }
  });

  it("a test process killed mid-session leaves a master; the next client ends it and removes the stale folder", async () => {
    // A real process (tsx running this package's sources) connects with the openssh
    // transport, then is SIGKILLed: no close(), no exit hook.
    const script = join(mkdtempSync(join(tmpdir(), "sremote-killed-")), "client.mts");
    writeFileSync(
      script,
      [
        `import { sshConnector } from ${JSON.stringify(fileURLToPath(new URL("../src/index.ts", import.meta.url)))};`,
        `const c = sshConnector(${JSON.stringify({ ...sshConnectorOptions(cert), transport: "openssh" })});`,
        "await c.exec(['true']);",
        "console.log('ready');",
        "setInterval(() => {}, 1000);",
      ].join("\n"),
    );
    const tsx = fileURLToPath(new URL("../../../node_modules/.bin/tsx", import.meta.url));
    const child = spawn(tsx, ["--conditions=@sremote/source", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => b.toString().includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`client exited ${code} before connecting`)));
    });
    // tsx runs the script in a child node process: its PID names the private folder. Other test
    // files (run in parallel) keep folders there too: only the one owned by our child counts.
    const parentOf = (pid: number) => {
      try {
        return Number(
          readFileSync(`/proc/${pid}/stat`, "utf8")
            .replace(/^.*\) /s, "")
            .split(" ")[1],
        );
      } catch {
        return -1;
      }
    };
    const ownedByChild = (n: string) => {
      const owner = Number(n.split("-")[0]);
      return owner === child.pid || parentOf(owner) === child.pid;
    };
    const folders = () => readdirNames(baseDir()).filter(ownedByChild);
    const theirs = (await listProcesses()).filter((p) => p.cmdline.startsWith("ssh ") && / -N /.test(p.cmdline));
    const stale = folders().filter((n) => theirs.some((p) => p.cmdline.includes(join(baseDir(), n))));
    expect(stale.length).toBe(1);
    const master = theirs.find((p) => p.cmdline.includes(join(baseDir(), stale[0] as string)));
    const owner = Number((stale[0] as string).split("-")[0]);
    process.kill(owner, "SIGKILL");
    child.kill("SIGKILL");
    await eventually(async () => !(await listProcesses()).some((p) => p.pid === owner && p.state !== "Z"));
    // The orphaned master (if it still runs: it normally does, re-parented) and its socket are
    // what the next client finds.
    const c = connectorFor(cert, { transport: "openssh" });
    try {
      await c.connect();
      expect(await eventually(async () => !(await listProcesses()).some((p) => p.pid === master?.pid))).toBe(true);
      expect(existsSync(join(baseDir(), stale[0] as string))).toBe(false);
    } finally {
      await c.close();
      rmSync(dirname(script), { recursive: true, force: true });
    }
  });

  it("putFile where the folder forbids new files writes an existing file in place, else PERMISSION_DENIED", async () => {
    const c = connectorFor(cert, { transport: "openssh" });
    const dir = `${cert.home}/locked-${process.pid}`;
    try {
      await c.exec(["mkdir", "-p", dir]);
      await c.putFile(`${dir}/f`, Buffer.from("old"), { mode: 0o644 });
      await c.exec(["chmod", "555", dir]);
      await c.putFile(`${dir}/f`, Buffer.from("new content"), { mode: 0o644 });
      expect(Buffer.from(await c.getFile(`${dir}/f`)).toString()).toBe("new content");
      await expectCode(c.putFile(`${dir}/g`, Buffer.from("x")), "PERMISSION_DENIED");
      expect((await c.exec(["ls", "-A", dir])).stdout).toBe("f\n");
    } finally {
      await c.exec(["sh", "-c", 'chmod 755 "$1" && rm -rf "$1"', "sh", dir]);
      await c.close();
    }
  });

  it("maps host key failures (HOST_KEY_UNKNOWN, HOST_KEY_MISMATCH) and honours accept-new and off", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sremote-kh-"));
    const empty = join(dir, "empty");
    writeFileSync(empty, "");
    const unknown = connectorFor(cert, { transport: "openssh", knownHostsPath: empty });
    await expectCode(unknown.exec(["true"]), "HOST_KEY_UNKNOWN");
    await unknown.close();
    const other = readFileSync(join(cert.dir, "user_ca.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    const wrong = join(dir, "wrong");
    writeFileSync(wrong, `[127.0.0.1]:${cert.port} ${other}\n`);
    const mismatch = connectorFor(cert, { transport: "openssh", knownHostsPath: wrong });
    await expectCode(mismatch.exec(["true"]), "HOST_KEY_MISMATCH");
    await mismatch.close();
    // accept-new records the key (ssh writes it); off checks nothing and writes nothing.
    const off = connectorFor(cert, { transport: "openssh", knownHostsPath: empty, hostKeyPolicy: "off" });
    expect((await off.exec(["echo", "off"])).stdout).toBe("off\n");
    await off.close();
    expect(readFileSync(empty, "utf8")).toBe("");
    const acceptNew = connectorFor(cert, { transport: "openssh", knownHostsPath: empty, hostKeyPolicy: "accept-new" });
    expect((await acceptNew.exec(["echo", "new"])).stdout).toBe("new\n");
    await acceptNew.close();
    expect(readFileSync(empty, "utf8")).toContain(cert.hostPublicKey.split(" ")[1]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("a missing ssh program fails UNAVAILABLE saying what to install", async () => {
    const c = connectorFor(cert, { transport: "openssh", sshPath: "/nonexistent/sremote/ssh" });
    const err = await expectCode(c.exec(["true"]), "UNAVAILABLE");
    expect(err.message).toMatch(/openssh-client/);
    await c.close();
  });
});

function readdirNames(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

describeSsh("openssh transport with an in-memory key", () => {
  it("writes privateKey 0600 into the private folder while connected and removes it on close", async () => {
    const facts = sshd();
    const c = connectorFor(facts, {
      transport: "openssh",
      privateKeyPath: undefined,
      privateKey: readFileSync(facts.privateKeyPath, "utf8"),
    });
    expect((await c.exec(["id", "-un"])).stdout).toBe(`${facts.user}\n`);
    const keys = ourPrivateDirs()
      .map((d) => join(d, "id"))
      .filter((p) => existsSync(p));
    expect(keys.length).toBe(1);
    expect(statSync(keys[0] as string).mode & 0o777).toBe(0o600);
    await c.close();
    expect(existsSync(keys[0] as string)).toBe(false);
  });
});

describeSsh("openssh transport against the server's MaxSessions", () => {
  it("sessions the master refuses beyond MaxSessions (10) lower the cap, wait, and run once a session frees", async () => {
    const facts = sshd();
    const { lines, logger } = recordingLogger();
    const c = connectorFor(facts, { transport: "openssh", maxChannelsPerConnection: 20, logger });
    try {
      // Ten open sessions: the server's whole MaxSessions.
      const cats = await Promise.all(Array.from({ length: 10 }, () => c.spawn(["cat"])));
      for (const p of cats) p.stderr.resume();
      const execs = Promise.all([c.exec(["echo", "a"]), c.exec(["echo", "b"])]);
      // Both execs are refused while the cats hold every session; the cap reaches 10 at the
      // first refusal (when the other exec was not yet in flight) or at the second. Ending a
      // cat before that would let the later exec in, with the cap left at 11.
      expect(await eventually(() => lines.some((l) => /refused a channel.*lowering its cap to 10\b/.test(l)))).toBe(
        true,
      );
      for (const [i, p] of cats.entries()) {
        const out: Buffer[] = [];
        p.stdout.on("data", (b: Buffer) => out.push(b));
        p.stdin.end(`cat-${i}`);
        expect(await p.exited).toEqual({ exitCode: 0, signal: null });
        expect(Buffer.concat(out).toString()).toBe(`cat-${i}`);
      }
      expect((await execs).map((r) => r.stdout)).toEqual(["a\n", "b\n"]);
      const info = (await c.status()).info as { channelCaps: number[] };
      expect(info.channelCaps).toEqual([10]);
    } finally {
      await c.close();
    }
  });
});
