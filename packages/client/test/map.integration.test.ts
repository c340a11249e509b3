import { type AgentCommand, SchedulerError } from "@sremote/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ClientGroup, kw, type MapProgress, type RemoteClient } from "../src/index.js";
import { localClient } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** 10,000 by default; SREMOTE_MAP_N raises it (e.g. 100000 for the figure). */
const N = Number(process.env.SREMOTE_MAP_N ?? 10_000);

describe("client.map over local: (real agents)", () => {
  let env: ReturnType<typeof localClient>;
  let client: RemoteClient;
  beforeAll(() => {
    env = localClient({ poolSize: 3, cancelGraceMs: 300 });
    client = env.client;
  });
  afterAll(async () => {
    await client.close();
    expect(env.leftovers()).toEqual([]);
    env.dispose();
  });

  it(`answers each of ${N} inputs exactly once, in order, over the session pool, reading inputs lazily`, async () => {
    const concurrency = 24;
    let pulled = 0;
    function* inputs() {
      for (let i = 0; i < N; i++) {
        pulled++;
        yield [i];
      }
    }
    let expected = 0;
    let maxAhead = 0;
    let wrong = 0;
    let last: MapProgress | undefined;
    const pids = new Set<unknown>();
    for await (const r of client.map<number>("sremote_testmod", "echo", inputs(), {
      concurrency,
      onProgress: (p) => {
        last = p;
      },
    })) {
      if (!r.ok) throw r.error;
      if (r.index !== expected || r.value !== expected) wrong++;
      maxAhead = Math.max(maxAhead, pulled - r.index - 1);
      expected++;
    }
    expect(expected).toBe(N);
    expect(wrong).toBe(0);
    // Never more than the window read ahead of what was consumed.
    expect(maxAhead).toBeLessThanOrEqual(concurrency);
    expect(last).toMatchObject({ done: N, failed: 0, started: N, inFlight: 0 });
    for await (const r of client.map(
      "sremote_testmod",
      "pid",
      Array.from({ length: 60 }, () => []),
      { concurrency: 6 },
    )) {
      if (r.ok) pids.add(r.value);
    }
    expect(client.sessionCount).toBe(3);
    expect(pids.size).toBe(3);
  });

  it("reports each failure as that input's result and goes on; kw() and objects pass keyword arguments", async () => {
    async function* inputs() {
      yield [16];
      yield [-1]; // math.sqrt raises ValueError
      yield 7; // not an argument list
      yield { x: 81 };
      yield [kw({ x: 4 })];
    }
    const results = [];
    for await (const r of client.map("math", "sqrt", inputs(), { concurrency: 2 })) results.push(r);
    expect(results.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    expect(results[0]).toEqual({ ok: true, index: 0, value: 4, stdout: "", stderr: "", truncated: false });
    expect(results[1]).toMatchObject({ ok: false, error: { code: "REMOTE_EXEC", type: "ValueError" } });
    expect(results[2]).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    // math.sqrt takes no keyword arguments: the remote TypeError, per input.
    expect(results[3]).toMatchObject({ ok: false, error: { code: "REMOTE_EXEC", type: "TypeError" } });
    const add = [];
    for await (const r of client.map("sremote_testmod", "add", [[1, kw({ b: 2 })], { a: 3, b: 4 }])) add.push(r);
    expect(add).toMatchObject([
      { ok: true, value: 3 },
      { ok: true, value: 7 },
    ]);
  });

  it("abort: calls in flight end as ABORTED results, no more inputs are read, then the iteration rejects", async () => {
    const controller = new AbortController();
    let pulled = 0;
    function* inputs() {
      for (let i = 0; i < 1_000; i++) {
        pulled++;
        yield [i < 3 ? 0 : 30];
      }
    }
    const results: { ok: boolean; index: number; error?: { code: string } }[] = [];
    const run = (async () => {
      for await (const r of client.map("sremote_testmod", "sleep", inputs(), {
        concurrency: 4,
        signal: controller.signal,
        timeoutMs: 60_000,
      })) {
        results.push(r as (typeof results)[number]);
        if (results.length === 3) setTimeout(() => controller.abort(), 50);
      }
    })();
    await expect(run).rejects.toMatchObject({ code: "ABORTED" });
    expect(pulled).toBeLessThanOrEqual(3 + 4);
    expect(results.slice(0, 3).every((r) => r.ok)).toBe(true);
    expect(results.length).toBe(pulled);
    expect(results.slice(3).every((r) => !r.ok && r.error?.code === "ABORTED")).toBe(true);
    // The pool is usable afterwards.
    expect((await client.call("math", "sqrt", [9])).value).toBe(3);
  });

  it("breaking out of the loop stops the calls in flight and closes the input iterator", async () => {
    let closed = false;
    function* inputs() {
      try {
        for (let i = 0; ; i++) yield [i === 0 ? 0 : 30];
      } finally {
        closed = true;
      }
    }
    for await (const r of client.map("sremote_testmod", "sleep", inputs(), { concurrency: 3 })) {
      expect(r.ok).toBe(true);
      break;
    }
    expect(closed).toBe(true);
    expect((await client.call("math", "sqrt", [4])).value).toBe(2);
  });

  it("rejects bad options and inputs up front, as usage errors", async () => {
    const it1 = client.map("math", "sqrt", [[1]], { concurrency: 0 })[Symbol.asyncIterator]();
    await expect(it1.next()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    const it2 = client.map("math", "sqrt", 5 as unknown as Iterable<unknown>)[Symbol.asyncIterator]();
    await expect(it2.next()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("ClientGroup over two local: clients", () => {
  it("spreads inputs over the targets in order, fails over what never ran, and calls every target", async () => {
    const a = localClient();
    const b = localClient({ poolSize: 2 });
    a.client.registerEnv("WHO", "a");
    b.client.registerEnv("WHO", "b");
    const group = new ClientGroup({ a: a.client, b: b.client });
    try {
      expect(group.targets).toEqual(["a", "b"]);
      const counts = { a: 0, b: 0 } as Record<string, number>;
      let i = 0;
      for await (const r of group.map(
        "os",
        "getenv",
        Array.from({ length: 300 }, () => ["WHO"]),
      )) {
        expect(r.index).toBe(i++);
        if (!r.ok) throw r.error;
        expect(r.value).toBe(r.target);
        counts[r.target] = (counts[r.target] ?? 0) + 1;
      }
      expect(i).toBe(300);
      expect(counts.a).toBeGreaterThan(0);
      expect(counts.b).toBeGreaterThan(0);
      const each = await group.call("os", "getenv", ["WHO"]);
      expect(each).toMatchObject([
        { ok: true, target: "a", value: "a", index: 0 },
        { ok: true, target: "b", value: "b", index: 1 },
      ]);
    } finally {
      await group.close();
      a.dispose();
      b.dispose();
    }
  });

  it("an input refused before anything ran (retryable) is answered by another target", async () => {
    const good = localClient();
    const refused = localClient({
      launcher: {
        name: "full",
        wrap: (c: AgentCommand) => c,
        prepare: async () => {
          throw new SchedulerError("full", "no nodes available now", { retryable: true });
        },
      },
    });
    const group = new ClientGroup([
      ["refused", refused.client],
      ["good", good.client],
    ]);
    try {
      const results = [];
      for await (const r of group.map("math", "sqrt", [[1], [4], [9], [16]], { concurrency: 4 })) results.push(r);
      expect(results).toMatchObject([
        { ok: true, target: "good", value: 1 },
        { ok: true, target: "good", value: 2 },
        { ok: true, target: "good", value: 3 },
        { ok: true, target: "good", value: 4 },
      ]);
      const each = await group.call("math", "sqrt", [4]);
      expect(each[0]).toMatchObject({ ok: false, target: "refused", error: { code: "SCHEDULER" } });
      expect(each[1]).toMatchObject({ ok: true, target: "good", value: 2 });
    } finally {
      await group.close();
      good.dispose();
      refused.dispose();
    }
  });
});
