import { afterAll, describe, expect, it, vi } from "vitest";
import { bigCopies } from "./copy-counter.js";
import { localClient } from "./helpers.js";
import { recordingConnector } from "./recording-connector.js";

// Real processes on a shared machine: an explicit budget per test and hook.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const MIB = 1024 * 1024;

function patterned(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 997) b[i] = (i + seed) & 0xff;
  return b;
}

const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe("session carrier: large bytes", () => {
  const writes: Uint8Array[] = [];
  const env = localClient({ connector: recordingConnector((chunk) => writes.push(chunk)) });
  afterAll(async () => {
    await env.client.close();
    env.dispose();
  });

  it("echoes large arguments written from the caller's memory, byte for byte", async () => {
    await env.client.call("math", "sqrt", [1]); // the session is up
    writes.length = 0;
    const a = patterned(3 * MIB + 7, 1);
    const b = patterned(MIB, 2).subarray(11); // a view at an offset
    const r = await env.client.call<Uint8Array>("builtins", "bytes", [a]);
    expect(same(r.value, a)).toBe(true);
    // The argument went out as the caller's own array: no copy of it into a frame.
    expect(writes.some((w) => w === a)).toBe(true);
    // Two large arguments and keyword arguments around them, in one call.
    const joined = await env.client.call<Uint8Array>("operator", "add", [a, b]);
    expect(joined.value.byteLength).toBe(a.byteLength + b.byteLength);
    expect(same(joined.value.subarray(0, a.byteLength), a)).toBe(true);
    expect(same(joined.value.subarray(a.byteLength), b)).toBe(true);
  });

  it("returns a large result spread over many reads intact, and small calls keep working around it", async () => {
    const n = 5 * MIB + 3;
    const [small1, big, small2] = await Promise.all([
      env.client.call("math", "sqrt", [9]),
      env.client.call<Uint8Array>("os", "urandom", [n]),
      env.client.call("math", "sqrt", [16]),
    ]);
    expect([small1.value, small2.value]).toEqual([3, 4]);
    expect(big.value).toBeInstanceOf(Uint8Array);
    expect(big.value.byteLength).toBe(n);
    const again = await env.client.call<Uint8Array>("builtins", "bytes", [big.value]);
    expect(same(again.value, big.value)).toBe(true);
  });

  it("300 echoes of every size from 1 byte to 300 KiB, 48 at a time, each get their own bytes back", async () => {
    // Small results are decoded from one reused scratch buffer, large ones read into their
    // frames: nothing decoded may still point into the scratch when the next read lands.
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const payloads = Array.from({ length: 300 }, (_, i) => {
      const n = i % 7 === 0 ? 64 * 1024 + Math.floor(next() * 240 * 1024) : 1 + Math.floor(next() * 3000);
      const b = new Uint8Array(n);
      for (let k = 0; k < n; k += 251) b[k] = (i + k) & 0xff;
      return b;
    });
    let at = 0;
    const back: Uint8Array[] = [];
    await Promise.all(
      Array.from({ length: 48 }, async () => {
        for (let i = at++; i < payloads.length; i = at++) {
          back[i] = (await env.client.call<Uint8Array>("builtins", "bytes", [payloads[i]!])).value;
        }
      }),
    );
    // Checked only once all are back: a value that aliased reused memory would differ by now.
    payloads.forEach((p, i) => {
      expect(same(back[i]!, p), `echo ${i} (${p.byteLength} bytes)`).toBe(true);
    });
  });

  it("reads a large result straight into its frame (readStdoutInto): the bytes are never copied", async () => {
    await env.client.call("math", "sqrt", [1]);
    const n = 8 * MIB;
    const { value: r, copied } = await bigCopies(() => env.client.call<Uint8Array>("os", "urandom", [n]));
    expect(r.value.byteLength).toBe(n);
    // Without reads in place, every byte was copied from a 64 KiB chunk into the frame.
    expect(copied).toBeLessThan(MIB);
  });
});
