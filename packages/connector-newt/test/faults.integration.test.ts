import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { withRetry } from "@sremote/core";
import { type NewtDouble, type NewtFaultRequest, startNewtDouble } from "@sremote/testkit/newt-double";
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
const make = connectorFactory(() => double);
const retrying = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

beforeAll(async () => {
  double = await startNewtDouble();
  home = double.homeDir(USER);
});
afterEach(() => {
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

/** Requests (or their log entries) whose command line names `t`: the command itself, sent once or again. */
const naming = (t: string) => (r: NewtFaultRequest) => (r.form.executable ?? "").includes(t);
/** The connector's question "did it run?" (for fault `match`, and to count in the log). */
const isQuestion = (r: NewtFaultRequest) => /\bnot-run\b/.test(r.form.executable ?? "");

describe("commands are never run twice", () => {
  /** Requests whose command line names `t` since `from`. */
  const sends = (from: number, t: string) =>
    since(double, from).filter((e) => e.route === "POST /command" && naming(t)(e));
  /** The connector's questions "did it run?" since `from`. */
  const questions = (from: number) => since(double, from).filter((e) => e.route === "POST /command" && isQuestion(e));

  /** Connects `c`; `t` names this test's command, and its requests are those from `from` on. */
  async function begin<C extends { connect(): Promise<void> }>(c: C) {
    await c.connect();
    return { c, t: token(), from: double.requestLog.length };
  }

  /** `t`'s command ran exactly once, after `sent` sends of it and, when given, `asked` questions. */
  function expectRanOnce(t: string, from: number, counts: { sent: number; asked?: number }) {
    expect(commandsRun(double, t)).toHaveLength(1);
    expect(sends(from, t)).toHaveLength(counts.sent);
    if (counts.asked !== undefined) expect(questions(from)).toHaveLength(counts.asked);
  }

  it("a 503 burst on /command (nothing ran): NEWT is asked, the command is sent again and runs once", async () => {
    const { c, t, from } = await begin(make());
    double.inject("POST /command", { kind: "status", status: 503, times: 2, match: naming(t) });
    const r = await c.exec(["/bin/echo", t]);
    expect(r).toMatchObject({ stdout: `${t}\n`, exitCode: 0 });
    expectRanOnce(t, from, { sent: 3, asked: 2 });
  });

  it("a 503 after the command ran: its recorded answer is used, it is not sent again", async () => {
    const { c, t, from } = await begin(make());
    double.inject("POST /command", { kind: "status", status: 503, when: "after", match: naming(t) });
    const r = await c.exec(["/bin/sh", "-c", `echo ${t}; echo err-${t} >&2; exit 3`]);
    expect(r).toEqual({ stdout: `${t}\n`, stderr: `err-${t}\n`, exitCode: 3, signal: null });
    expectRanOnce(t, from, { sent: 1, asked: 1 });
  });

  it("a reset after the command ran, also of the questions: asked until answered, run once, even under withRetry", async () => {
    const { c, t, from } = await begin(withRetry(make(), retrying));
    double.inject("POST /command", { kind: "reset", when: "after", times: 3 });
    const r = await c.exec(["/bin/echo", t]);
    expect(r).toMatchObject({ stdout: `${t}\n`, exitCode: 0 });
    expectRanOnce(t, from, { sent: 1, asked: 3 });
  });

  it("a reset before processing: asked, found not run (and fenced), sent again once", async () => {
    const { c, t, from } = await begin(make());
    double.inject("POST /command", { kind: "reset", when: "before" });
    const r = await c.exec(["/bin/echo", t]);
    expect(r.stdout).toBe(`${t}\n`);
    expectRanOnce(t, from, { sent: 2 });
  });

  it("502/504 on a command: asked, not guessed", async () => {
    const c = make();
    await c.connect();
    for (const status of [502, 504]) {
      const t = token();
      double.inject("POST /command", { kind: "status", status, match: naming(t) });
      expect((await c.exec(["/bin/echo", t])).stdout).toBe(`${t}\n`);
      expect(commandsRun(double, t)).toHaveLength(1);
    }
  });

  it("when whether it ran cannot be told, the call fails, not retryable, and is never sent again", async () => {
    const { c, t, from } = await begin(
      withRetry(make({ retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }), retrying),
    );
    double.inject("POST /command", { kind: "status", status: 503, when: "after", match: naming(t) });
    double.inject("POST /command", { kind: "status", status: 503, times: 2, match: isQuestion });
    const r = await outcome(c.exec(["/bin/echo", t]));
    expect(r.error).toMatchObject({ code: "UNAVAILABLE", retryable: false });
    expect(r.error?.message).toMatch(/whether it ran cannot be told/);
    expectRanOnce(t, from, { sent: 1 });
  });

  it("idempotent commands (mkdir -p, rm -f, pwd) are simply sent again, without questions", async () => {
    const c = make();
    await c.connect();
    const dir = join(home, `idem-${token()}`);
    const from = double.requestLog.length;
    double.inject("POST /command", { kind: "status", status: 503, when: "after", times: 2 });
    expect((await c.exec(["/bin/mkdir", "-p", dir])).exitCode).toBe(0);
    double.inject("POST /command", { kind: "status", status: 503, times: 2 });
    expect((await c.exec(["/bin/rm", "-f", "--", join(dir, "x")])).exitCode).toBe(0);
    expect(questions(from)).toHaveLength(0);
    expect(since(double, from).filter((e) => e.route === "POST /command")).toHaveLength(6);
  });

  it("an answer delayed beyond the timeout: TIMEOUT once, the command ran once", async () => {
    const { c, t } = await begin(withRetry(make(), retrying));
    double.inject("POST /command", { kind: "delay", ms: 1500, when: "after" });
    const r = await outcome(c.exec(["/bin/echo", t], { timeoutMs: 300 }));
    expect(r.error).toMatchObject({ code: "TIMEOUT" });
    await new Promise((res) => setTimeout(res, 1600));
    expect(commandsRun(double, t)).toHaveLength(1);
  });

  it("an answer outlasting the per-request time limit: asked, and the command's recorded answer is used", async () => {
    const { c, t } = await begin(make({ commandTimeoutMs: 200 }));
    double.inject("POST /command", { kind: "delay", ms: 800, when: "after" });
    const r = await c.exec(["/bin/echo", t]);
    expect(r.stdout).toBe(`${t}\n`);
    expect(commandsRun(double, t)).toHaveLength(1);
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

  it("one retry path: a lasting 503 on a download makes 5 attempts, also under withRetry (not 5 × its attempts)", async () => {
    const c = make({ retry: { baseDelayMs: 1, maxDelayMs: 2 } });
    const p = join(home, "lasting.txt");
    await writeFile(p, "x");
    await c.connect();
    double.inject("GET /file", { kind: "status", status: 503, times: Number.POSITIVE_INFINITY });
    let from = double.requestLog.length;
    expect((await outcome(c.getFile(p))).error).toMatchObject({ code: "UNAVAILABLE" });
    expect(since(double, from).filter((e) => e.route === "GET /file")).toHaveLength(5);
    from = double.requestLog.length;
    expect((await outcome(withRetry(c, retrying).getFile(p))).error).toMatchObject({ code: "UNAVAILABLE" });
    expect(since(double, from).filter((e) => e.route === "GET /file")).toHaveLength(5);
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
  it("whatever the fault on a command with stdin, it runs once, answers, and its temp file is removed", async () => {
    const c = make();
    await c.connect();
    const tmp = join(home, ".sremote", "tmp");
    const faults = [
      { kind: "status", status: 503 },
      { kind: "status", status: 503, when: "after" },
      { kind: "status", status: 502 },
      { kind: "reset", when: "before" },
      { kind: "reset", when: "after" },
      { kind: "truncate" },
    ] as const;
    for (const fault of faults) {
      const t = token();
      // Only the exec's own command: the cleanup command must get through.
      double.inject("POST /command", { ...fault, match: naming(t) });
      const r = await c.exec(["/bin/sh", "-c", `cat >/dev/null; echo ${t}`], { stdin: `input ${t}` });
      expect(r.stdout, JSON.stringify(fault)).toBe(`${t}\n`);
      expect(commandsRun(double, t), JSON.stringify(fault)).toHaveLength(1);
      expect(await filesUnder(tmp), JSON.stringify(fault)).toEqual([]);
    }
  });

  it("a stdin upload whose answer is lost is sent again (an overwrite); the command runs once, the file is removed", async () => {
    const c = make();
    await c.connect();
    const tmp = join(home, ".sremote", "tmp");
    await mkdir(tmp, { recursive: true, mode: 0o700 }); // so the upload really writes the file
    const t = token();
    const from = double.requestLog.length;
    double.inject("PUT /file", { kind: "reset", when: "after", match: (r) => r.path.includes("/stdin-") });
    const r = await c.exec(["/bin/echo", t], { stdin: "x" });
    expect(r.stdout).toBe(`${t}\n`);
    expect(since(double, from).filter((e) => e.route === "PUT /file")).toHaveLength(2);
    expect(commandsRun(double, t)).toHaveLength(1);
    expect(await filesUnder(tmp)).toEqual([]);
  });

  it("close() removes the markers of every command it ran; one whose fate was not known leaves a tombstone", async () => {
    const tmp = join(home, `markers-${token()}`);
    const c = make({ tempDir: tmp, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    for (let i = 0; i < 3; i++) await c.exec(["/bin/true"]);
    const t = token();
    double.inject("POST /command", { kind: "reset", when: "after", match: naming(t) });
    double.inject("POST /command", { kind: "status", status: 503, times: 2, match: isQuestion });
    expect((await outcome(c.exec(["/bin/echo", t]))).error).toMatchObject({ retryable: false });
    expect((await filesUnder(join(tmp, "once"))).length).toBeGreaterThan(0);
    await c.close();
    // Only the tombstone of the one whose fate was not known: its status, against a late delivery.
    expect((await filesUnder(tmp)).map((f) => f.replace(/sremote-[0-9a-f]{24}/, "N"))).toEqual(["once/N/rc"]);
  });

  it("a login answered 503 is sent again; refused credentials are never resent", async () => {
    const c = make({ credentials: { username: USER, password: "bad" } });
    const before = double.requestLog.length;
    double.inject("POST /auth", { kind: "status", status: 503, times: 1 });
    const first = await outcome(c.connect());
    expect(first.error).toMatchObject({ code: "AUTH_FAILED" });
    expect(since(double, before).filter((e) => e.route === "POST /auth")).toHaveLength(2);
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
