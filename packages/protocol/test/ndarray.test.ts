import { UsageError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import { decodeValue, dtypeItemSize, encodeValue, NDArray } from "../src/index.js";

describe("NDArray", () => {
  it.each([
    ["<f8", Float64Array],
    ["<f4", Float32Array],
    ["|i1", Int8Array],
    ["<i2", Int16Array],
    ["<i4", Int32Array],
    ["<i8", BigInt64Array],
    ["|u1", Uint8Array],
    ["<u2", Uint16Array],
    ["<u4", Uint32Array],
    ["<u8", BigUint64Array],
    ["|b1", Uint8Array],
  ] as const)("%s is viewed as %s, also after a round trip", (dtype, Ctor) => {
    const a = new NDArray(dtype, [3], new Uint8Array(3 * Ctor.BYTES_PER_ELEMENT));
    expect(a.data).toBeInstanceOf(Ctor);
    const back = decodeValue(encodeValue(a)) as NDArray;
    expect(back.data).toBeInstanceOf(Ctor);
    expect(back.dtype).toBe(dtype);
  });

  it.each(["<c16", "<U5", "|S3", "<M8[ns]", "<m8[s]", "<f2", "|V8"])("%s stays raw bytes", (dtype) => {
    const size = dtypeItemSize(dtype) as number;
    const a = new NDArray(dtype, [2], new Uint8Array(2 * size));
    expect(a.data.constructor).toBe(Uint8Array);
    expect((decodeValue(encodeValue(a)) as NDArray).data.constructor).toBe(Uint8Array);
  });

  it("item sizes follow numpy (U counts 4 bytes a character)", () => {
    expect(dtypeItemSize("<U5")).toBe(20);
    expect(dtypeItemSize("<c16")).toBe(16);
    expect(dtypeItemSize(">f8")).toMatch(/big-endian/);
    expect(dtypeItemSize("|O")).toMatch(/object/);
    expect(dtypeItemSize("<f8[s]")).toMatch(/unit/);
    expect(dtypeItemSize("float64")).toMatch(/not a numpy dtype string/);
  });

  it("re-views data given as another typed array, in place when aligned", () => {
    const raw = new Uint8Array(16);
    const a = new NDArray("<f8", [2], raw);
    expect(a.data).toBeInstanceOf(Float64Array);
    expect(a.data.buffer).toBe(raw.buffer);
    const unaligned = new Uint8Array(17).subarray(1);
    const b = new NDArray("<f8", [2], unaligned);
    expect(b.data.byteOffset % 8).toBe(0);
    const dv = new NDArray("<i4", [1], new DataView(new ArrayBuffer(4)));
    expect(dv.data).toBeInstanceOf(Int32Array);
  });

  it("validates dtype, shape and byte length", () => {
    expect(() => new NDArray("<f8", [3], new Float64Array(2))).toThrow(/needs 24/);
    expect(() => new NDArray(">f8", [1], new Float64Array(1))).toThrow(UsageError);
    expect(() => new NDArray("<f8", [-1], new Float64Array(0))).toThrow(/shape\[0\]/);
    expect(() => new NDArray("<f8", [1.5], new Float64Array(1))).toThrow(UsageError);
    expect(() => new NDArray("<f8", [1], [1] as never)).toThrow(UsageError);
  });

  it("NDArray.from infers the dtype; size and bytes", () => {
    const a = NDArray.from(new Int16Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(a.dtype).toBe("<i2");
    expect(a.size).toBe(6);
    expect(a.bytes.byteLength).toBe(12);
    expect(NDArray.from(new Float64Array(3)).shape).toEqual([3]);
    expect(() => NDArray.from(new DataView(new ArrayBuffer(1)))).toThrow(UsageError);
  });

  it("0-d and empty arrays", () => {
    const z = decodeValue(encodeValue(new NDArray("<f8", [], new Float64Array([3.5])))) as NDArray;
    expect(z.shape).toEqual([]);
    expect((z.data as Float64Array)[0]).toBe(3.5);
    const e = decodeValue(encodeValue(new NDArray("<f8", [0, 4], new Float64Array(0)))) as NDArray;
    expect(e.shape).toEqual([0, 4]);
    expect(e.data.byteLength).toBe(0);
  });

  it("isNDArray recognises arrays from another copy of the package by brand", () => {
    const a = new NDArray("|u1", [1], new Uint8Array(1));
    const foreign = Object.create(null);
    for (const s of Object.getOwnPropertySymbols(a)) foreign[s] = true;
    expect(NDArray.isNDArray(foreign)).toBe(true);
    expect(NDArray.isNDArray({ dtype: "|u1" })).toBe(false);
  });
});
