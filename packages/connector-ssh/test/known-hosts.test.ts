import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  checkHostKey,
  formatKnownHostsLine,
  hostFieldMatches,
  knownHostName,
  parseKnownHosts,
  sha256Fingerprint,
} from "../src/index.js";
import { appendKnownHost, keyTypeOf, preferredHostKeyAlgorithms } from "../src/known-hosts.js";

let dir = "";
const keys: Record<string, { line: string; blob: Buffer }> = {};

function keygen(name: string, type: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", join(dir, name)]);
  const line = readFileSync(join(dir, `${name}.pub`), "utf8").trim();
  keys[name] = { line, blob: Buffer.from(line.split(" ")[1] as string, "base64") };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sremote-kh-"));
  keygen("ed", "ed25519");
  keygen("ed2", "ed25519");
  keygen("ecdsa", "ecdsa");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const key = (n: string) => keys[n] as { line: string; blob: Buffer };
const body = (n: string) => key(n).line.split(" ").slice(0, 2).join(" ");

describe("known_hosts", () => {
  it("uses [host]:port for ports other than 22, as OpenSSH does", () => {
    expect(knownHostName("Example.ORG", 22)).toBe("example.org");
    expect(knownHostName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
  });

  it("computes the fingerprint ssh-keygen prints", () => {
    const out = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "ed.pub")], { encoding: "utf8" });
    expect(out).toContain(sha256Fingerprint(key("ed").blob));
    expect(keyTypeOf(key("ecdsa").blob)).toBe("ecdsa-sha2-nistp256");
  });

  it("matches plain, wildcard, negated and [host]:port patterns", () => {
    expect(hostFieldMatches("a.example.org,b.example.org", "b.example.org")).toBe(true);
    expect(hostFieldMatches("*.example.org", "x.example.org")).toBe(true);
    expect(hostFieldMatches("*.example.org,!bad.example.org", "bad.example.org")).toBe(false);
    expect(hostFieldMatches("h?st", "host")).toBe(true);
    expect(hostFieldMatches("[127.0.0.1]:2222", "[127.0.0.1]:2222")).toBe(true);
    expect(hostFieldMatches("127.0.0.1", "[127.0.0.1]:2222")).toBe(false);
    expect(hostFieldMatches("a.b", "axb")).toBe(false);
  });

  it("writes hashed lines that OpenSSH's ssh-keygen -F finds, and reads its hashed lines", () => {
    const file = join(dir, "hashed");
    writeFileSync(file, `${formatKnownHostsLine("[10.1.2.3]:2200", key("ed").blob, true)}\n`);
    const found = execFileSync("ssh-keygen", ["-F", "[10.1.2.3]:2200", "-f", file], { encoding: "utf8" });
    expect(found).toContain("ssh-ed25519");
    // And the other way round: a file hashed by ssh-keygen -H.
    const plain = join(dir, "to-hash");
    writeFileSync(plain, `[10.9.9.9]:2201 ${body("ecdsa")}\n`);
    execFileSync("ssh-keygen", ["-H", "-f", plain], { stdio: "ignore" });
    const entries = parseKnownHosts(readFileSync(plain, "utf8"), plain);
    expect(entries[0]?.hosts.startsWith("|1|")).toBe(true);
    expect(checkHostKey(entries, "[10.9.9.9]:2201", key("ecdsa").blob).status).toBe("known");
    expect(checkHostKey(entries, "[10.9.9.9]:2202", key("ecdsa").blob).status).toBe("unknown");
  });

  it("tells known, unknown, changed and revoked keys apart; several keys per host", () => {
    const text = [
      "# comment",
      "",
      `h1,h1.example.org ${body("ed")}`,
      `h1 ${body("ecdsa")}`,
      `h2 ${body("ed2")}`,
      `@revoked * ${body("ed2")}`,
      "garbage line",
      `@cert-authority *.example.org ${body("ed")}`,
    ].join("\n");
    const entries = parseKnownHosts(text, "/kh");
    expect(entries).toHaveLength(5);
    expect(entries[0]).toMatchObject({ file: "/kh", line: 3, keyType: "ssh-ed25519" });
    expect(checkHostKey(entries, "h1", key("ed").blob).status).toBe("known");
    expect(checkHostKey(entries, "h1", key("ecdsa").blob).status).toBe("known");
    const changed = checkHostKey(entries, "h1", key("ed2").blob);
    expect(changed.status).toBe("revoked");
    const other = checkHostKey(entries, "h1.example.org", key("ecdsa").blob);
    expect(other).toEqual({ status: "unknown", otherTypes: ["ssh-ed25519"] });
    const mismatch = checkHostKey(parseKnownHosts(`h3 ${body("ed")}`, "/x"), "h3", key("ed2").blob);
    expect(mismatch.status).toBe("changed");
    // @cert-authority lines are not host keys.
    expect(checkHostKey(entries, "z.example.org", key("ed").blob).status).toBe("unknown");
  });

  it("prefers the host key algorithms known_hosts holds", () => {
    expect(preferredHostKeyAlgorithms(["ssh-rsa"]).slice(0, 3)).toEqual(["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    expect(preferredHostKeyAlgorithms([])[0]).toBe("ssh-ed25519");
    expect(new Set(preferredHostKeyAlgorithms(["ecdsa-sha2-nistp256"])).size).toBe(7);
  });

  it("appends with a newline, creating the folder 0700 and the file 0600", async () => {
    const file = join(dir, "new", "sub", "known_hosts");
    await appendKnownHost(file, "a ssh-ed25519 AAAA");
    writeFileSync(file, `${readFileSync(file, "utf8")}b ssh-ed25519 BBBB`);
    await appendKnownHost(file, "c ssh-ed25519 CCCC");
    expect(readFileSync(file, "utf8")).toBe("a ssh-ed25519 AAAA\nb ssh-ed25519 BBBB\nc ssh-ed25519 CCCC\n");
    const modes = execFileSync("stat", ["-c", "%a", file, join(dir, "new", "sub")], { encoding: "utf8" }).trim();
    expect(modes.split("\n")).toEqual(["600", "700"]);
  });
});
