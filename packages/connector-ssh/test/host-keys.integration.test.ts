import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectCode, remoteExists } from "@sremote/testkit";
import { startSshd } from "@sremote/testkit/sshd";
import { afterAll, expect, it, vi } from "vitest";
import { sha256Fingerprint, sshConnector } from "../src/index.js";
import { connectorFor, describeSsh, fixtureOptions, recordingLogger, sshd } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const dir = mkdtempSync(join(tmpdir(), "sremote-hostkeys-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function knownHosts(text: string): string {
  const path = join(dir, `known_hosts-${++counter}`);
  writeFileSync(path, text);
  return path;
}

function otherKey(type = "ed25519"): string {
  const path = join(dir, `other-${++counter}`);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path]);
  return readFileSync(`${path}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
}

/** A path in the test account's home that a refused connection must never create. */
function marker(tag: string): string {
  return `${sshd().home}/hostkey-marker-${tag}-${process.pid}-${++counter}`;
}

async function expectNotCreated(path: string): Promise<void> {
  await using observer = connectorFor();
  expect(await remoteExists(observer, path), `${path} was created: a command ran`).toBe(false);
}

describeSsh("host key verification", () => {
  it("an unknown host is refused before anything runs; the error shows the fingerprint and the line to add", async () => {
    const facts = sshd();
    const path = knownHosts("");
    const m = marker("unknown");
    await using c = sshConnector(fixtureOptions(facts, { knownHostsPath: path }));
    const err = await expectCode(c.exec(["touch", m]), "HOST_KEY_UNKNOWN");
    expect(err.message).toContain(facts.hostKeyFingerprint);
    expect(err.message).toContain(`[127.0.0.1]:${facts.port} ${facts.hostPublicKey}`);
    expect(err.message).toContain(path);
    await expectNotCreated(m);
    // Nothing was written under strict.
    expect(readFileSync(path, "utf8")).toBe("");
  });

  it("a changed key is refused (HOST_KEY_MISMATCH) naming the file, the line and both fingerprints", async () => {
    const facts = sshd();
    const stale = otherKey();
    const path = knownHosts(`# header\n[127.0.0.1]:${facts.port} ${stale}\n`);
    const m = marker("changed");
    await using c = sshConnector(fixtureOptions(facts, { knownHostsPath: path }));
    const err = await expectCode(c.exec(["touch", m]), "HOST_KEY_MISMATCH");
    expect(err.message).toContain("HOST KEY CHANGED");
    expect(err.message).toContain(`${path}:2`);
    expect(err.message).toContain(facts.hostKeyFingerprint);
    expect(err.message).toContain(sha256Fingerprint(Buffer.from(stale.split(" ")[1] as string, "base64")));
    await expectNotCreated(m);
    // accept-new never accepts a changed key either.
    await using again = sshConnector(fixtureOptions(facts, { knownHostsPath: path, hostKeyPolicy: "accept-new" }));
    await expectCode(again.exec(["touch", m]), "HOST_KEY_MISMATCH");
    await expectNotCreated(m);
  });

  it("a key marked @revoked is refused", async () => {
    const facts = sshd();
    const path = knownHosts(`[127.0.0.1]:${facts.port} ${facts.hostPublicKey}\n@revoked * ${facts.hostPublicKey}\n`);
    await using c = sshConnector(fixtureOptions(facts, { knownHostsPath: path }));
    expect((await expectCode(c.connect(), "HOST_KEY_MISMATCH")).message).toMatch(/@revoked/);
  });

  it("accept-new trusts a new host once, writes its key, and strict accepts it afterwards", async () => {
    const facts = sshd();
    const path = join(dir, `fresh-${++counter}`, "known_hosts");
    const { lines, logger } = recordingLogger();
    await using c = sshConnector(fixtureOptions(facts, { knownHostsPath: path, hostKeyPolicy: "accept-new", logger }));
    expect((await c.exec(["true"])).exitCode).toBe(0);
    expect(readFileSync(path, "utf8")).toBe(`[127.0.0.1]:${facts.port} ${facts.hostPublicKey}\n`);
    expect(lines.join("\n")).toContain(facts.hostKeyFingerprint);
    await using strict = sshConnector(fixtureOptions(facts, { knownHostsPath: path }));
    expect((await strict.exec(["true"])).exitCode).toBe(0);
    // OpenSSH agrees with what was written.
    const found = execFileSync("ssh-keygen", ["-F", `[127.0.0.1]:${facts.port}`, "-f", path], { encoding: "utf8" });
    expect(found).toContain(facts.hostPublicKey);
  });

  it("accepts hashed known_hosts entries (ssh-keygen -H) and HashKnownHosts-style writes", async () => {
    const facts = sshd();
    const path = knownHosts(`[127.0.0.1]:${facts.port} ${facts.hostPublicKey}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", path], { stdio: "ignore" });
    expect(readFileSync(path, "utf8")).toMatch(/^\|1\|/);
    await using c = sshConnector(fixtureOptions(facts, { knownHostsPath: path }));
    expect((await c.exec(["true"])).exitCode).toBe(0);
  });

  it("policy off connects to an unknown host only as an explicit choice, and warns", async () => {
    const facts = sshd();
    const { lines, logger } = recordingLogger();
    await using c = sshConnector(
      fixtureOptions(facts, { knownHostsPath: knownHosts(""), hostKeyPolicy: "off", logger }),
    );
    expect((await c.exec(["true"])).exitCode).toBe(0);
    expect(lines.some((l) => l.startsWith("warn") && l.includes("OFF") && l.includes(facts.hostKeyFingerprint))).toBe(
      true,
    );
  });

  it("several keys per host: a host known only by its ECDSA key is verified with that key", async () => {
    const ecdsa = join(dir, `host-ecdsa-${++counter}`);
    execFileSync("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa]);
    const fixture = await startSshd({ extraConfig: [`HostKey ${ecdsa}`] });
    try {
      const ecdsaLine = readFileSync(`${ecdsa}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
      // Only the ECDSA key is known: without preferring it, ssh2 would pick ed25519 and call the host unknown.
      const onlyEcdsa = knownHosts(`[127.0.0.1]:${fixture.port} ${ecdsaLine}\n`);
      await using a = sshConnector(fixtureOptions(fixture, { knownHostsPath: onlyEcdsa }));
      expect((await a.exec(["true"])).exitCode).toBe(0);
      expect((await a.status()).info?.hostKeyFingerprint).toBe(
        sha256Fingerprint(Buffer.from(ecdsaLine.split(" ")[1] as string, "base64")),
      );
      // Both keys listed on separate lines: fine too.
      const both = knownHosts(
        `[127.0.0.1]:${fixture.port} ${fixture.hostPublicKey}\n[127.0.0.1]:${fixture.port} ${ecdsaLine}\n`,
      );
      await using b = sshConnector(fixtureOptions(fixture, { knownHostsPath: both }));
      expect((await b.exec(["true"])).exitCode).toBe(0);
    } finally {
      await fixture.stop();
    }
  });
});
