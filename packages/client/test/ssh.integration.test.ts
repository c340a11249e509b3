import { randomBytes } from "node:crypto";
import { sshConnector } from "@sremote/connector-ssh";
import { describeUnless } from "@sremote/testkit";
import { type SshdFixture, sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Load and faults through the client over a real OpenSSH server (issue 3's "what must hold").
describeUnless(sshdMissing())("RemoteClient over SSH: load and faults", () => {
  let sshd: SshdFixture;
  let root: string;

  const connect = () => sshConnector(sshConnectorOptions(sshd));
  const client = (options: Partial<ConstructorParameters<typeof RemoteClient>[0]> = {}) =>
    new RemoteClient({
      connector: connect(),
      python: "/usr/bin/python3",
      layout: { endpointDir: `${root}/endpoint`, tmpDir: `${root}/tmp`, workDir: root },
      ...options,
    });

  beforeAll(async () => {
    sshd = await startSshd(); // OpenSSH defaults: MaxSessions 10, MaxStartups 10:30:100
    root = `${sshd.home}/load-${randomBytes(4).toString("hex")}`;
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
  }, 60_000);

  it("answers 5,000 calls through 8 sessions with 64 in flight, each exactly once, and leaks nothing", async () => {
    // The account may be shared with other test processes: only what this test starts counts.
    const before = new Set(await sshd.userProcesses());
    const ours = async () => (await sshd.userProcesses()).filter((pid) => !before.has(pid));
    const c = client({ poolSize: 8 });
    try {
      const total = 5_000;
      const seen = new Array<number>(total).fill(0);
      let next = 0;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          const r = await c.call<string>("operator", "concat", [`call-${i}-`, String(i * 7)]);
          expect(r.value).toBe(`call-${i}-${i * 7}`);
          seen[i] = (seen[i] as number) + 1;
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      expect(seen.every((n) => n === 1)).toBe(true);
      expect(c.sessionCount).toBeGreaterThan(1);
      expect(c.sessionCount).toBeLessThanOrEqual(8);
    } finally {
      await c.close();
    }
    // Every agent and channel ended: nothing this test started still runs on the server.
    const deadline = Date.now() + 10_000;
    while ((await ours()).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await ours()).toEqual([]);
    expect(await sshd.connectionProcesses()).toEqual([]);
  }, 180_000);

  it("fails calls in flight with CONNECTION_LOST when the connection dies, then works on a new connection", async () => {
    const c = client();
    try {
      expect((await c.call("math", "sqrt", [4])).value).toBe(2);
      // The call would sleep for an hour: only the connection loss can end it within this
      // test's budget (no wall-clock assertion needed).
      const inFlight = c.call("time", "sleep", [3600]).then(
        () => "resolved",
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 300));
      await sshd.killConnections();
      const err = await inFlight;
      expect(err).toMatchObject({ code: "CONNECTION_LOST" });
      expect((await c.call("math", "sqrt", [9])).value).toBe(3);
    } finally {
      await c.close();
    }
  }, 60_000);

  it("never re-runs a call that may have run (file carrier)", async () => {
    const c = client({ mode: "file" });
    const marker = `${root}/ran-${randomBytes(4).toString("hex")}`;
    try {
      const p = c.call("subprocess", "check_call", [["sh", "-c", `echo x >> ${marker}; sleep 30`]]).then(
        () => "resolved",
        (err: unknown) => err,
      );
      await new Promise((r) => setTimeout(r, 1500));
      await sshd.killConnections();
      expect(await p).toMatchObject({ code: expect.stringMatching(/CONNECTION_LOST/) });
      const count = await c.connector.exec(["sh", "-c", `wc -l < ${marker}`]);
      expect(count.stdout.trim()).toBe("1");
    } finally {
      await c.close();
    }
  }, 60_000);
});
