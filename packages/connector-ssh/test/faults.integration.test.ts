import { existsSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { expectCode } from "@sremote/testkit";
import { type SshdFixture, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { sshConnector } from "../src/index.js";
import { describeSsh, fixtureOptions } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Ends remote commands orphaned by a killed connection (the server is this machine). */
function killRemote(pids: number[]): void {
  for (const pid of pids) {
    expect(pid).toBeGreaterThan(1);
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** A promise's outcome, or "pending" if it has not settled after `ms`. */
async function outcomeWithin<T>(promise: Promise<T>, ms: number): Promise<"pending" | "settled"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    promise.then(
      () => "settled" as const,
      () => "settled" as const,
    ),
    new Promise<"pending">((resolve) => {
      timer = setTimeout(() => resolve("pending"), ms);
    }),
  ]);
  clearTimeout(timer);
  return r;
}

function listen(onSocket: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on("error", () => {});
    onSocket(s);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address ? address.port : 0, sockets });
    });
  });
}

async function shut(s: { server: Server; sockets: Socket[] }): Promise<void> {
  for (const socket of s.sockets) socket.destroy();
  await new Promise((r) => s.server.close(r));
}

// Killing connections must not disturb other test files: this file has its own sshd.
describeSsh("a connection that drops", () => {
  let fixture: SshdFixture;
  beforeAll(async () => {
    fixture = await startSshd();
  });
  afterAll(() => fixture?.stop());

  it("rejects every call in flight with CONNECTION_LOST at once; the next call reconnects; nothing is re-run", async () => {
    await using c = sshConnector(fixtureOptions(fixture));
    const log = `${fixture.home}/faults-runs-${process.pid}`;
    await c.exec(["rm", "-f", log]);
    // Two calls that record that they ran, then wait; and a live spawned process.
    const calls = [1, 2].map((i) => c.exec(["sh", "-c", 'echo "run $1 $$" >> "$2"; exec sleep 30', "sh", `${i}`, log]));
    const outcomes = calls.map((call) => expectCode(call, "CONNECTION_LOST"));
    const proc = await c.spawn(["cat"]);
    proc.stdout.resume();
    proc.stderr.resume();
    for (let i = 0; i < 200; i++) {
      const r = await c.exec(["sh", "-c", 'cat "$1" 2>/dev/null | wc -l', "sh", log]);
      if (r.stdout.trim() === "2") break;
      await new Promise((res) => setTimeout(res, 25));
    }
    await fixture.killConnections();
    // "At once": well before the 30 s the commands would take, and before keepalives (15 s) could notice.
    const all = Promise.all([...outcomes, proc.exited]);
    expect(await outcomeWithin(all, 5_000)).toBe("settled");
    const errors = await Promise.all(outcomes);
    for (const err of errors) expect((err as unknown as { retryable: boolean }).retryable).toBe(false);
    const exit = await proc.exited;
    expect(exit).toMatchObject({ exitCode: null, signal: null, error: { code: "CONNECTION_LOST" } });
    // The next operation opens a new connection and works; the lost calls were not repeated.
    const after = await c.exec(["cat", log]);
    const runs = after.stdout.split("\n").filter(Boolean).sort();
    expect(runs.map((line) => line.split(" ").slice(0, 2).join(" "))).toEqual(["run 1", "run 2"]);
    // sshd's death does not end the commands: they are orphans now. End them ourselves.
    killRemote(runs.map((line) => Number(line.split(" ")[2])));
    expect((await c.status()).connected).toBe(true);
    await c.exec(["rm", "-f", log]);
  });

  it("a server that stops answering is detected by keepalives and calls reject CONNECTION_LOST", async () => {
    await using c = sshConnector(fixtureOptions(fixture, { keepaliveIntervalMs: 200, keepaliveCountMax: 2 }));
    await c.exec(["true"]);
    const pidFile = `${fixture.home}/faults-keepalive-${process.pid}`;
    const running = expectCode(c.exec(["sh", "-c", 'echo $$ > "$1"; exec sleep 30', "sh", pidFile]), "CONNECTION_LOST");
    for (let i = 0; i < 400 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 10));
    const frozen = await fixture.connectionProcesses();
    expect(frozen.length).toBeGreaterThan(0);
    for (const pid of frozen) process.kill(pid, "SIGSTOP");
    try {
      expect(await outcomeWithin(running, 10_000)).toBe("settled");
      expect((await running).message).toMatch(/lost/);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, "SIGKILL");
          process.kill(pid, "SIGCONT");
        } catch {
          // Gone already.
        }
      }
    }
    expect((await c.exec(["echo", "back"])).stdout).toBe("back\n");
    killRemote([Number((await c.exec(["cat", pidFile])).stdout)]);
    await c.exec(["rm", "-f", pidFile]);
  });

  it("file operations in flight reject CONNECTION_LOST too, and the next one reconnects", async () => {
    await using c = sshConnector(fixtureOptions(fixture));
    const path = `${fixture.home}/faults-file-${process.pid}`;
    await c.putFile(path, Buffer.from("x"));
    const big = Buffer.alloc(64 * 1024 * 1024, 7);
    const writing = c.putFile(`${path}-big`, big);
    const outcome = writing.then(
      () => "done",
      (e: { code?: string }) => e.code,
    );
    await new Promise((r) => setTimeout(r, 50));
    await fixture.killConnections();
    // Either the write finished before the kill, or it was cut: never a hang, never another error.
    expect(["done", "CONNECTION_LOST"]).toContain(await outcome);
    expect(Buffer.from(await c.getFile(path)).toString()).toBe("x");
    await c.exec(["rm", "-f", path, `${path}-big`]);
  });
});

describeSsh("connect failures", () => {
  it("a server that accepts TCP and never answers fails CONNECT_TIMEOUT, not a hang", async () => {
    const silent = await listen(() => {});
    try {
      const toSilent = (connectTimeoutMs: number) =>
        sshConnector({
          host: "127.0.0.1",
          port: silent.port,
          username: "nobody",
          sshConfigPath: false,
          agent: false,
          knownHostsPath: "/dev/null",
          connectTimeoutMs,
        });
      const c = toSilent(500);
      const err = await expectCode(c.exec(["true"]), "CONNECT_TIMEOUT");
      expect(err.message).toMatch(/500 ms/);
      expect((err as unknown as { retryable: boolean }).retryable).toBe(true);
      // The operation's own deadline is separate and reported as TIMEOUT.
      const again = toSilent(30_000);
      await expectCode(again.exec(["true"], { timeoutMs: 300 }), "TIMEOUT");
      await Promise.all([c.close(), again.close()]);
    } finally {
      await shut(silent);
    }
  });

  it("a closed port fails CONNECT_FAILED (retryable); a non-SSH server fails CONNECT_FAILED", async () => {
    const closed = await listen(() => {});
    const port = closed.port;
    await shut(closed);
    const options = { host: "127.0.0.1", username: "nobody", sshConfigPath: false as const, agent: false as const };
    const c = sshConnector({ ...options, port });
    const err = await expectCode(c.connect(), "CONNECT_FAILED");
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect((err as unknown as { retryable: boolean }).retryable).toBe(true);
    await c.close();
    const http = await listen((s) => s.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    try {
      const d = sshConnector({ ...options, port: http.port, connectTimeoutMs: 5_000 });
      await expectCode(d.connect(), "CONNECT_FAILED");
      await d.close();
    } finally {
      await shut(http);
    }
  });
});
