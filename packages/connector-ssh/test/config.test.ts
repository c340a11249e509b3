import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseJump, resolveSettings } from "../src/config.js";
import { sshConnector } from "../src/index.js";

const dir = mkdtempSync(join(tmpdir(), "sremote-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(text: string): string {
  const path = join(dir, `config-${Math.random().toString(16).slice(2)}`);
  writeFileSync(path, text);
  return path;
}

const CONFIG = `
Host perlmutter
  HostName perlmutter.nersc.gov
  User alice
  Port 2222
  IdentityFile ~/.ssh/nersc
  IdentityFile %d/.ssh/%r-%h
  ServerAliveInterval 20
  ServerAliveCountMax 5
  ConnectTimeout 7
  ProxyJump bob@gateway:2200,hop2

Host gateway
  HostName gw.example.org
  IdentityFile /keys/gw

Host *.lab !secret.lab
  User labuser
  StrictHostKeyChecking accept-new
  UserKnownHostsFile /etc/lab_known_hosts ~/lab2
  HashKnownHosts yes

Host secret.lab
  HostKeyAlias secret-alias
  StrictHostKeyChecking no

Host *
  User fallback
`;

describe("ssh config resolution", () => {
  it("resolves HostName, User, Port, IdentityFile tokens, keepalive and ConnectTimeout", () => {
    const s = resolveSettings({ host: "perlmutter", sshConfigPath: configFile(CONFIG), agent: false });
    expect(s.target).toMatchObject({
      alias: "perlmutter",
      hostname: "perlmutter.nersc.gov",
      username: "alice",
      port: 2222,
      hostKeyName: "perlmutter.nersc.gov",
      identityFiles: [join(homedir(), ".ssh/nersc"), join(homedir(), ".ssh/alice-perlmutter.nersc.gov")],
      agentSocket: undefined,
    });
    expect(s.keepaliveIntervalMs).toBe(20_000);
    expect(s.keepaliveCountMax).toBe(5);
    expect(s.connectTimeoutMs).toBe(7_000);
    expect(s.hostKeyPolicy).toBe("strict");
    expect(s.knownHostsFiles).toEqual([join(homedir(), ".ssh/known_hosts"), "/etc/ssh/ssh_known_hosts"]);
  });

  it("resolves each ProxyJump hop through the config too", () => {
    const s = resolveSettings({ host: "perlmutter", sshConfigPath: configFile(CONFIG), agent: false });
    expect(s.jumps.map((j) => [j.username, j.hostname, j.port, j.identityFiles])).toEqual([
      ["bob", "gw.example.org", 2200, ["/keys/gw"]],
      ["fallback", "hop2", 22, []],
    ]);
  });

  it("lets explicit options win over the config", () => {
    const s = resolveSettings({
      host: "perlmutter",
      sshConfigPath: configFile(CONFIG),
      username: "carol",
      port: 22,
      proxyJump: "none",
      connectTimeoutMs: 1234,
      keepaliveIntervalMs: 0,
      hostKeyPolicy: "accept-new",
      knownHostsPath: ["/tmp/a", "/tmp/b"],
      agent: false,
    });
    expect(s.target).toMatchObject({ username: "carol", port: 22, hostname: "perlmutter.nersc.gov" });
    expect(s.jumps).toEqual([]);
    expect(s.connectTimeoutMs).toBe(1234);
    expect(s.keepaliveIntervalMs).toBe(0);
    expect(s.hostKeyPolicy).toBe("accept-new");
    expect(s.knownHostsFiles).toEqual(["/tmp/a", "/tmp/b"]);
    expect(s.knownHostsWriteFile).toBe("/tmp/a");
  });

  it("applies wildcard and negated Host patterns, known_hosts settings and policies", () => {
    const path = configFile(CONFIG);
    const lab = resolveSettings({ host: "node1.lab", sshConfigPath: path, agent: false });
    expect(lab.target.username).toBe("labuser");
    expect(lab.hostKeyPolicy).toBe("accept-new");
    expect(lab.hashKnownHosts).toBe(true);
    expect(lab.knownHostsFiles.slice(0, 2)).toEqual(["/etc/lab_known_hosts", join(homedir(), "lab2")]);
    const secret = resolveSettings({ host: "secret.lab", sshConfigPath: path, agent: false });
    expect(secret.target.username).toBe("fallback");
    expect(secret.target.hostKeyName).toBe("secret-alias");
    // "no" never turns checking off silently: it means accept-new.
    expect(secret.hostKeyPolicy).toBe("accept-new");
  });

  it("uses defaults without a config", () => {
    const s = resolveSettings({ host: "example.org", sshConfigPath: false, agent: false });
    expect(s.target).toMatchObject({ hostname: "example.org", port: 22, username: userInfo().username });
    expect(s.connectTimeoutMs).toBe(30_000);
    expect(s.keepaliveIntervalMs).toBe(15_000);
    expect(s.keepaliveCountMax).toBe(3);
    expect(s.configPath).toBeUndefined();
  });

  it("takes the agent from the option, the config's IdentityAgent or SSH_AUTH_SOCK", () => {
    const saved = process.env.SSH_AUTH_SOCK;
    try {
      process.env.SSH_AUTH_SOCK = "/run/agent.sock";
      expect(resolveSettings({ host: "x", sshConfigPath: false }).target.agentSocket).toBe("/run/agent.sock");
      expect(resolveSettings({ host: "x", sshConfigPath: false, agent: "/a" }).target.agentSocket).toBe("/a");
      expect(resolveSettings({ host: "x", sshConfigPath: false, agent: false }).target.agentSocket).toBeUndefined();
      const path = configFile("Host x\n  IdentityAgent none\n");
      expect(resolveSettings({ host: "x", sshConfigPath: path }).target.agentSocket).toBeUndefined();
      delete process.env.SSH_AUTH_SOCK;
      expect(() => resolveSettings({ host: "x", sshConfigPath: false, agent: true })).toThrow(/SSH_AUTH_SOCK/);
    } finally {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = saved;
    }
  });

  it("never runs Match exec commands from the config", () => {
    const marker = join(dir, "match-exec-ran");
    const path = configFile(`Match exec "touch ${marker}"\n  User matched\nHost *\n  User plain\n`);
    const s = resolveSettings({ host: "x", sshConfigPath: path, agent: false });
    expect(s.target.username).toBe("plain");
    expect(existsSync(marker)).toBe(false);
  });

  it("parses jump specs and rejects bad ones", () => {
    expect(parseJump("u@h:1")).toEqual({ user: "u", host: "h", port: 1 });
    expect(parseJump("ssh://u@[::1]:22")).toEqual({ user: "u", host: "::1", port: 22 });
    expect(parseJump("h")).toEqual({ host: "h" });
    expect(() => parseJump("u@h:0")).toThrow(/port/);
    expect(() => parseJump("a b")).toThrow(/ProxyJump/);
  });

  it("rejects bad options with INVALID_ARGUMENT before connecting", () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ host: "" }, /host/],
      [{ host: "a b" }, /host/],
      [{ host: "h", port: 0 }, /port/],
      [{ host: "h", port: 1.5 }, /port/],
      [{ host: "h", hostKeyPolicy: "yolo" }, /hostKeyPolicy/],
      [{ host: "h", connectTimeoutMs: -1 }, /connectTimeoutMs/],
      [{ host: "h", maxConnections: 0 }, /maxConnections/],
      [{ host: "h", maxChannelsPerConnection: 2.5 }, /maxChannelsPerConnection/],
      [{ host: "h", knownHostsPath: [] }, /knownHostsPath/],
      [{ host: "h", sshConfigPath: join(dir, "missing") }, /cannot read ssh config/],
    ];
    for (const [options, message] of bad) {
      let caught: unknown;
      try {
        sshConnector({ sshConfigPath: false, agent: false, ...options } as never);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(options)).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect((caught as Error).message).toMatch(message);
    }
  });

  it("rejects bad operation input with INVALID_ARGUMENT, without connecting (host does not exist)", async () => {
    const c = sshConnector({ host: "no-such-host.invalid", sshConfigPath: false, agent: false });
    const calls: Array<() => Promise<unknown>> = [
      () => c.putFile("", new Uint8Array()),
      () => c.putFile("/x", "text" as unknown as Uint8Array),
      () => c.putFile("/x", new Uint8Array(), { mode: 0o10000 }),
      () => c.getFile("a\0b"),
      () => c.deleteFile(""),
      () => c.exec([]),
      () => c.exec(["echo", "a\0b"]),
      () => c.exec([""]),
      () => c.exec(["env"], { env: { "BAD NAME": "x" } }),
      () => c.exec(["cat"], { stdin: 5 as unknown as string }),
      () => c.spawn(["x"], { env: { A: "nul\0" } }),
    ];
    for (const call of calls) {
      const promise = call();
      expect(promise).toBeInstanceOf(Promise);
      await expect(promise).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    }
    expect((await c.status()).connected).toBe(false);
    await c.close();
  });
});
