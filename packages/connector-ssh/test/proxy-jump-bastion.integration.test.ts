import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { sshConnector } from "../src/index.js";
import { describeSsh, sshd } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// A bastion (a second private sshd) in front of the run's sshd, as at sites whose compute
// hosts are only reachable through a login node: both transports must go through it.
describeSsh("ProxyJump through a second sshd, on both transports", () => {
  let bastion: SshdFixture;
  const dir = mkdtempSync(join(tmpdir(), "sremote-bastion-"));
  let config = "";

  beforeAll(async () => {
    // DEBUG1 makes sshd log every direct-tcpip forwarding it carries for a jump.
    bastion = await startSshd({ extraConfig: ["LogLevel DEBUG1"] });
    const target = sshd();
    config = join(dir, "config");
    // One known_hosts with both servers (ssh2 checks every hop against the target's files).
    const knownHosts = join(dir, "known_hosts");
    writeFileSync(
      knownHosts,
      `[127.0.0.1]:${bastion.port} ${bastion.hostPublicKey}\n[127.0.0.1]:${target.port} ${target.hostPublicKey}\n`,
    );
    writeFileSync(
      config,
      [
        "Host sremote-bastion",
        "  HostName 127.0.0.1",
        `  Port ${bastion.port}`,
        `  User ${bastion.user}`,
        `  IdentityFile ${bastion.privateKeyPath}`,
        `  UserKnownHostsFile ${knownHosts}`,
        "Host sremote-behind-bastion",
        "  HostName 127.0.0.1",
        `  Port ${target.port}`,
        `  User ${target.user}`,
        `  IdentityFile ${target.privateKeyPath}`,
        `  UserKnownHostsFile ${knownHosts}`,
        "  ProxyJump sremote-bastion",
        "",
      ].join("\n"),
    );
  });
  afterAll(async () => {
    await bastion?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function forwardsToTarget(): Promise<number> {
    const log = await bastion.readLog();
    return log
      .split("\n")
      .filter(
        (l) =>
          l.includes("server_request_direct_tcpip") && l.trimEnd().endsWith(`target 127.0.0.1 port ${sshd().port}`),
      ).length;
  }

  for (const transport of ["ssh2", "openssh"] as const) {
    it(`${transport}: commands and files reach the target through the bastion`, async () => {
      const before = await forwardsToTarget();
      const c = sshConnector({ host: "sremote-behind-bastion", sshConfigPath: config, agent: false, transport });
      try {
        const r = await c.exec(["sh", "-c", 'echo "$SSH_CONNECTION"']);
        // The target answers (its own port in SSH_CONNECTION), not the bastion.
        expect(r.stdout.trim().split(" ")[3]).toBe(String(sshd().port));
        const path = `${sshd().home}/bastion-${transport}-${process.pid}`;
        await c.putFile(path, Buffer.from([0, 255, 10]));
        expect(Buffer.from(await c.getFile(path))).toEqual(Buffer.from([0, 255, 10]));
        await c.deleteFile(path);
        // Exactly one forwarded connection for everything above.
        expect(await forwardsToTarget()).toBe(before + 1);
      } finally {
        await c.close();
      }
    });
  }
});
