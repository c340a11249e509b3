import { execFile } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { describeUnless } from "../src/index.js";
import { type SshdFixture, sshdMissing, startSshd } from "../src/sshd/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Runs the system ssh client against the fixture; resolves to its exit status and stderr. */
async function ssh(f: SshdFixture, extra: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const argv = [
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    `UserKnownHostsFile=${f.knownHostsPath}`,
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-p",
    String(f.port),
    ...extra,
    `${f.user}@${f.host}`,
    "--",
    "echo logged-in-as-$(id -un)",
  ];
  try {
    const { stdout, stderr } = await promisify(execFile)("ssh", argv, { timeout: 30_000 });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { status: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

// The sshproxy case (NERSC): the account has no authorized_keys; a user CA signed the key.
describeUnless(sshdMissing())("a private sshd with a user certificate authority", () => {
  let f: SshdFixture;
  beforeAll(async () => {
    f = await startSshd({ userCertificate: true, authorizedKeys: false });
  });
  afterAll(async () => {
    await f?.stop();
  });

  it("signs the client key for the account: an OpenSSH user certificate beside the key", () => {
    expect(f.certificatePath).toBe(`${f.privateKeyPath}-cert.pub`);
    expect(existsSync(f.certificatePath!)).toBe(true);
    expect(readFileSync(f.certificatePath!, "utf8")).toMatch(/^ssh-ed25519-cert-v01@openssh\.com /);
    expect(f.userCaPublicKey).toMatch(/^ssh-ed25519 /);
  });

  it("logs the system ssh in with the certificate, and refuses the bare key (no authorized_keys)", async () => {
    const withCert = await ssh(f, ["-i", f.privateKeyPath, "-o", `CertificateFile=${f.certificatePath}`]);
    expect(withCert.stderr).not.toMatch(/Permission denied/);
    expect(withCert.status).toBe(0);
    expect(withCert.stdout.trim()).toBe(`logged-in-as-${f.user}`);
    // The same key without its certificate (a copy in another folder: ssh would find
    // <key>-cert.pub beside the original by itself) is refused: the account has no keys.
    const dir = mkdtempSync(join(tmpdir(), "sremote-bare-key-"));
    try {
      const bareKey = join(dir, "key");
      copyFileSync(f.privateKeyPath, bareKey);
      chmodSync(bareKey, 0o600);
      const bare = await ssh(f, ["-i", bareKey]);
      expect(bare.status).toBe(255);
      expect(bare.stderr).toMatch(/Permission denied/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
