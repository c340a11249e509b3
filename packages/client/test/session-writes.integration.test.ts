import { localConnector } from "@sremote/connector-local";
import type { Connector, RemoteProcess } from "@sremote/core";
import { afterAll, describe, expect, it, vi } from "vitest";
import { localClient } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** The local connector, recording the size of every write to a spawned process's stdin. */
function recordingConnector(writes: number[]): Connector {
  const local = localConnector();
  const spawn = async (argv: readonly string[], options?: Parameters<NonNullable<Connector["spawn"]>>[1]) => {
    const proc: RemoteProcess = await local.spawn(argv, options);
    const write = proc.stdin.write.bind(proc.stdin) as (chunk: Uint8Array, ...rest: unknown[]) => boolean;
    (proc.stdin as unknown as { write: typeof write }).write = (chunk, ...rest) => {
      writes.push(chunk.byteLength);
      return write(chunk, ...rest);
    };
    return proc;
  };
  return new Proxy(local, {
    get(target, prop) {
      if (prop === "spawn") return spawn;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Connector;
}

describe("session writes", () => {
  const writes: number[] = [];
  const env = localClient({ connector: recordingConnector(writes) });
  afterAll(async () => {
    await env.client.close();
    env.dispose();
  });

  it("sends the calls of one tick in one write, each answered with its own result", async () => {
    await env.client.call("math", "sqrt", [1]); // the session is up
    writes.length = 0;
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => env.client.call("math", "sqrt", [i * i])));
    expect(values.map((r) => r.value)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(writes).toHaveLength(1);
    expect(writes[0]).toBeGreaterThan(50 * 30); // 50 frames of a few dozen bytes each
  });

  it("sends a frame of 64 KiB or more alone, after what was waiting", async () => {
    writes.length = 0;
    const big = "x".repeat(100_000);
    const [small, large] = await Promise.all([
      env.client.call("math", "sqrt", [4]),
      env.client.call("builtins", "len", [big]),
    ]);
    expect([small.value, large.value]).toEqual([2, 100_000]);
    expect(writes).toHaveLength(2);
    expect(writes[1]).toBeGreaterThan(100_000);
  });
});
