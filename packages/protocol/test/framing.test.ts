import { ProtocolError, UsageError } from "@sremote/core";
import { describe, expect, it, vi } from "vitest";
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, TICK_BATCH_MAX_BYTES, TickBatcher } from "../src/index.js";

/** Small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error("did not throw");
}

describe("encodeFrame", () => {
  it("prefixes a 4-byte big-endian length", () => {
    expect(Buffer.from(encodeFrame(new Uint8Array([0xc0]))).toString("hex")).toBe("00000001c0");
    const p = new Uint8Array(0x01020304 & 0xffff).fill(7);
    const f = encodeFrame(p);
    expect([...f.subarray(0, 4)]).toEqual([0, 0, 0x03, 0x04]);
    expect(f.length).toBe(p.length + 4);
  });

  it("refuses empty and oversized payloads", () => {
    expect(() => encodeFrame(new Uint8Array(0))).toThrow(UsageError);
    expect(() => encodeFrame(new Uint8Array(11), { maxFrameBytes: 10 })).toThrow(/exceeds the limit of 10/);
    expect(() => encodeFrame(new Uint8Array(1), { maxFrameBytes: 0 })).toThrow(UsageError);
  });
});

describe("FrameDecoder", () => {
  it("defaults to 256 MiB", () => {
    expect(DEFAULT_MAX_FRAME_BYTES).toBe(256 * 1024 * 1024);
  });

  it("decodes several frames in one chunk, and a frame across chunks", () => {
    const d = new FrameDecoder();
    const stream = concat([
      encodeFrame(new Uint8Array([1])),
      encodeFrame(new Uint8Array([2, 3])),
      encodeFrame(new Uint8Array([4, 5, 6])),
    ]);
    // 5 + 6 + 7 bytes: two whole frames and the first header byte of the third.
    expect(d.push(stream.subarray(0, 12)).map((f) => [...f])).toEqual([[1], [2, 3]]);
    expect(d.pendingBytes).toBe(1);
    expect(d.push(stream.subarray(12, 14))).toEqual([]);
    expect(d.pendingBytes).toBe(3);
    expect(d.push(stream.subarray(14, 17))).toEqual([]);
    expect(d.pendingBytes).toBe(6);
    expect(d.push(stream.subarray(17)).map((f) => [...f])).toEqual([[4, 5, 6]]);
    expect(d.pendingBytes).toBe(0);
    d.end();
  });

  it("handles a header split byte by byte", () => {
    const d = new FrameDecoder();
    const f = encodeFrame(new Uint8Array([9, 8, 7]));
    const out: Uint8Array[] = [];
    for (const b of f) out.push(...d.push(new Uint8Array([b])));
    expect(out.map((x) => [...x])).toEqual([[9, 8, 7]]);
  });

  it("ignores empty chunks", () => {
    const d = new FrameDecoder();
    expect(d.push(new Uint8Array(0))).toEqual([]);
    expect(d.pendingBytes).toBe(0);
  });

  it("returns frames that do not share memory with the pushed chunks", () => {
    const d = new FrameDecoder();
    const chunk = Buffer.from(encodeFrame(new Uint8Array([1, 2, 3])));
    const [frame] = d.push(chunk);
    chunk.fill(0);
    expect([...frame!]).toEqual([1, 2, 3]);
    expect(frame!.constructor).toBe(Uint8Array);
  });

  it("with views: true, frames inside one chunk are views of it; frames across chunks are assembled", () => {
    const d = new FrameDecoder({ views: true });
    const chunk = Buffer.concat([encodeFrame(new Uint8Array([1, 2, 3])), encodeFrame(new Uint8Array([4, 5, 6, 7]))]);
    const [a, b] = d.push(chunk.subarray(0, chunk.length - 2));
    expect([...a!]).toEqual([1, 2, 3]);
    expect(a!.buffer).toBe(chunk.buffer); // no copy
    expect(b).toBeUndefined();
    const [c] = d.push(chunk.subarray(chunk.length - 2));
    expect([...c!]).toEqual([4, 5, 6, 7]);
    expect(c!.buffer).not.toBe(chunk.buffer); // spread over two chunks: its own buffer
  });

  it("readTarget: the rest of a frame read straight into its buffer is counted, not copied", () => {
    const d = new FrameDecoder({ views: true });
    const payload = new Uint8Array(200_000).map((_, i) => i % 251);
    const wire = Buffer.concat([encodeFrame(payload), encodeFrame(new Uint8Array([9, 8]))]);
    expect(d.readTarget()).toBeNull(); // between frames
    expect(d.push(wire.subarray(0, 1000))).toEqual([]);
    const target = d.readTarget()!;
    expect(target.byteLength).toBe(payload.length - 996);
    // A reader writes the next bytes where it was told, and pushes the view of what landed.
    target.set(wire.subarray(1000, 150_000));
    const setSpy = vi.spyOn(Uint8Array.prototype, "set");
    try {
      expect(d.push(target.subarray(0, 149_000))).toEqual([]);
      expect(setSpy).not.toHaveBeenCalled(); // in place: nothing copied
    } finally {
      setSpy.mockRestore();
    }
    const rest = d.readTarget()!;
    expect(rest.byteLength).toBe(payload.length - 996 - 149_000);
    expect(rest.buffer).toBe(target.buffer);
    rest.set(wire.subarray(150_000, 4 + payload.length));
    const [frame] = d.push(rest);
    expect(Buffer.from(frame!).equals(Buffer.from(payload))).toBe(true);
    expect(frame!.buffer).toBe(target.buffer);
    expect(d.isAssembled(frame!)).toBe(true);
    expect(d.readTarget()).toBeNull();
    // The next frame arrives through an ordinary chunk again: a view of it, not assembled.
    const chunk = wire.subarray(4 + payload.length);
    const [small] = d.push(chunk);
    expect([...small!]).toEqual([9, 8]);
    expect(d.isAssembled(small!)).toBe(false);
  });

  it("readTarget and ordinary chunks mix in any order without losing or reordering a byte", () => {
    const next = rng(7);
    const payloads = Array.from({ length: 40 }, (_, k) =>
      new Uint8Array(1 + Math.floor(next() * (k % 3 === 0 ? 300_000 : 3000))).map(() => Math.floor(next() * 256)),
    );
    const wire = concat(payloads.map((p) => encodeFrame(p)));
    const d = new FrameDecoder({ views: true });
    const scratch = new Uint8Array(4096);
    const got: Uint8Array[] = [];
    let at = 0;
    while (at < wire.length) {
      // Like a socket read: at most what the target holds, and however much has arrived.
      const target = next() < 0.8 ? (d.readTarget() ?? scratch) : scratch;
      const n = Math.min(target.byteLength, wire.length - at, 1 + Math.floor(next() * 70_000));
      target.set(wire.subarray(at, at + n));
      at += n;
      for (const f of d.push(target.subarray(0, n))) got.push(new Uint8Array(f)); // copy: scratch is reused
    }
    d.end();
    expect(got.length).toBe(payloads.length);
    for (const [k, f] of got.entries()) expect(Buffer.from(f).equals(Buffer.from(payloads[k]!))).toBe(true);
  });

  it("a zero-length frame is a ProtocolError", () => {
    const d = new FrameDecoder();
    const e = thrown(() => d.push(new Uint8Array([0, 0, 0, 0])));
    expect(e).toBeInstanceOf(ProtocolError);
    expect((e as Error).message).toMatch(/zero-length/);
    // The decoder stays failed.
    expect(() => d.push(encodeFrame(new Uint8Array([1])))).toThrow(ProtocolError);
    expect(() => d.end()).toThrow(ProtocolError);
  });

  it("an oversized frame fails on its header, before any payload arrives", () => {
    const d = new FrameDecoder({ maxFrameBytes: 1024 });
    expect(() => d.push(new Uint8Array([0, 0, 4, 1]))).toThrow(/1025 bytes, over the limit of 1024/);
    // The default limit: a header announcing 256 MiB + 1 fails at once, with nothing buffered.
    const big = new FrameDecoder();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, DEFAULT_MAX_FRAME_BYTES + 1);
    expect(() => big.push(header)).toThrow(ProtocolError);
    expect(big.pendingBytes).toBe(0);
    // A header announcing 4 GiB − 1, split across pushes.
    const huge = new FrameDecoder();
    huge.push(new Uint8Array([0xff, 0xff]));
    expect(() => huge.push(new Uint8Array([0xff, 0xff]))).toThrow(ProtocolError);
  });

  it("returns the good frames that precede a bad header, then throws", () => {
    const d = new FrameDecoder({ maxFrameBytes: 10 });
    const chunk = concat([encodeFrame(new Uint8Array([1])), new Uint8Array([0, 0, 0, 11])]);
    expect(d.push(chunk).map((f) => [...f])).toEqual([[1]]);
    expect(d.error).toBeInstanceOf(ProtocolError);
    expect(() => d.push(new Uint8Array([1]))).toThrow(/11 bytes/);
  });

  it("end() inside a frame or a header is a ProtocolError", () => {
    const a = new FrameDecoder();
    a.push(new Uint8Array([0, 0, 0, 5, 1, 2]));
    expect(() => a.end()).toThrow(/2 of 5 payload bytes/);
    const b = new FrameDecoder();
    b.push(new Uint8Array([0, 0]));
    expect(() => b.end()).toThrow(/2 of 4 bytes/);
  });

  it("validates maxFrameBytes", () => {
    expect(() => new FrameDecoder({ maxFrameBytes: 0 })).toThrow(UsageError);
    expect(() => new FrameDecoder({ maxFrameBytes: 2 ** 32 })).toThrow(UsageError);
    expect(() => new FrameDecoder({ maxFrameBytes: 1.5 })).toThrow(UsageError);
  });

  it("a large frame in many small chunks is copied once, not once per chunk", () => {
    const size = 32 * 1024 * 1024;
    const payload = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) payload[i] = i & 0xff;
    const stream = encodeFrame(payload);
    const d = new FrameDecoder();
    // Count the bytes the decoder copies (every copy goes through TypedArray.prototype.set):
    // a decoder that concatenates per chunk would copy ~0.5 TB for 32,768 chunks.
    let copied = 0;
    const set = Uint8Array.prototype.set;
    const spy = vi.spyOn(Uint8Array.prototype, "set").mockImplementation(function (
      this: Uint8Array,
      src: ArrayLike<number>,
      offset?: number,
    ) {
      copied += src.length;
      set.call(this, src, offset);
    });
    const frames: Uint8Array[] = [];
    try {
      for (let o = 0; o < stream.length; o += 1024) frames.push(...d.push(stream.subarray(o, o + 1024)));
    } finally {
      spy.mockRestore();
    }
    expect(frames.length).toBe(1);
    expect(Buffer.compare(frames[0]!, payload)).toBe(0);
    expect(copied).toBeGreaterThanOrEqual(size);
    expect(copied).toBeLessThan(size + 64 * 1024);
  });

  it("fuzz: random chunkings of random frame sequences decode identically", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const frames = Array.from({ length: 1 + Math.floor(r() * 20) }, () => {
        const len = r() < 0.1 ? 1 + Math.floor(r() * 70000) : 1 + Math.floor(r() * 300);
        const f = new Uint8Array(len);
        for (let i = 0; i < len; i++) f[i] = Math.floor(r() * 256);
        return f;
      });
      const stream = concat(frames.map((f) => encodeFrame(f)));
      const d = new FrameDecoder();
      const got: Uint8Array[] = [];
      let o = 0;
      while (o < stream.length) {
        const pick = r();
        const n =
          pick < 0.3 ? 1 + Math.floor(r() * 4) : pick < 0.9 ? 1 + Math.floor(r() * 500) : 1 + Math.floor(r() * 100000);
        got.push(...d.push(stream.subarray(o, o + n)));
        o += n;
      }
      d.end();
      expect(got.length, `seed ${seed}`).toBe(frames.length);
      for (const [i, g] of got.entries()) expect(Buffer.compare(g, frames[i]!), `seed ${seed} frame ${i}`).toBe(0);
    }
  });
});

describe("TickBatcher", () => {
  const tick = () => new Promise<void>((resolve) => process.nextTick(resolve));

  it("writes the frames of one tick as one buffer, in order, when the tick ends", async () => {
    const writes: Uint8Array[] = [];
    const out = new TickBatcher((b) => writes.push(b));
    out.push(encodeFrame(new Uint8Array([1])));
    out.push(encodeFrame(new Uint8Array([2, 2])));
    expect(writes).toHaveLength(0);
    await tick();
    expect(writes).toHaveLength(1);
    expect(new FrameDecoder().push(writes[0]!).map((f) => [...f])).toEqual([[1], [2, 2]]);
    out.push(encodeFrame(new Uint8Array([3])));
    await tick();
    expect(writes).toHaveLength(2); // a new tick, a new write
  });

  it("sends a big frame alone after what waits, and a full batch at once; flush() writes now", async () => {
    const writes: number[] = [];
    const out = new TickBatcher((b) => writes.push(b.byteLength));
    out.push(new Uint8Array(10));
    out.push(new Uint8Array(TICK_BATCH_MAX_BYTES));
    expect(writes).toEqual([10, TICK_BATCH_MAX_BYTES]);
    out.push(new Uint8Array(TICK_BATCH_MAX_BYTES - 1));
    out.push(new Uint8Array(1)); // the batch reaches the limit
    expect(writes).toEqual([10, TICK_BATCH_MAX_BYTES, TICK_BATCH_MAX_BYTES]);
    out.push(new Uint8Array(5));
    out.flush();
    expect(writes.at(-1)).toBe(5);
    out.flush(); // nothing queued: nothing written
    await tick();
    expect(writes).toHaveLength(4);
  });
});
