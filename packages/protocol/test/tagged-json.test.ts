import { UsageError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import { fromTaggedJson, NDArray, parseIsoDate, SerializationError, toTaggedJson, valuesEqual } from "../src/index.js";

const viaText = (v: unknown): unknown => fromTaggedJson(JSON.parse(JSON.stringify(toTaggedJson(v))));

describe("toTaggedJson / fromTaggedJson", () => {
  it("plain JSON values pass through", () => {
    const v = { a: [1, 2.5, "x", true, null], b: { c: "d" } };
    expect(toTaggedJson(v)).toEqual(v);
    expect(fromTaggedJson(v)).toEqual(v);
  });

  it.each([
    ["bigint", 2n ** 64n - 1n, { $bigint: "18446744073709551615" }],
    ["small bigint", 5n, { $bigint: "5" }],
    ["bytes", new Uint8Array([1, 2, 3]), { $bytes: "AQID" }],
    ["date", new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)), { $date: "2024-01-02T03:04:05.678Z" }],
    ["NaN", Number.NaN, { $float: "NaN" }],
    ["Infinity", Number.POSITIVE_INFINITY, { $float: "Infinity" }],
    ["-Infinity", Number.NEGATIVE_INFINITY, { $float: "-Infinity" }],
    ["-0", -0, { $float: "-0.0" }],
    ["2^60 (a float)", 2 ** 60, { $float: "1152921504606847000" }],
    [
      "map",
      new Map<unknown, unknown>([
        [1, "a"],
        ["b", 2],
      ]),
      {
        $map: [
          [1, "a"],
          ["b", 2],
        ],
      },
    ],
    ["set", new Set([1, "x"]), { $set: [1, "x"] }],
    [
      "ndarray",
      new NDArray("<i4", [2], new Int32Array([1, -1])),
      { $ndarray: { dtype: "<i4", shape: [2], data: "AQAAAP////8=" } },
    ],
    ["tag-like object", { $bytes: "x" }, { $object: { $bytes: "x" } }],
    ["$object-like object", { $object: 1 }, { $object: { $object: 1 } }],
    ["other $ key", { $other: 1 }, { $other: 1 }],
    ["two $ keys", { $bytes: "x", $date: "y" }, { $bytes: "x", $date: "y" }],
  ])("%s", (_name, value, json) => {
    expect(toTaggedJson(value)).toEqual(json);
    expect(valuesEqual(fromTaggedJson(json), value)).toBe(true);
    expect(valuesEqual(viaText(value), value)).toBe(true);
  });

  it("undefined becomes null", () => {
    expect(toTaggedJson({ a: undefined })).toEqual({ a: null });
  });

  it("keeps __proto__ as an ordinary key both ways", () => {
    const parsed = JSON.parse('{"__proto__": {"$bytes": "AQ=="}}');
    const v = fromTaggedJson(parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(["__proto__"]);
    expect(Object.getOwnPropertyDescriptor(v, "__proto__")?.value).toEqual(new Uint8Array([1]));
    expect(JSON.stringify(toTaggedJson(v))).toBe('{"__proto__":{"$bytes":"AQ=="}}');
  });

  it("$object only shields its top level", () => {
    expect(
      valuesEqual(fromTaggedJson({ $object: { $bytes: { $bytes: "AQ==" } } }), { $bytes: new Uint8Array([1]) }),
    ).toBe(true);
  });

  it("$float accepts decimal literals", () => {
    expect(fromTaggedJson({ $float: "1.0" })).toBe(1);
    expect(fromTaggedJson({ $float: "1e300" })).toBe(1e300);
    expect(Object.is(fromTaggedJson({ $float: "-0.0" }), -0)).toBe(true);
  });

  it("$date accepts offsets, fractions up to nanoseconds (truncated) and no zone (UTC)", () => {
    expect((fromTaggedJson({ $date: "2024-01-02T03:04:05+02:00" }) as Date).toISOString()).toBe(
      "2024-01-02T01:04:05.000Z",
    );
    expect((fromTaggedJson({ $date: "2024-01-02T03:04:05.123456789Z" }) as Date).toISOString()).toBe(
      "2024-01-02T03:04:05.123Z",
    );
    expect((fromTaggedJson({ $date: "2024-01-02T03:04:05" }) as Date).toISOString()).toBe("2024-01-02T03:04:05.000Z");
    expect((fromTaggedJson({ $date: "0001-01-01T00:00:00Z" }) as Date).getUTCFullYear()).toBe(1);
    expect((fromTaggedJson({ $date: "1969-12-31T23:59:59.9999Z" }) as Date).getTime()).toBe(-1);
    expect(parseIsoDate("2024-02-30T00:00:00Z")).toBeUndefined();
    expect(parseIsoDate("+010000-01-01T00:00:00.000Z")?.getUTCFullYear()).toBe(10000);
  });

  it.each([
    [{ $bigint: 5 }, 'value["$bigint"]'],
    [{ $bigint: "1.5" }, 'value["$bigint"]'],
    [{ $bytes: "AQ=" }, 'value["$bytes"]'],
    [{ $bytes: "AQ-_" }, 'value["$bytes"]'],
    [{ $date: "yesterday" }, 'value["$date"]'],
    [{ $float: "fast" }, 'value["$float"]'],
    [{ $map: [[1]] }, 'value["$map"][0]'],
    [{ $map: {} }, 'value["$map"]'],
    [{ $set: 1 }, 'value["$set"]'],
    [{ $ndarray: { dtype: "<f8", shape: [2], data: "AQ==" } }, 'value["$ndarray"]'],
    [{ $ndarray: { dtype: ">f8", shape: [0], data: "" } }, 'value["$ndarray"]'],
    [{ $object: [1] }, 'value["$object"]'],
    [{ a: [{ $bytes: 1 }] }, 'value.a[0]["$bytes"]'],
  ])("rejects %j naming %s", (json, path) => {
    let err: unknown;
    try {
      fromTaggedJson(json);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain(`at ${path}`);
  });

  it("rejects values with no tagged form, naming the path", () => {
    expect(() => toTaggedJson({ a: [() => 1] })).toThrow(SerializationError);
    expect(() => toTaggedJson({ a: [() => 1] })).toThrow(/at value\.a\[0\]/);
    expect(() => toTaggedJson(new Float64Array(1))).toThrow(/NDArray/);
    expect(() => toTaggedJson(new Date(Number.NaN))).toThrow(/invalid Date/);
    expect(() => fromTaggedJson(new Date() as never)).toThrow(UsageError);
    const cyc: Record<string, unknown> = {};
    cyc["c"] = cyc;
    expect(() => toTaggedJson(cyc)).toThrow(/nested deeper/);
  });
});
