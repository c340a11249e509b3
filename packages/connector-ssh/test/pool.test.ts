import { ConnectorError, type SremoteError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import { ConnectionPool, type PoolConnection } from "../src/pool.js";

/** A stand-in connection: the pool only counts slots and watches for loss (unit test). */
class FakeConnection implements PoolConnection {
  static next = 1;
  readonly id = FakeConnection.next++;
  alive = true;
  closed = false;
  private listeners = new Set<(e: SremoteError) => void>();
  onLost(fn: (e: SremoteError) => void) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  drop() {
    this.alive = false;
    for (const fn of this.listeners) fn(new ConnectorError("CONNECTION_LOST", "ssh", "lost"));
  }
  async close() {
    this.closed = true;
    this.alive = false;
  }
}

function pool(max: number, channels: number, open?: (signal?: AbortSignal) => Promise<FakeConnection>) {
  const opened: FakeConnection[] = [];
  let concurrentOpens = 0;
  let maxConcurrentOpens = 0;
  const p = new ConnectionPool<FakeConnection>(
    open ??
      (async () => {
        concurrentOpens++;
        maxConcurrentOpens = Math.max(maxConcurrentOpens, concurrentOpens);
        await new Promise((r) => setTimeout(r, 5));
        concurrentOpens--;
        const c = new FakeConnection();
        opened.push(c);
        return c;
      }),
    { maxConnections: max, maxChannelsPerConnection: channels, growthBackoffMs: 50 },
  );
  return { p, opened, maxConcurrent: () => maxConcurrentOpens };
}

const never = new AbortController().signal;

describe("ConnectionPool", () => {
  it("fills one connection to its cap, then opens more one at a time up to the maximum", async () => {
    const { p, opened, maxConcurrent } = pool(3, 4, undefined);
    const slots = await Promise.all(Array.from({ length: 12 }, () => p.acquire(never)));
    expect(opened).toHaveLength(3);
    expect(maxConcurrent()).toBe(1);
    const perConnection = new Map<number, number>();
    for (const s of slots) perConnection.set(s.connection.id, (perConnection.get(s.connection.id) ?? 0) + 1);
    expect([...perConnection.values()]).toEqual([4, 4, 4]);
    expect(p.activeChannels).toBe(12);
    // The 13th waits until a slot frees.
    let got = false;
    const waiting = p.acquire(never).then((s) => {
      got = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(false);
    expect(p.queued).toBe(1);
    slots[5]?.release();
    slots[5]?.release(); // idempotent
    const s13 = await waiting;
    expect(s13.connection.id).toBe(slots[5]?.connection.id);
    expect(p.activeChannels).toBe(12);
    await p.close();
    expect(opened.every((c) => c.closed)).toBe(true);
  });

  it("serves waiters in order, urgent ones first", async () => {
    const { p } = pool(1, 1);
    const first = await p.acquire(never);
    const order: string[] = [];
    const track = (name: string, urgent = false) =>
      p.acquire(never, urgent).then((s) => {
        order.push(name);
        return s;
      });
    const a = track("a");
    const b = track("b");
    const u = track("urgent", true);
    first.release();
    (await u).release();
    (await a).release();
    (await b).release();
    expect(order).toEqual(["urgent", "a", "b"]);
    await p.close();
  });

  it("lowers a connection's cap when the server refuses a channel below it", async () => {
    const { p } = pool(1, 10);
    const held = await Promise.all([p.acquire(never), p.acquire(never)]);
    for (const s of held) s.opened();
    const third = await p.acquire(never);
    expect(third.refused()).toBe(true);
    expect(p.capacities).toEqual([2]);
    let got = false;
    const waiting = p.acquire(never).then((s) => {
      got = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBe(false);
    held[0]?.release();
    const next = await waiting;
    // A refusal right after a channel closed (the server has not freed it yet) keeps the
    // cap at the most channels ever open at once, and asks to queue again.
    held[1]?.release();
    expect(next.refused()).toBe(true);
    expect(p.capacities).toEqual([2]);
    await p.close();
  });

  it("in a burst, refusals lower the cap one by one to what the server accepted", async () => {
    const { p } = pool(1, 10);
    const slots = await Promise.all(Array.from({ length: 10 }, () => p.acquire(never)));
    // The server accepted 3; the other 7 are refused, in order, before any exec completes.
    for (const s of slots.slice(3)) expect(s.refused()).toBe(true);
    expect(p.capacities).toEqual([3]);
    // A refusal with nothing else held or ever held is not a cap problem.
    const { p: p2 } = pool(1, 10);
    const only = await p2.acquire(never);
    expect(only.refused()).toBe(false);
    expect(p2.capacities).toEqual([10]);
    await p.close();
    await p2.close();
  });

  it("forgets a lost connection at once and opens a new one for the next request", async () => {
    const { p, opened } = pool(2, 2);
    const s = await p.acquire(never);
    (s.connection as FakeConnection).drop();
    expect(p.connections).toHaveLength(0);
    const next = await p.acquire(never);
    expect(next.connection).not.toBe(s.connection);
    expect(opened).toHaveLength(2);
    s.release(); // releasing a slot of a dead connection is harmless
    await p.close();
  });

  it("rejects every waiter with the open error when no connection works", async () => {
    const error = new ConnectorError("AUTH_FAILED", "ssh", "nope");
    const { p } = pool(2, 2, async () => {
      throw error;
    });
    const results = await Promise.allSettled([p.acquire(never), p.acquire(never), p.connection(never)]);
    expect(results.map((r) => (r.status === "rejected" ? (r.reason as SremoteError).code : "ok"))).toEqual([
      "AUTH_FAILED",
      "AUTH_FAILED",
      "AUTH_FAILED",
    ]);
    await p.close();
  });

  it("keeps waiters queued when an extra connection fails while others work", async () => {
    let opens = 0;
    const { p } = pool(2, 1, async () => {
      opens++;
      if (opens === 2) throw new ConnectorError("CONNECT_FAILED", "ssh", "MaxStartups drop", { retryable: true });
      return new FakeConnection();
    });
    const first = await p.acquire(never);
    const second = p.acquire(never);
    await new Promise((r) => setTimeout(r, 10));
    first.release();
    expect((await second).connection).toBe(first.connection);
    await p.close();
  });

  it("close() stops a connection that is still being opened", async () => {
    let seen: AbortSignal | undefined;
    const { p } = pool(1, 1, (signal?: AbortSignal) => {
      seen = signal;
      return new Promise<FakeConnection>((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    });
    const waiting = p.acquire(never);
    await p.close();
    expect(seen?.aborted).toBe(true);
    await expect(waiting).rejects.toMatchObject({ code: "CLOSED" });
  });

  it("an aborted wait leaves the queue; close() rejects the rest with CLOSED", async () => {
    const { p } = pool(1, 1);
    await p.acquire(never);
    const controller = new AbortController();
    const aborted = p.acquire(controller.signal);
    const closed = p.acquire(never);
    controller.abort(new Error("stop"));
    await expect(aborted).rejects.toThrow("stop");
    expect(p.queued).toBe(1);
    await p.close();
    await expect(closed).rejects.toMatchObject({ code: "CLOSED" });
    expect(() => p.acquire(never)).toThrow(/closed/);
  });
});
