import { readFileSync } from "node:fs";
import { isSremoteError } from "@sremote/core";
import { describe, expect, it, vi } from "vitest";
import { decodeAgentMessage, decodeClientMessage, decodeValue, encodeFrame, FrameDecoder } from "../src/index.js";

// Mutation fuzz of the decoders a peer's bytes reach: every mutation of a valid vector must
// decode or fail with a typed SRemote error (PROTOCOL, or INVALID_ARGUMENT for a value the
// codec refuses) — never another exception, never a hang. Fixed seed; the iteration count is
// a budget CI can afford, SREMOTE_FUZZ_ITERATIONS raises it for a longer run.
const ITERATIONS = Number(process.env.SREMOTE_FUZZ_ITERATIONS ?? 3000);

interface Vector {
  name: string;
  hex: string;
  direction?: "client" | "agent";
}

const load = (file: string): Vector[] =>
  JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), "utf8")) as Vector[];
const withBytes = (vs: Vector[]) => vs.map((v) => ({ ...v, bytes: new Uint8Array(Buffer.from(v.hex, "hex")) }));
const values = withBytes(load("values.json"));
const messages = withBytes(load("messages.json"));
const seeds = [...values, ...messages].filter((v) => v.bytes.length > 0);
/** Each decoder is fed mutations of what it is meant to read (and, rarely, of anything). */
const corpus = {
  value: values,
  agent: messages.filter((v) => v.direction === "agent"),
  client: messages.filter((v) => v.direction === "client"),
};

/** mulberry32: a small seeded generator, so a failure names a reproducible case. */
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

const INTERESTING = [0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xc4, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff];

/** One mutation of `src`: flip a bit, overwrite with an interesting byte, cut, splice, or repeat. */
function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const out = Array.from(src);
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const at = out.length === 0 ? 0 : Math.floor(r() * out.length);
    switch (Math.floor(r() * 6)) {
      case 0:
        if (out.length > 0) out[at] = (out[at] as number) ^ (1 << Math.floor(r() * 8));
        break;
      case 1:
        if (out.length > 0) out[at] = INTERESTING[Math.floor(r() * INTERESTING.length)] as number;
        break;
      case 2:
        out.length = at; // truncate
        break;
      case 3:
        out.splice(at, 0, Math.floor(r() * 256));
        break;
      case 4:
        out.splice(at, 1 + Math.floor(r() * 4));
        break;
      default: {
        const len = Math.min(out.length - at, 1 + Math.floor(r() * 8));
        out.splice(at, 0, ...out.slice(at, at + len));
      }
    }
  }
  return new Uint8Array(out);
}

/** Runs `decode`; returns the error code, or "ok". Anything but a typed error fails the test. */
function outcome(decode: () => unknown, what: string): string {
  try {
    decode();
    return "ok";
  } catch (err) {
    if (!isSremoteError(err)) {
      throw new Error(`${what}: untyped ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
    }
    return err.code;
  }
}

describe(`mutation fuzz (${ITERATIONS} cases per decoder, fixed seeds)`, () => {
  // A budget, not a speed claim: a loaded CI machine may take ten times as long.
  vi.setConfig({ testTimeout: 120_000 });
  it.each([
    ["value", decodeValue],
    ["agent", decodeAgentMessage],
    ["client", decodeClientMessage],
  ] as const)("decode %s: every mutation decodes or fails with a typed error", (name, decode) => {
    const r = rng(name.length);
    const own = corpus[name];
    const seen = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const pool = r() < 0.9 ? own : seeds;
      const seed = pool[Math.floor(r() * pool.length)]!;
      const bytes = mutate(seed.bytes, r);
      const code = outcome(
        () => decode(bytes),
        `${name} case ${i} (from ${seed.name}: ${Buffer.from(bytes).toString("hex").slice(0, 120)})`,
      );
      if (code !== "ok" && code !== "PROTOCOL" && code !== "INVALID_ARGUMENT") {
        throw new Error(`${name} case ${i} (from ${seed.name}): unexpected code ${code}`);
      }
      seen.set(code, (seen.get(code) ?? 0) + 1);
    }
    // The fuzzer reaches both outcomes (else it tests nothing).
    expect(seen.get("ok") ?? 0).toBeGreaterThan(0);
    expect(seen.get("PROTOCOL") ?? 0).toBeGreaterThan(0);
  });

  it("FrameDecoder: mutated streams of frames in random chunks fail only with PROTOCOL, or yield frames", () => {
    const r = rng(2);
    for (let i = 0; i < ITERATIONS / 4; i++) {
      const frames = Array.from(
        { length: 1 + Math.floor(r() * 4) },
        () => seeds[Math.floor(r() * seeds.length)]!.bytes,
      );
      const stream = mutate(new Uint8Array(Buffer.concat(frames.map((f) => encodeFrame(f)))), r);
      const d = new FrameDecoder({ maxFrameBytes: 1 << 20 });
      const code = outcome(() => {
        for (let o = 0; o < stream.length; ) {
          const n = 1 + Math.floor(r() * 64);
          for (const f of d.push(stream.subarray(o, o + n))) expect(f.byteLength).toBeLessThanOrEqual(1 << 20);
          o += n;
        }
      }, `frame stream case ${i}`);
      expect(["ok", "PROTOCOL"]).toContain(code);
    }
  });
});
