import { afterAll, describe, expect, it, vi } from "vitest";
import { localClient } from "./helpers.js";
import { recordingConnector } from "./recording-connector.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describe("session writes", () => {
  const writes: number[] = [];
  const env = localClient({ connector: recordingConnector((chunk) => writes.push(chunk.byteLength)) });
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
