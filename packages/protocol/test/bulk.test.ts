// Large values without extra copies: frames in parts (the caller's bytes written as they
// are) and decoding that keeps large bins in a frame the caller hands over.
import { UsageError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import {
  type AgentMessage,
  type CallMessage,
  decodeAgentMessage,
  decodeClientMessage,
  encodeMessageFrame,
  encodeMessageFrameParts,
  NDArray,
  TickBatcher,
} from "../src/index.js";

const BIG = 64 * 1024; // the size from which bins are left out of the buffer / kept as views

const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
};

/** Byte equality (vitest's deep equality walks megabytes element by element). */
const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function patterned(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

const call = (extra: Partial<CallMessage>): CallMessage => ({
  v: 1,
  kind: "call",
  id: "c-1",
  module: "builtins",
  function: "bytes",
  ...extra,
});

describe("encodeMessageFrameParts", () => {
  it("is one part, the same bytes as encodeMessageFrame, when nothing is large", () => {
    const msg = call({ args: [patterned(BIG - 1, 1), "x", 2] });
    const parts = encodeMessageFrameParts(msg);
    expect(parts).toHaveLength(1);
    expect(same(concat(parts), encodeMessageFrame(msg))).toBe(true);
  });

  it("writes large bins from the caller's memory, the frame's bytes unchanged", () => {
    const a = patterned(BIG, 2);
    const b = patterned(3 * BIG + 5, 3);
    const view = patterned(2 * BIG + 100, 4).subarray(50, 50 + 2 * BIG); // an offset view
    const msg = call({ args: [a, "between", b], kwargs: { v: view, n: 7 } });
    const parts = encodeMessageFrameParts(msg);
    expect(same(concat(parts), encodeMessageFrame(msg))).toBe(true);
    // The large ones are the caller's own arrays, not copies.
    expect(parts).toContain(a);
    expect(parts).toContain(b);
    expect(parts).toContain(view);
    const back = decodeClientMessage(concat(parts).subarray(4)) as CallMessage;
    expect(same(back.args?.[2] as Uint8Array, b)).toBe(true);
    expect(same(back.kwargs?.["v"] as Uint8Array, view)).toBe(true);
  });

  it("leaves large ndarray data out too, and keeps whatever is inside a set in the buffer", () => {
    const data = new Float64Array(BIG / 4).map((_, i) => i / 3);
    const arr = new NDArray("<f8", [data.length / 4, 4], data);
    const inSet = patterned(BIG * 2, 5);
    const msg = call({ args: [arr, new Set([inSet, 1])] });
    const parts = encodeMessageFrameParts(msg);
    expect(same(concat(parts), encodeMessageFrame(msg))).toBe(true);
    expect(parts.some((p) => p.buffer === data.buffer)).toBe(true);
    expect(parts).not.toContain(inSet); // the ext header counts its bytes: copied
  });

  it("keeps the holes in place when a message of 16 keys or more moves its body", () => {
    const big = patterned(BIG, 6);
    const extra: Record<string, unknown> = {};
    for (let i = 0; i < 14; i++) extra[`k${i}`] = i;
    const msg = { ...call({ args: [big] }), ...extra } as CallMessage;
    const parts = encodeMessageFrameParts(msg);
    expect(parts).toContain(big);
    expect(same(concat(parts), encodeMessageFrame(msg))).toBe(true);
  });

  it("checks the frame limit against the whole frame, holes included", () => {
    const msg = call({ args: [patterned(2 * BIG, 7)] });
    expect(() => encodeMessageFrameParts(msg, { maxFrameBytes: 2 * BIG })).toThrow(UsageError);
    expect(same(concat(encodeMessageFrameParts(msg, { maxFrameBytes: 2 * BIG + 100 })), encodeMessageFrame(msg))).toBe(
      true,
    );
  });

  it("leaves the shared encoder as it was: the next small frame is whole", () => {
    encodeMessageFrameParts(call({ args: [patterned(BIG, 8)] }));
    const small = call({ args: [patterned(BIG, 9)] });
    expect(encodeMessageFrame(small).byteLength).toBeGreaterThan(BIG);
  });
});

describe("decodeAgentMessage with ownsBuffer", () => {
  const result = (value: unknown): Uint8Array =>
    encodeMessageFrame({ v: 1, kind: "result", id: "r", ok: true, value, stdout: "", stderr: "" }).subarray(4);

  it("keeps large bins as views of the frame and copies small ones", () => {
    const big = patterned(BIG + 3, 10);
    const small = patterned(BIG - 1, 11);
    const frame = result([big, small]);
    const msg = decodeAgentMessage(frame, { ownsBuffer: true }) as AgentMessage & { value: Uint8Array[] };
    const [gotBig, gotSmall] = msg.value as [Uint8Array, Uint8Array];
    expect(same(gotBig, big)).toBe(true);
    expect(gotBig.buffer).toBe(frame.buffer);
    expect(gotBig.constructor).toBe(Uint8Array);
    expect(same(gotSmall, small)).toBe(true);
    expect(gotSmall.buffer).not.toBe(frame.buffer);
  });

  it("copies everything without it (the frame may be reused by its owner)", () => {
    const frame = result(patterned(BIG * 2, 12));
    const msg = decodeAgentMessage(frame) as AgentMessage & { value: Uint8Array };
    expect(msg.value.buffer).not.toBe(frame.buffer);
    frame.fill(0);
    expect(same(msg.value, patterned(BIG * 2, 12))).toBe(true);
  });

  it("gives ndarrays of large data their elements from the frame", () => {
    const data = new Int32Array(BIG).map((_, i) => i - 5);
    const frame = result(new NDArray("<i4", [BIG], data));
    const msg = decodeAgentMessage(frame, { ownsBuffer: true }) as AgentMessage & { value: NDArray };
    const got = msg.value.data as Int32Array;
    expect(same(new Uint8Array(got.buffer, got.byteOffset, got.byteLength), new Uint8Array(data.buffer))).toBe(true);
  });
});

describe("TickBatcher.pushParts", () => {
  it("writes what waits first, then each part of a large frame as it is", () => {
    const writes: Uint8Array[] = [];
    const out = new TickBatcher((b) => writes.push(b));
    const small = Uint8Array.of(1, 2, 3);
    const parts = [Uint8Array.of(9), patterned(BIG, 13), Uint8Array.of(8)];
    out.push(small);
    out.pushParts(parts);
    expect(writes).toHaveLength(4);
    expect(writes.every((w, i) => w === [small, ...parts][i])).toBe(true);
  });

  it("queues a single part like push (merged with the tick's other frames)", async () => {
    const writes: Uint8Array[] = [];
    const out = new TickBatcher((b) => writes.push(b));
    out.pushParts([Uint8Array.of(1)]);
    out.pushParts([Uint8Array.of(2)]);
    expect(writes).toEqual([]);
    await new Promise((r) => process.nextTick(r));
    expect(writes.map((w) => Array.from(w))).toEqual([[1, 2]]);
  });
});
