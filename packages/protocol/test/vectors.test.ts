import { readFileSync } from "node:fs";
import { ProtocolError } from "@sremote/core";
import { Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decodeAgentMessage,
  decodeClientMessage,
  decodeValue,
  encodeMessage,
  encodeValue,
  fromTaggedJson,
  toTaggedJson,
  valuesEqual,
} from "../src/index.js";

interface Vector {
  name: string;
  hex: string;
  value?: unknown;
  canonical?: boolean;
  error?: string;
  ts_hex?: string;
  ts_only?: boolean;
  py_only?: boolean;
  message?: boolean;
  direction?: "client" | "agent";
  error_key?: string;
}

const load = (file: string): Vector[] =>
  JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), "utf8")) as Vector[];

const values = load("values.json");
const messages = load("messages.json");
const bytesOf = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, "hex"));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("vector files", () => {
  it("are well formed", () => {
    for (const v of [...values, ...messages]) {
      expect(typeof v.name).toBe("string");
      expect(v.hex).toMatch(/^([0-9a-f]{2})*$/);
      expect(v.error === undefined ? "value" in v : v.error === "protocol").toBe(true);
    }
    const names = [...values, ...messages].map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it("cover every row of the mapping", () => {
    const prefixes = new Set(values.map((v) => v.name.split("/")[0]));
    for (const p of [
      "nil",
      "bool",
      "int",
      "float",
      "float32",
      "str",
      "bin",
      "array",
      "map",
      "timestamp",
      "ndarray",
      "set",
      "nesting",
      "error",
    ]) {
      expect(prefixes).toContain(p);
    }
  });
});

describe.each([
  ["values.json", values],
  ["messages.json", messages],
])("%s", (_file, vectors) => {
  const mine = vectors.filter((v) => !v.py_only);

  it.each(mine.filter((v) => v.error === undefined).map((v) => [v.name, v] as const))("decodes %s", (_n, v) => {
    const bytes = bytesOf(v.hex);
    const got = decodeValue(bytes);
    const want = fromTaggedJson(v.value);
    if (!valuesEqual(got, want)) {
      expect(toTaggedJson(got)).toEqual(v.value); // shows a readable diff
      expect.fail("values differ");
    }
    if (v.message) {
      const msg = v.direction === "client" ? decodeClientMessage(bytes) : decodeAgentMessage(bytes);
      expect(msg.kind).toBe((v.value as { kind: string }).kind);
    }
  });

  it.each(mine.filter((v) => v.canonical).map((v) => [v.name, v] as const))("encodes %s canonically", (_n, v) => {
    const value = fromTaggedJson(v.value);
    expect(hexOf(encodeValue(value))).toBe(v.ts_hex ?? v.hex);
    if (v.message) expect(hexOf(encodeMessage(value as never))).toBe(v.ts_hex ?? v.hex);
  });

  it.each(mine.filter((v) => v.error !== undefined).map((v) => [v.name, v] as const))("rejects %s", (_n, v) => {
    const bytes = bytesOf(v.hex);
    const run = () =>
      v.message
        ? v.direction === "client"
          ? decodeClientMessage(bytes)
          : decodeAgentMessage(bytes)
        : decodeValue(bytes);
    let err: unknown;
    try {
      run();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe("PROTOCOL");
    if (v.error_key !== undefined) expect((err as Error).message).toContain(`"${v.error_key}"`);
  });

  it("round-trips every decodable vector through tagged JSON", () => {
    for (const v of mine.filter((x) => x.error === undefined)) {
      const decoded = decodeValue(bytesOf(v.hex));
      const back = fromTaggedJson(JSON.parse(JSON.stringify(toTaggedJson(decoded))));
      expect(valuesEqual(back, decoded), v.name).toBe(true);
    }
  });
});

// An independent decoder checks the hand-written bytes: msgpackr, configured to return Maps and
// 64-bit ints as bigint (normalised to the protocol's rule). It knows no ext 1/2 and is lax where we are strict, so it only
// sees valid vectors without those ext types.
describe("cross-check with msgpackr's decoder", () => {
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: "bigint" } as never);
  const normalize = (x: unknown): unknown => {
    if (x instanceof Map) {
      const entries = [...x].map(([k, v]) => [normalize(k), normalize(v)] as const);
      if (entries.every(([k]) => typeof k === "string")) {
        const o: Record<string, unknown> = {};
        for (const [k, v] of entries)
          Object.defineProperty(o, k as string, { value: v, enumerable: true, writable: true });
        return o;
      }
      return new Map(entries);
    }
    if (Array.isArray(x)) return x.map(normalize);
    if (x instanceof Uint8Array) return new Uint8Array(x);
    if (typeof x === "bigint" && x >= -(2n ** 53n - 1n) && x <= 2n ** 53n - 1n) return Number(x);
    return x;
  };
  const usesExt12 = (hex: string) => /ext|ndarray|set/.test(hex);
  const candidates = [...values, ...messages].filter(
    (v) => v.error === undefined && !v.py_only && !usesExt12(v.name) && !JSON.stringify(v.value).includes("$set"),
  );

  it.each(candidates.map((v) => [v.name, v] as const))("%s", (_n, v) => {
    const theirs = normalize(unpackr.unpack(Buffer.from(v.hex, "hex")));
    expect(valuesEqual(theirs, fromTaggedJson(v.value))).toBe(true);
  });
});
