import { connect, type Socket } from "node:net";
import { expectCode } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { connectorFor, describeSsh, recordingLogger } from "./helpers.js";
import { eventually } from "./openssh-helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Opens a TCP connection that never logs in: with `MaxStartups 1`, sshd drops every other handshake meanwhile. */
async function holdStartup(sshd: SshdFixture): Promise<Socket> {
  const sock = connect({ host: sshd.host, port: sshd.port });
  sock.on("error", () => {});
  // The server's banner: the connection is accepted and counts as a pending startup.
  await new Promise<void>((resolve) => sock.once("data", () => resolve()));
  return sock;
}

// Issue 15: nothing-ran CONNECT_FAILED (sshd's MaxStartups refusing logins) is retried with
// backoff within the operation's deadline, on both transports.
describeSsh("connections refused during the handshake are retried", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd({ maxStartups: "1" });
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  for (const transport of ["ssh2", "openssh"] as const) {
    it(`${transport}: an exec that meets MaxStartups is retried and runs once the server accepts logins again`, async () => {
      const { lines, logger } = recordingLogger();
      const c = connectorFor(sshd, { transport, logger });
      const blocker = await holdStartup(sshd);
      try {
        const run = c.exec(["echo", "ran"]);
        expect(await eventually(() => lines.some((l) => /could not connect .* retrying/.test(l)))).toBe(true);
        blocker.destroy();
        expect((await run).stdout).toBe("ran\n");
      } finally {
        blocker.destroy();
        await c.close();
      }
    });
  }

  it("the retries stay within the operation's timeout, and connectAttempts: 1 fails at once", async () => {
    const blocker = await holdStartup(sshd);
    try {
      const c = connectorFor(sshd);
      const err = await c.exec(["true"], { timeoutMs: 1_500 }).then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
      expect(["CONNECT_FAILED", "TIMEOUT"]).toContain(err?.code);
      await c.close();
      const { lines, logger } = recordingLogger();
      const once = connectorFor(sshd, { connectAttempts: 1, logger });
      await expectCode(once.exec(["true"]), "CONNECT_FAILED");
      expect(lines.filter((l) => /retrying/.test(l))).toEqual([]);
      await once.close();
    } finally {
      blocker.destroy();
    }
  });
});
