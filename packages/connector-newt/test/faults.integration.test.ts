import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { withRetry } from "@sremote/core";
import { type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { newtConnector } from "../src/index.js";
import { commandsRun, connectorFactory, filesUnder, PASSWORD, since, token, USER } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Integration tests: the NEWT double injects real HTTP faults (status codes, TCP resets,
// delays, cut bodies); every call must end exactly once — a result or a typed error — with
// no command run twice (the double's request log is the proof) and no temp file left.

let double: NewtDouble;
let home: string;
const { make, closeAll } = connectorFactory(() => double);
const retrying = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

beforeAll(async () => {
  double = await startNewtDouble();
  home = double.homeDir(USER);
});
afterEach(async () => {
  await closeAll();
  double.clearFaults();
});
afterAll(async () => {
  await double.close();
});

async function outcome<T>(
  p: Promise<T>,
): Promise<{ value?: T; error?: Error & { code?: string; retryable?: boolean } }> {
  try {
    return { value: await p };
  } catch (error) {
    return { error: error as Error & { code?: string } };
  }
}

describe("commands are never run twice", () => {
  it("a 503 burst on /command: retryable UNAVAILABLE, withRetry gets through, the command runs once", async () => {
    const c = make();
    await c.connect();
    const t = token();
    double.inject("POST /command", { kind: "status", status: 503, times: 2 });
    const first = await outcome(c.exec(["/bin/echo", t]));
    expect(first.error).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    expect(commandsRun(double, t)).toHaveLength(0);
    double.inject("POST /command", { kind: "status", status: 503, times: 2 });
    const r = await withRetry(c, retrying).exec(["/bin/echo", t]);
    expect(r).toMatchObject({ stdout: `${t}\n`, exitCode: 0 });
    expect(commandsRun(double, t)).toHaveLength(1);
  });

  it("a reset after the command ran: CONNECTION_LOST, not retryable, not repeated even by withRetry", async () => {
    const c = withRetry(make(), retrying);
    await c.connect();
    const t = token();
    const from = double.requestLog.length;
    double.inject("POST /command", { kind: "reset", when: "after", times: 3 });
    const r = await outcome(c.exec(["/bin/echo", t]));
    expect(r.error).toMatchObject({ code: "CONNECTION_LOST", retryable: false });
    expect(r.error?.message).toMatch(/may have been processed/);
    expect(commandsRun(double, t)).toHaveLength(1);
    expect(since(double, from).filter((e) => (e.form.executable ?? "").includes(t))).toHaveLength(1);
  });

  it("a reset before processing is still not repeated for a command (the connector cannot tell)", async () => {
    const c = make();
    await c.connect();
    const t = token();
    double.inject("POST /command", { kind: "reset", when: "before" });
    const r = await outcome(c.exec(["/bin/echo", t]));
    expect(r.error).toMatchObject({ code: "CONNECTION_LOST", retryable: false });
    expect(double.requestLog.filter((e) => (e.form.executable ?? "").includes(t))).toHaveLength(1);
    expect(commandsRun(double, t)).toHaveLength(0);
  });

  it("502/504 on a command may mean it ran: UNAVAILABLE but not retryable", async () => {
    const c = make();
    await c.connect();
    for (const status of [502, 504]) {
      double.inject("POST /command", { kind: "status", status });
      const r = await outcome(c.exec(["/bin/true"]));
      expect(r.error).toMatchObject({ code: "UNAVAILABLE", retryable: false });
    }
  });

  it("an answer delayed beyond the timeout: TIMEOUT once, the command ran once", async () => {
    const c = withRetry(make(), retrying);
    await c.connect();
    const t = token();
    double.inject("POST /command", { kind: "delay", ms: 1500, when: "after" });
    const r = await outcome(c.exec(["/bin/echo", t], { timeoutMs: 300 }));
    expect(r.error).toMatchObject({ code: "TIMEOUT" });
    await new Promise((res) => setTimeout(res, 1600));
    expect(commandsRun(double, t)).toHaveLength(1);
  });

  it("a per-request time limit on commands ends the call with TIMEOUT", async () => {
    const c = make({ commandTimeoutMs: 200 });
    await c.connect();
    double.inject("POST /command", { kind: "delay", ms: 800, when: "after" });
    const r = await outcome(c.exec(["/bin/true"]));
    expect(r.error).toMatchObject({ code: "TIMEOUT", retryable: false });
    expect(r.error?.message).toMatch(/no answer within 200 ms/);
  });
});

describe("reads are repeated where that is safe", () => {
  it("a truncated download is fetched again and comes back whole", async () => {
    const c = make();
    const p = join(home, "big.bin");
    const data = Buffer.alloc(50_000);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    await writeFile(p, data);
    await c.connect();
    const from = double.requestLog.length;
    double.inject("GET /file", { kind: "truncate", bytes: 1000, times: 2 });
    expect(Buffer.from(await c.getFile(p)).equals(data)).toBe(true);
    expect(since(double, from).map((e) => e.outcome)).toEqual(["truncated", "truncated", "answered"]);
  });

  it("resets and 503s on downloads are retried internally; a lasting fault ends in one typed error", async () => {
    const c = make();
    const p = join(home, "small.txt");
    await writeFile(p, "hello");
    await c.connect();
    double.inject("GET /file", { kind: "reset", times: 1 });
    double.inject("GET /file", { kind: "status", status: 503, times: 1 });
    expect(Buffer.from(await c.getFile(p)).toString()).toBe("hello");
    double.inject("GET /file", { kind: "status", status: 503, times: Number.POSITIVE_INFINITY });
    const r = await outcome(c.getFile(p));
    expect(r.error).toMatchObject({ code: "UNAVAILABLE", retryable: true });
  });

  it("one retry path: a lasting 503 on a download makes 3 attempts, also under withRetry (was 3 × its attempts)", async () => {
    const c = make({ retry: { baseDelayMs: 1, maxDelayMs: 2 } });
    const p = join(home, "lasting.txt");
    await writeFile(p, "x");
    await c.connect();
    double.inject("GET /file", { kind: "status", status: 503, times: Number.POSITIVE_INFINITY });
    let from = double.requestLog.length;
    expect((await outcome(c.getFile(p))).error).toMatchObject({ code: "UNAVAILABLE" });
    expect(since(double, from).filter((e) => e.route === "GET /file")).toHaveLength(3);
    from = double.requestLog.length;
    expect((await outcome(withRetry(c, retrying).getFile(p))).error).toMatchObject({ code: "UNAVAILABLE" });
    expect(since(double, from).filter((e) => e.route === "GET /file")).toHaveLength(3);
  });

  it("an unreachable server is CONNECT_FAILED and retryable", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const a = s.address() as { port: number };
        s.close(() => resolve(a.port));
      });
    });
    const c = newtConnector({
      machine: "cori",
      baseUrl: `http://127.0.0.1:${port}/newt`,
      credentials: { username: USER, password: PASSWORD },
      retry: { baseDelayMs: 1, maxDelayMs: 2 },
    });
    try {
      const r = await outcome(c.exec(["/bin/true"]));
      expect(r.error).toMatchObject({ code: "CONNECT_FAILED", retryable: true });
      expect(r.error?.message).toMatch(/cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    } finally {
      await c.close();
    }
  });

  it("does not follow redirects (the session cookie must not travel elsewhere)", async () => {
    const c = make();
    await c.connect();
    double.inject("GET /file", {
      kind: "status",
      status: 302,
      body: "",
      match: (r) => r.path.endsWith("/redirected"),
    });
    const r = await outcome(c.getFile(join(home, "redirected")));
    expect(r.error).toMatchObject({ code: "REMOTE_IO" });
    expect(r.error?.message).toMatch(/HTTP 302 redirect/);
  });

  it("uploads failing with 503 are retryable (an overwrite can be repeated)", async () => {
    const c = make();
    await c.connect();
    const p = join(home, "up.txt");
    double.inject("PUT /file", { kind: "status", status: 503, times: 2 });
    await withRetry(c, retrying).putFile(p, new TextEncoder().encode("up"));
    expect(Buffer.from(await c.getFile(p)).toString()).toBe("up");
  });
});

describe("nothing is left behind", () => {
  it("stdin temp files are removed when the command request fails, whatever the fault", async () => {
    const c = make();
    await c.connect();
    const tmp = join(home, ".sremote", "tmp");
    const faults = [
      { kind: "status", status: 503 },
      { kind: "status", status: 502 },
      { kind: "reset", when: "before" },
      { kind: "reset", when: "after" },
      { kind: "truncate" },
    ] as const;
    for (const fault of faults) {
      const t = token();
      // Only the exec's own command: the cleanup command must get through.
      double.inject("POST /command", { ...fault, match: (r) => (r.form.executable ?? "").includes(t) });
      const r = await outcome(c.exec(["/bin/sh", "-c", `cat >/dev/null; echo ${t}`], { stdin: `input ${t}` }));
      expect(r.error, JSON.stringify(fault)).toBeDefined();
      expect(commandsRun(double, t).length).toBeLessThanOrEqual(1);
      expect(await filesUnder(tmp), JSON.stringify(fault)).toEqual([]);
    }
  });

  it("a stdin upload whose answer is lost is cleaned up, and the command is not run", async () => {
    const c = make();
    await c.connect();
    const tmp = join(home, ".sremote", "tmp");
    await mkdir(tmp, { recursive: true, mode: 0o700 }); // so the upload really writes the file
    const t = token();
    const from = double.requestLog.length;
    double.inject("PUT /file", { kind: "reset", when: "after", match: (r) => r.path.includes("/stdin-") });
    const r = await outcome(c.exec(["/bin/echo", t], { stdin: "x" }));
    expect(r.error).toMatchObject({ code: "CONNECTION_LOST", retryable: true });
    expect(double.requestLog.filter((e) => (e.form.executable ?? "").includes(t))).toHaveLength(0);
    const removal = since(double, from).filter((e) => e.command && /rm -f -- \S*stdin-/.test(e.form.executable ?? ""));
    expect(removal).toHaveLength(1);
    expect(await filesUnder(tmp)).toEqual([]);
  });

  it("the login is retried only when it never reached the server; bad credentials are never resent", async () => {
    const c = make({ credentials: { username: USER, password: "bad" } });
    double.inject("POST /auth", { kind: "status", status: 503, times: 1 });
    const first = await outcome(c.connect());
    expect(first.error).toMatchObject({ code: "UNAVAILABLE", retryable: true });
    const second = await outcome(c.connect());
    expect(second.error).toMatchObject({ code: "AUTH_FAILED" });
    const from = double.requestLog.length;
    const third = await outcome(withRetry(c, retrying).exec(["/bin/true"]));
    expect(third.error).toMatchObject({ code: "AUTH_FAILED" });
    expect(since(double, from)).toHaveLength(0);
  });

  it("concurrent calls share one login and all finish", async () => {
    const c = make();
    const from = double.requestLog.length;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.exec(["/bin/echo", String(i)]).then((r) => r.stdout)),
    );
    expect(results).toEqual(Array.from({ length: 8 }, (_, i) => `${i}\n`));
    expect(since(double, from).filter((e) => e.route === "POST /auth")).toHaveLength(1);
  });
});
