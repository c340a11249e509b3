/**
 * Structural equality of protocol values, as the test vectors mean it: numbers by `Object.is`
 * (NaN equals NaN, −0 differs from 0), `bigint` by value and never equal to a `number`, bytes by
 * content, dates by instant, plain objects by key set (JavaScript cannot keep the order of
 * integer-like keys), `Map` and `Set` entry by entry in insertion order, `NDArray` by dtype,
 * shape, view type and bytes. `undefined` equals `null` (both are nil).
 */
import { NDArray } from "./ndarray.js";

function isPlain(v: object): boolean {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function bytesEqual(a: ArrayBufferView, b: ArrayBufferView): boolean {
  if (a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === undefined) a = null;
  if (b === undefined) b = null;
  if (typeof a !== typeof b) return false;
  if (typeof a !== "object" || a === null || b === null) return Object.is(a, b);
  const y = b as object;
  if (Array.isArray(a)) {
    if (!Array.isArray(y) || a.length !== y.length) return false;
    return a.every((v, i) => valuesEqual(v, y[i]));
  }
  if (a instanceof Uint8Array) return y instanceof Uint8Array && bytesEqual(a, y);
  if (a instanceof Date) return y instanceof Date && Object.is(a.getTime(), y.getTime());
  if (a instanceof Map) {
    if (!(y instanceof Map) || a.size !== y.size) return false;
    const ya = [...y];
    return [...a].every(([k, v], i) => valuesEqual(k, ya[i]![0]) && valuesEqual(v, ya[i]![1]));
  }
  if (a instanceof Set) {
    if (!(y instanceof Set) || a.size !== y.size) return false;
    const ya = [...y];
    return [...a].every((v, i) => valuesEqual(v, ya[i]));
  }
  if (NDArray.isNDArray(a)) {
    return (
      NDArray.isNDArray(y) &&
      a.dtype === y.dtype &&
      valuesEqual([...a.shape], [...y.shape]) &&
      a.data.constructor === y.data.constructor &&
      bytesEqual(a.data, y.data)
    );
  }
  if (isPlain(a)) {
    if (!isPlain(y)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(y);
    if (ka.length !== kb.length) return false;
    const ra = a as Record<string, unknown>;
    const rb = y as Record<string, unknown>;
    return ka.every((k) => Object.hasOwn(rb, k) && valuesEqual(ra[k], rb[k]));
  }
  return false;
}
