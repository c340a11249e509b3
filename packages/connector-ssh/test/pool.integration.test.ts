import { expectCode } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { type SshConnector, sshConnector } from "../src/index.js";
import { describeSsh, fixtureOptions } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

async function waitFor(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function info(c: SshConnector) {
  return (await c.status()).info as {
    connections: number;
    activeChannels: number;
    queuedChannels: number;
    channelCaps: number[];
  };
}

describeSsh("channels and connections against OpenSSH's MaxSessions", () => {
  let fixture: SshdFixture;
  beforeAll(async () => {
    // A server stricter than our default cap of 10.
    fixture = await startSshd({ maxSessions: 3 });
  });
  afterAll(() => fixture?.stop());

  it("queues channel opens instead of failing when the server's MaxSessions is lower than the cap", async () => {
    await using c = sshConnector(fixtureOptions(fixture, { maxConnections: 1 }));
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => c.exec(["sh", "-c", 'sleep 0.2; printf "%s" "$1"', "sh", `${i}`])),
    );
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `${i}`));
    const facts = await info(c);
    expect(facts.connections).toBe(1);
    // The cap learned from the refusals.
    expect(facts.channelCaps).toEqual([3]);
  });

  it("opens more connections when one cannot carry all sessions, one at a time, and queues beyond the maximum", async () => {
    await using c = sshConnector(fixtureOptions(fixture, { maxConnections: 3, maxChannelsPerConnection: 3 }));
    const procs = await Promise.all(Array.from({ length: 9 }, () => c.spawn(["cat"])));
    expect((await info(c)).connections).toBe(3);
    expect((await fixture.connectionProcesses()).length).toBeGreaterThanOrEqual(3);
    // Every session is alive and has its own stream.
    await Promise.all(
      procs.map(async (p, i) => {
        const back = new Promise<string>((resolve) => p.stdout.once("data", (d: Buffer) => resolve(d.toString())));
        p.stdin.write(`s${i}`);
        expect(await back).toBe(`s${i}`);
      }),
    );
    // A tenth waits for a free channel...
    const tenth = c.spawn(["cat"]);
    await waitFor("the tenth spawn to queue", async () => (await info(c)).queuedChannels === 1);
    // ...and gets one as soon as a session ends.
    procs[0]?.stdin.end();
    const p10 = await tenth;
    for (const p of [...procs, p10]) {
      p.stdin.end();
      p.stdout.resume();
      p.stderr.resume();
    }
    await Promise.all([...procs, p10].map((p) => p.exited));
    await waitFor("all channels to close", async () => (await info(c)).activeChannels === 0);
  });

  it("a finished process whose output nobody reads still gives its channel back", async () => {
    await using c = sshConnector(fixtureOptions(fixture, { maxConnections: 1, maxChannelsPerConnection: 1 }));
    const unread = await c.spawn(["sh", "-c", "printf 'never read'; printf 'nor this' >&2"]);
    unread.stdin.end();
    // The only channel is free again once the server closed it, read or not.
    expect((await c.exec(["printf", "next"])).stdout).toBe("next");
    unread.stdout.resume();
    unread.stderr.resume();
    expect(await unread.exited).toEqual({ exitCode: 0, signal: null });
  });

  it("leaves no channel or remote process behind after 300 calls, 32 in flight, and close()", async () => {
    const c = sshConnector(fixtureOptions(fixture, { maxConnections: 4 }));
    let next = 0;
    const worker = async () => {
      while (next < 300) {
        const i = next++;
        const r = await c.exec(["printf", "%s", `${i}`]);
        expect(r.stdout).toBe(`${i}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    const facts = await info(c);
    expect(facts.activeChannels).toBe(0);
    expect(facts.connections).toBeLessThanOrEqual(4);
    expect(await fixture.userProcesses()).toEqual([]);
    await c.close();
    await waitFor("sshd's connection processes to end", async () => (await fixture.connectionProcesses()).length === 0);
    await expectCode(c.exec(["true"]), "CLOSED");
  });
});
