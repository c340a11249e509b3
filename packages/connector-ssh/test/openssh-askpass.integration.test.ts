import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { listProcesses, type SshdFixture, sshdProbe, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { connectorFor, describeSsh, recordingLogger, sshd } from "./helpers.js";
import { ourPrivateDirs } from "./openssh-helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Every file below `dir`, read whole. */
function filesBelow(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isDirectory()) out.push(...filesBelow(path));
    else if (st.isFile()) out.push({ path, text: readFileSync(path, "latin1") });
  }
  return out;
}

/** Where a secret could leak on this machine: every process's argv and environment. */
async function processesShowing(secret: string): Promise<number[]> {
  const hits: number[] = [];
  for (const p of await listProcesses()) {
    let environ = "";
    try {
      environ = readFileSync(`/proc/${p.pid}/environ`, "latin1");
    } catch {}
    if (p.cmdline.includes(secret) || environ.includes(secret)) hits.push(p.pid);
  }
  return hits;
}

// Accounts that log in by password only (no authorized_keys): the system ssh asks its
// SSH_ASKPASS helper, which gets the answer from this process over a private unix socket.
describeSsh("openssh transport: password and keyboard-interactive through the askpass bridge", () => {
  let pw: SshdFixture;
  let kbd: SshdFixture;
  beforeAll(async () => {
    [pw, kbd] = await Promise.all([
      startSshd({ password: true, authorizedKeys: false }),
      startSshd({ keyboardInteractive: true, authorizedKeys: false }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([pw?.stop(), kbd?.stop()]);
  });

  it("logs in with `password`; the answer is in no argv, environment, file of the private folder or log line", async () => {
    const secret = pw.password as string;
    const { lines, logger } = recordingLogger();
    const c = connectorFor(pw, { transport: "openssh", privateKeyPath: undefined, password: secret, logger });
    try {
      expect((await c.exec(["id", "-un"])).stdout).toBe(`${pw.user}\n`);
      // While the master is up: nothing on this machine shows the password.
      expect(await processesShowing(secret)).toEqual([]);
      for (const dir of ourPrivateDirs()) {
        for (const f of filesBelow(dir)) expect(f.text, f.path).not.toContain(secret);
      }
    } finally {
      await c.close();
    }
    for (const line of lines) expect(line).not.toContain(secret);
  });

  it("a wrong password fails AUTH_FAILED without showing it", async () => {
    const secret = `${pw.password}-wrong`;
    const { lines, logger } = recordingLogger();
    const c = connectorFor(pw, { transport: "openssh", privateKeyPath: undefined, password: secret, logger });
    const err = await expectCode(c.exec(["true"]), "AUTH_FAILED");
    expect(err.message).not.toContain(secret);
    expect(JSON.stringify(err)).not.toContain(secret);
    for (const line of lines) expect(line).not.toContain(secret);
    await c.close();
  });

  it("answers keyboard-interactive prompts through onKeyboardInteractive (PAM, as MFA sites ask)", async () => {
    const seen: string[] = [];
    const c = connectorFor(kbd, {
      transport: "openssh",
      privateKeyPath: undefined,
      onKeyboardInteractive: (prompts) => {
        seen.push(...prompts.map((p) => p.prompt));
        return prompts.map(() => kbd.password as string);
      },
    });
    try {
      expect((await c.exec(["id", "-un"])).stdout).toBe(`${kbd.user}\n`);
      // One authentication for many calls: the master asked once.
      await c.exec(["true"]);
      expect(seen.length).toBe(1);
      expect(seen[0]).toMatch(/password/i);
    } finally {
      await c.close();
    }
  });

  it("without prompts allowed (BatchMode), a password account fails AUTH_FAILED at once", async () => {
    const c = connectorFor(pw, { transport: "openssh", privateKeyPath: undefined });
    await expectCode(c.exec(["true"]), "AUTH_FAILED");
    await c.close();
  });

  it("opens an encrypted key with `passphrase` (ssh asks for it through the bridge)", async () => {
    const facts = sshd();
    const dir = mkdtempSync(join(tmpdir(), "sremote-passphrase-"));
    const passphrase = "open 'sesame' $(now)";
    try {
      const key = join(dir, "key");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "openssh-passphrase", "-f", key]);
      await sshdProbe(facts).authorizeKey(readFileSync(`${key}.pub`, "utf8"));
      const c = connectorFor(facts, { transport: "openssh", privateKeyPath: key, passphrase });
      try {
        expect((await c.exec(["id", "-un"])).stdout).toBe(`${facts.user}\n`);
        expect(await processesShowing(passphrase)).toEqual([]);
      } finally {
        await c.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
