import { ProtocolError, UsageError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import { decodeValue, encodeValue, MAX_NESTING, NDArray, SerializationError, valuesEqual } from "../src/index.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));
const roundTrip = (v: unknown): unknown => decodeValue(encodeValue(v));

function encodeError(value: unknown, path?: string): SerializationError {
  try {
    encodeValue(value, path === undefined ? {} : { path });
  } catch (e) {
    expect(e).toBeInstanceOf(SerializationError);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).code).toBe("INVALID_ARGUMENT");
    return e as SerializationError;
  }
  throw new Error("encoded without error");
}

function decodeError(h: string): ProtocolError {
  try {
    decodeValue(fromHex(h));
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error("decoded without error");
}

describe("value mapping, TypeScript side (every row of docs/protocol.md §1)", () => {
  it("nil: null and undefined encode as nil; nil decodes as null", () => {
    expect(hex(encodeValue(null))).toBe("c0");
    expect(hex(encodeValue(undefined))).toBe("c0");
    expect(roundTrip({ a: undefined })).toEqual({ a: null });
    expect(roundTrip([undefined])).toEqual([null]);
    // A sparse array's holes are nil too.
    const sparse: unknown[] = [1];
    sparse[2] = 3;
    expect(roundTrip(sparse)).toEqual([1, null, 3]);
  });

  it("bool", () => {
    expect(roundTrip(true)).toBe(true);
    expect(roundTrip(false)).toBe(false);
  });

  it("safe integers are ints, in the smallest format", () => {
    for (const n of [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
      expect(roundTrip(n)).toBe(n);
      if (n !== 0) expect(roundTrip(-n)).toBe(-n);
    }
    expect(hex(encodeValue(2 ** 40))).toBe("cf0000010000000000");
    expect(hex(encodeValue(-(2 ** 40)))).toBe("d3ffffff0000000000");
  });

  it("bigints encode as ints in the smallest format; small ones come back as numbers", () => {
    expect(hex(encodeValue(5n))).toBe("05");
    expect(roundTrip(5n)).toBe(5);
    expect(hex(encodeValue(-1n))).toBe("ff");
    expect(roundTrip(2n ** 53n)).toBe(2n ** 53n);
    expect(roundTrip(2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
    expect(roundTrip(-(2n ** 63n))).toBe(-(2n ** 63n));
    expect(roundTrip(2n ** 63n)).toBe(2n ** 63n);
  });

  it("bigints outside [-2^63, 2^64-1] are a serialization error", () => {
    expect(encodeError(2n ** 64n).message).toMatch(/bigint 18446744073709551616.*64-bit range/);
    expect(encodeError([-(2n ** 63n) - 1n]).path).toBe("value[0]");
  });

  it("non-integers, -0, NaN, ±Infinity and integers beyond 2^53 are float64", () => {
    expect(hex(encodeValue(0.5))).toBe("cb3fe0000000000000");
    expect(hex(encodeValue(-0))).toBe("cb8000000000000000");
    expect(Object.is(roundTrip(-0), -0)).toBe(true);
    expect(roundTrip(Number.NaN)).toBeNaN();
    // A NaN with payload bits (a signalling NaN from the wire) is re-encoded as the quiet NaN.
    const odd = decodeValue(fromHex("cb7ff0000000000001"));
    expect(odd).toBeNaN();
    expect(hex(encodeValue(odd))).toBe("cb7ff8000000000000");
    expect(hex(encodeValue(-Number.NaN))).toBe("cb7ff8000000000000");
    expect(roundTrip(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(roundTrip(Number.NEGATIVE_INFINITY)).toBe(Number.NEGATIVE_INFINITY);
    expect(hex(encodeValue(2 ** 53))).toBe("cb4340000000000000");
    expect(roundTrip(1e300)).toBe(1e300);
    expect(hex(encodeValue(Number.MIN_VALUE))).toBe("cb0000000000000001");
  });

  it("strings: UTF-8, every header size, both encoder paths", () => {
    for (const s of [
      "",
      "a",
      "é",
      "€",
      "😀",
      "a".repeat(31),
      "a".repeat(32),
      "é".repeat(40),
      "😀".repeat(100),
      "x".repeat(70000),
    ]) {
      expect(roundTrip(s)).toBe(s);
    }
    // A multibyte string whose char count fits fixstr but whose byte count does not.
    expect(hex(encodeValue("€".repeat(11))).slice(0, 4)).toBe("d921");
    // The same string through the short (hand-written) and long (TextEncoder) paths.
    const long = `${"é😀€a".repeat(30)}`;
    expect(roundTrip(long)).toBe(long);
    expect(roundTrip("\ufeffbom")).toBe("\ufeffbom");
    expect(roundTrip(`\ufeff${"a".repeat(100)}`)).toBe(`\ufeff${"a".repeat(100)}`);
  });

  it("lone surrogates are a serialization error, on the short and long paths", () => {
    expect(encodeError("a\ud800b").message).toMatch(/lone surrogate/);
    expect(encodeError({ k: "\udc00" }).path).toBe("value.k");
    expect(encodeError(`${"a".repeat(100)}\ud800`).valueType).toBe("string");
    expect(encodeError("\ud800".padStart(100, "x")).message).toMatch(/lone surrogate/);
    // A proper pair is fine.
    expect(roundTrip("\ud83d\ude00")).toBe("😀");
  });

  it("bin: Uint8Array and Buffer encode as bin and decode as a fresh plain Uint8Array", () => {
    const b = new Uint8Array([1, 2, 3]);
    const out = roundTrip(b) as Uint8Array;
    expect(out.constructor).toBe(Uint8Array);
    expect([...out]).toEqual([1, 2, 3]);
    expect(hex(encodeValue(Buffer.from([1, 2, 3])))).toBe("c403010203");
    // Decoding from a Buffer does not alias it.
    const src = Buffer.from("c403010203", "hex");
    const got = decodeValue(src) as Uint8Array;
    src[2] = 0xff;
    expect(got[0]).toBe(1);
    expect(got.constructor).toBe(Uint8Array);
    // A view into a larger buffer encodes only its bytes.
    expect(hex(encodeValue(new Uint8Array([9, 1, 2, 9]).subarray(1, 3)))).toBe("c4020102");
  });

  it("other typed arrays and ArrayBuffer are errors that say what to do", () => {
    expect(encodeError(new Float64Array(2)).message).toMatch(/Float64Array.*NDArray/);
    expect(encodeError({ x: new Int32Array(1) }).path).toBe("value.x");
    expect(encodeError(new ArrayBuffer(4)).message).toMatch(/Uint8Array/);
    expect(encodeError(new DataView(new ArrayBuffer(4))).valueType).toBe("DataView");
  });

  it("arrays, including array16/array32 sizes", () => {
    expect(roundTrip([1, "a", [2, [3]], null])).toEqual([1, "a", [2, [3]], null]);
    const big = Array.from({ length: 70000 }, (_, i) => i);
    expect(roundTrip(big)).toEqual(big);
  });

  it("plain objects (own enumerable string keys) and null-prototype objects are maps", () => {
    const o = Object.create(null) as Record<string, unknown>;
    o["x"] = 1;
    expect(roundTrip(o)).toEqual({ x: 1 });
    const sym = Symbol("s");
    const withSymbol = { a: 1, [sym]: 2 };
    expect(roundTrip(withSymbol)).toEqual({ a: 1 });
    const hidden = { a: 1 };
    Object.defineProperty(hidden, "b", { value: 2, enumerable: false });
    expect(roundTrip(hidden)).toEqual({ a: 1 });
    const big = Object.fromEntries(Array.from({ length: 70000 }, (_, i) => [`k${i}`, i]));
    expect(roundTrip(big)).toEqual(big);
  });

  it("decoded maps with string keys are plain objects; __proto__ is an own key", () => {
    const o = decodeValue(fromHex("82a95f5f70726f746f5f5f81a6706f6c6c7574c3a161c0")) as Record<string, unknown>;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(["__proto__", "a"]);
    expect(Object.getOwnPropertyDescriptor(o, "__proto__")?.value).toEqual({ pollut: true });
    expect(({} as Record<string, unknown>)["pollut"]).toBeUndefined();
    expect((o as { pollut?: unknown }).pollut).toBeUndefined();
    // And it encodes back as the same key.
    expect(hex(encodeValue(o))).toBe("82a95f5f70726f746f5f5f81a6706f6c6c7574c3a161c0");
  });

  it("maps with any non-string key decode as Map, keeping every key and the order", () => {
    const m = decodeValue(fromHex("83a16101" + "02a162" + "c3c2")) as Map<unknown, unknown>;
    expect(m).toBeInstanceOf(Map);
    expect([...m]).toEqual([
      ["a", 1],
      [2, "b"],
      [true, false],
    ]);
    const back = new Map<unknown, unknown>([
      [1, "one"],
      [2n ** 60n, "big"],
      [new Uint8Array([1]), "bytes"],
      [null, "nil"],
    ]);
    expect(valuesEqual(roundTrip(back), back)).toBe(true);
    // A Map with only string keys arrives as a plain object.
    expect(roundTrip(new Map([["a", 1]]))).toEqual({ a: 1 });
  });

  it("Date ↔ timestamp ext, millisecond precision, canonical forms", () => {
    for (const ms of [
      0,
      1,
      999,
      1000,
      -1,
      -1000,
      -1001,
      1609459200123,
      2 ** 32 * 1000,
      2 ** 34 * 1000,
      -2208988800000,
      8.64e15,
      -8.64e15,
    ]) {
      expect((roundTrip(new Date(ms)) as Date).getTime()).toBe(ms);
    }
    expect(hex(encodeValue(new Date(0)))).toBe("d6ff00000000");
    expect(hex(encodeValue(new Date(1)))).toBe("d7ff003d090000000000");
    expect(hex(encodeValue(new Date(-1)))).toBe("c70cff3b8b87c0ffffffffffffffff");
    expect(encodeError(new Date(Number.NaN)).message).toMatch(/invalid Date/);
  });

  it("timestamps beyond the range of a Date are a protocol error", () => {
    expect(decodeError("c70cff000000007fffffffffffffff").message).toMatch(/range/);
  });

  it("Set ↔ set ext", () => {
    const s = new Set([1, "a", null, [1, 2]]);
    const out = roundTrip(s) as Set<unknown>;
    expect(out).toBeInstanceOf(Set);
    expect([...out]).toEqual([1, "a", null, [1, 2]]);
    expect(encodeError(new Set([() => 1])).path).toBe("value{set}");
  });

  it("NDArray ↔ ndarray ext", () => {
    const a = new NDArray("<f8", [2, 2], new Float64Array([1, 2, 3, 4]));
    const out = roundTrip(a) as NDArray;
    expect(out).toBeInstanceOf(NDArray);
    expect(out.data).toBeInstanceOf(Float64Array);
    expect([...(out.data as Float64Array)]).toEqual([1, 2, 3, 4]);
    expect(out.shape).toEqual([2, 2]);
    // A large one: the payload goes through ext32.
    const big = NDArray.from(new Float64Array(20000).map((_, i) => i));
    const back = roundTrip(big) as NDArray;
    expect(valuesEqual(back, big)).toBe(true);
  });

  it("decoded typed views are aligned even when the input is not", () => {
    const bytes = encodeValue(new NDArray("<f8", [1], new Float64Array([2.5])));
    for (let offset = 0; offset < 8; offset++) {
      const buf = new Uint8Array(bytes.length + offset);
      buf.set(bytes, offset);
      const a = decodeValue(buf.subarray(offset)) as NDArray;
      expect((a.data as Float64Array)[0]).toBe(2.5);
      expect(a.data.byteOffset % 8).toBe(0);
    }
  });
});

describe("unencodable values name the type and the path", () => {
  class Owner {
    name = "x";
  }
  it.each([
    [() => 1, "function", "value"],
    [Symbol("s"), "symbol", "value"],
    [new Owner(), "Owner", "value"],
    [new (class {})(), "object", "value"],
    [/re/, "RegExp", "value"],
    [new Error("e"), "Error", "value"],
    [Promise.resolve(1), "Promise", "value"],
    [new Number(1), "Number", "value"],
    [new WeakMap(), "WeakMap", "value"],
  ])("%s", (value, type, path) => {
    const e = encodeError(value);
    expect(e.valueType).toBe(type);
    expect(e.path).toBe(path);
    expect(e.message).toContain(`at ${path}`);
  });

  it("builds paths: identifiers dotted, other keys JSON-quoted, indices, sets, map keys", () => {
    expect(encodeError({ a: [1, { b: () => 1 }] }).path).toBe("value.a[1].b");
    expect(encodeError({ "a b": [Symbol()] }).path).toBe('value["a b"][0]');
    expect(encodeError({ "1x": new Owner() }).path).toBe('value["1x"]');
    expect(encodeError({ é: new Owner() }).path).toBe('value["é"]');
    expect(encodeError({ _ok: { $x: 1n << 70n } }).path).toBe('value._ok["$x"]');
    expect(encodeError(new Map([[1, () => 1]])).path).toBe("value<1>");
    expect(encodeError(new Map([[() => 1, 1]])).path).toBe("value<key>");
    expect(encodeError(new Map([[[1], () => 1]])).path).toBe("value<Array>");
    expect(encodeError({ s: new Set([[() => 1]]) }).path).toBe("value.s{set}[0]");
    expect(encodeError([new Owner()], "result").path).toBe("result[0]");
    expect(encodeError({ f() {} }).message).toBe("cannot encode a function (f) at value.f: functions cannot be sent");
  });

  it("class instances say which types can be sent", () => {
    expect(encodeError(new Owner()).message).toMatch(/instance of Owner.*plain objects, arrays, Map, Set, Date/);
  });
});

describe("nesting limit", () => {
  const nest = (n: number): unknown => {
    let v: unknown = [];
    for (let i = 1; i < n; i++) v = [v];
    return v;
  };

  it(`accepts ${MAX_NESTING} levels and refuses ${MAX_NESTING + 1}, both ways`, () => {
    expect(valuesEqual(roundTrip(nest(MAX_NESTING)), nest(MAX_NESTING))).toBe(true);
    const e = encodeError(nest(MAX_NESTING + 1));
    expect(e.valueType).toBe("nesting");
    expect(e.path.length).toBeLessThan(200);
    expect(decodeError(`${"91".repeat(MAX_NESTING)}90`).message).toMatch(/nesting deeper than 512/);
  });

  it("a circular structure is a serialization error, not a stack overflow", () => {
    const a: Record<string, unknown> = { x: 1 };
    a["self"] = a;
    expect(encodeError(a).message).toMatch(/circular/);
    const arr: unknown[] = [];
    arr.push(arr);
    expect(encodeError(arr).valueType).toBe("nesting");
  });

  it("decoding 100,000 nested arrays fails cleanly", () => {
    expect(decodeError(`${"91".repeat(100000)}c0`)).toBeInstanceOf(ProtocolError);
  });
});

describe("decoder strictness", () => {
  it.each([
    ["", /truncated/],
    ["c1", /reserved/],
    ["c0c0", /trailing/],
    ["a2c328", /UTF-8/],
    ["d40500", /unknown ext type 5/],
    ["ddffffffff", /truncated/],
    ["dfffffffff", /truncated/],
    ["c6ffffffff", /truncated/],
  ])("%s", (h, re) => {
    expect(decodeError(h).message).toMatch(re);
  });

  it("accepts input at an offset inside a larger buffer", () => {
    const buf = Buffer.from("ffff81a16101ffff", "hex");
    expect(decodeValue(buf.subarray(2, 6))).toEqual({ a: 1 });
  });

  it("caches map keys by content, never by a view of the caller's buffer", () => {
    for (let round = 0; round < 50; round++) {
      const buf = Buffer.from("81a36b657901", "hex"); // {"key": 1}
      expect(decodeValue(buf)).toEqual({ key: 1 });
      buf.write("xyz", 2, "latin1");
      expect(decodeValue(buf)).toEqual({ xyz: 1 });
      expect(decodeValue(Buffer.from("81a36b657902", "hex"))).toEqual({ key: 2 });
    }
  });

  it("rejects invalid UTF-8 in a cached short key", () => {
    expect(decodeError("81a2c32801").message).toMatch(/UTF-8/);
  });

  it("rejects a non-Uint8Array argument", () => {
    expect(() => decodeValue("c0" as never)).toThrow(UsageError);
  });
});

describe("encoder reuse", () => {
  it("is re-entrant (a getter that encodes while encoding)", () => {
    const inner = { a: 1 };
    const outer = {
      get x() {
        return encodeValue(inner);
      },
    };
    const out = decodeValue(encodeValue(outer)) as { x: Uint8Array };
    expect(decodeValue(out.x)).toEqual({ a: 1 });
  });

  it("returns independent buffers", () => {
    const a = encodeValue("a");
    const b = encodeValue("b");
    expect(hex(a)).toBe("a161");
    expect(hex(b)).toBe("a162");
    encodeValue("x".repeat(3_000_000));
    expect(hex(encodeValue([1]))).toBe("9101");
  });

  it("recovers after an error", () => {
    expect(() => encodeValue([1, 2, () => 3])).toThrow(SerializationError);
    expect(hex(encodeValue([1]))).toBe("9101");
  });
});

describe("string headers", () => {
  // Short strings are encoded by hand with room for a 1-byte header: every length and
  // character width around the fixstr/str8 boundary must give the canonical header.
  it("uses fixstr below 32 UTF-8 bytes and str8 from 32, for 1- to 4-byte characters", () => {
    for (const ch of ["a", "é", "✓", "😀"]) {
      for (let count = 0; count <= 40; count++) {
        const s = ch.repeat(count);
        const bytes = Buffer.from(s, "utf8");
        const enc = encodeValue(s);
        const header = bytes.length < 32 ? [0xa0 | bytes.length] : [0xd9, bytes.length];
        expect([...enc.subarray(0, header.length)], `${ch} × ${count}`).toEqual(header);
        expect(Buffer.from(enc.subarray(header.length)).equals(bytes)).toBe(true);
        expect(decodeValue(enc)).toBe(s);
      }
    }
  });
});
