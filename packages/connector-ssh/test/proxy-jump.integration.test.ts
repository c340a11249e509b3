import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { sshConnector } from "../src/index.js";
import { describeSsh } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describeSsh("ssh config and ProxyJump", () => {
  let fixture: SshdFixture;
  const dir = mkdtempSync(join(tmpdir(), "sremote-jump-"));
  let config = "";

  beforeAll(async () => {
    // DEBUG1 makes sshd log every direct-tcpip forwarding it carries for a jump.
    fixture = await startSshd({ extraConfig: ["LogLevel DEBUG1"] });
    const host = (alias: string, extra = "") =>
      [
        `Host ${alias}`,
        "  HostName 127.0.0.1",
        `  Port ${fixture.port}`,
        `  User ${fixture.user}`,
        `  IdentityFile ${fixture.privateKeyPath}`,
        `  UserKnownHostsFile ${fixture.knownHostsPath}`,
        "  ServerAliveInterval 5",
        extra,
      ].join("\n");
    config = join(dir, "config");
    writeFileSync(
      config,
      [
        host("sremote-direct"),
        host("sremote-jump"),
        host("sremote-one-hop", "  ProxyJump sremote-jump"),
        host("sremote-two-hops", "  ProxyJump sremote-jump,sremote-jump"),
        host("sremote-strange-jump", "  HostKeyAlias not-in-known-hosts"),
        host("sremote-behind-strange", "  ProxyJump sremote-strange-jump"),
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await fixture?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function forwardsLogged(): Promise<number> {
    const log = await fixture.readLog();
    return log
      .split("\n")
      .filter(
        (l) =>
          l.includes("server_request_direct_tcpip") && l.trimEnd().endsWith(`target 127.0.0.1 port ${fixture.port}`),
      ).length;
  }

  it("reads HostName, Port, User, IdentityFile and UserKnownHostsFile from the config", async () => {
    await using c = sshConnector({ host: "sremote-direct", sshConfigPath: config, agent: false });
    expect((await c.exec(["id", "-un"])).stdout).toBe(`${fixture.user}\n`);
    expect(c.settings.keepaliveIntervalMs).toBe(5_000);
    expect(await forwardsLogged()).toBe(0);
  });

  it("reaches the target through one jump host, and through two", async () => {
    for (const [alias, hops] of [
      ["sremote-one-hop", 1],
      ["sremote-two-hops", 2],
    ] as const) {
      const before = await forwardsLogged();
      await using c = sshConnector({ host: alias, sshConfigPath: config, agent: false });
      expect(c.settings.jumps).toHaveLength(hops);
      expect((await c.exec(["printf", "%s", alias])).stdout).toBe(alias);
      // Files and spawned processes ride the same forwarded connection.
      const path = `${fixture.home}/jump-${hops}-${process.pid}`;
      await c.putFile(path, Buffer.from([0, 255, 10]));
      expect(Buffer.from(await c.getFile(path))).toEqual(Buffer.from([0, 255, 10]));
      await c.deleteFile(path);
      expect(await forwardsLogged()).toBe(before + hops);
      const info = (await c.status()).info as { jumps: string[] };
      expect(info.jumps).toHaveLength(hops);
    }
  });

  it("verifies each jump host's key too: an unknown jump host is refused", async () => {
    await using c = sshConnector({ host: "sremote-behind-strange", sshConfigPath: config, agent: false });
    const err = await expectCode(c.exec(["true"]), "HOST_KEY_UNKNOWN");
    expect(err.message).toContain("sremote-strange-jump");
    expect(err.message).toContain(fixture.hostKeyFingerprint);
  });
});
