/**
 * Tagged JSON (docs/protocol.md §6): protocol values as JSON, for the CLI's input and output
 * and for the shared test vectors. Values JSON cannot carry become single-key tag objects:
 *
 * | value | tagged JSON |
 * |---|---|
 * | `bigint` | `{"$bigint": "123"}` |
 * | `Uint8Array` | `{"$bytes": "<base64>"}` |
 * | `Date` | `{"$date": "2024-01-02T03:04:05.678Z"}` |
 * | NaN, ±Infinity, −0, integral numbers beyond ±(2^53−1) | `{"$float": "NaN"}`, `{"$float": "-0.0"}`, `{"$float": "1e+300"}` |
 * | `Map` | `{"$map": [[key, value], …]}` |
 * | `Set` | `{"$set": […]}` |
 * | `NDArray` | `{"$ndarray": {"dtype": "<f8", "shape": [2], "data": "<base64>"}}` |
 * | an object whose only key is a tag name | `{"$object": {…}}` |
 */
import { UsageError } from "@sremote/core";
import { NDArray } from "./ndarray.js";
import { keySegment, MAX_NESTING, SerializationError } from "./values.js";

/** Every tag name; a plain object whose only key is one of these is wrapped in `$object`. */
export const TAG_NAMES: ReadonlySet<string> = new Set([
  "$bigint",
  "$bytes",
  "$date",
  "$float",
  "$map",
  "$set",
  "$ndarray",
  "$object",
]);

class Failure {
  readonly segments: string[] = [];
  constructor(
    readonly what: string,
    readonly valueType: string,
  ) {}
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === "string" && name !== "" ? name : "object";
}

function withSegment<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Failure) e.segments.push(segment);
    throw e;
  }
}

function path(root: string, f: Failure): string {
  return root + [...f.segments].reverse().join("");
}

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

export function bytesToBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function base64ToBytes(s: unknown): Uint8Array {
  if (typeof s !== "string" || !BASE64_RE.test(s))
    throw new Failure("expected base64 text (standard alphabet, padded)", typeName(s));
  const buf = Buffer.from(s, "base64");
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Formats a float for `$float`: NaN, Infinity, -Infinity, -0.0, or JavaScript's shortest form. */
function floatText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (Object.is(v, -0)) return "-0.0";
  return String(v);
}

const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseFloatText(s: unknown): number {
  if (s === "NaN") return Number.NaN;
  if (s === "Infinity") return Number.POSITIVE_INFINITY;
  if (s === "-Infinity") return Number.NEGATIVE_INFINITY;
  if (typeof s !== "string" || !FLOAT_RE.test(s)) {
    throw new Failure(`expected a float as text ("1.5", "-0.0", "1e300", "NaN", "Infinity", "-Infinity")`, typeName(s));
  }
  return Number(s);
}

const DATE_RE =
  /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})?$/;

/**
 * Parses an ISO 8601 date-time (`2024-01-02T03:04:05.123456789Z`, `…+02:00`; no zone = UTC).
 * Fractions beyond milliseconds are truncated, as the decoder truncates timestamps.
 */
export function parseIsoDate(text: string): Date | undefined {
  const m = DATE_RE.exec(text);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = frac === undefined ? 0 : Number(frac.padEnd(3, "0").slice(0, 3));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  if (date.getUTCDate() !== day) return undefined;
  date.setUTCHours(hour, minute, second, ms);
  if (zone !== undefined && zone !== "Z" && zone !== "z") {
    const sign = zone.startsWith("-") ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2));
    date.setTime(date.getTime() - sign * offsetMin * 60_000);
  }
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function toT(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "undefined":
      return null;
    case "number":
      if (Number.isFinite(value) && !Object.is(value, -0)) {
        if (!Number.isInteger(value) || Number.isSafeInteger(value)) return value;
      }
      return { $float: floatText(value) };
    case "bigint":
      return { $bigint: value.toString() };
    case "object":
      break;
    default:
      throw new Failure(`a ${typeof value}: it has no JSON form`, typeof value);
  }
  if (value === null) return null;
  if (depth >= MAX_NESTING) throw new Failure(`a value nested deeper than ${MAX_NESTING} levels`, "nesting");
  if (Array.isArray(value)) {
    return value.map((v, i) => withSegment(`[${i}]`, () => toT(v, depth + 1)));
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    const out: Record<string, unknown> = {};
    for (const k of keys)
      setOwn(
        out,
        k,
        withSegment(keySegment(k), () => toT(obj[k], depth + 1)),
      );
    return keys.length === 1 && TAG_NAMES.has(keys[0]!) ? { $object: out } : out;
  }
  if (value instanceof Uint8Array) return { $bytes: bytesToBase64(value) };
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new Failure("an invalid Date", "Date");
    return { $date: value.toISOString() };
  }
  if (value instanceof Map) {
    const pairs: unknown[] = [];
    let i = 0;
    for (const [k, v] of value) {
      pairs.push(withSegment(`[${i}]`, () => [toT(k, depth + 1), toT(v, depth + 1)]));
      i++;
    }
    return { $map: pairs };
  }
  if (value instanceof Set) {
    return { $set: [...value].map((v) => withSegment("{set}", () => toT(v, depth + 1))) };
  }
  if (NDArray.isNDArray(value)) {
    const d = value.data;
    return {
      $ndarray: {
        dtype: value.dtype,
        shape: [...value.shape],
        data: bytesToBase64(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)),
      },
    };
  }
  const name = typeName(value);
  throw new Failure(
    ArrayBuffer.isView(value)
      ? `a ${name}: wrap typed arrays other than Uint8Array in an NDArray`
      : `an instance of ${name}: only plain objects, arrays, Map, Set, Date, Uint8Array and NDArray have a tagged JSON form`,
    name,
  );
}

/**
 * A protocol value → tagged JSON (plain JSON data: pass it to `JSON.stringify`).
 * @throws SerializationError (UsageError) naming the path of a value with no protocol form.
 */
export function toTaggedJson(value: unknown): unknown {
  try {
    return toT(value, 0);
  } catch (e) {
    if (e instanceof Failure) throw new SerializationError(e.what, e.valueType, path("value", e));
    throw e;
  }
}

function expectArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Failure(`expected ${what}`, typeName(v));
  return v;
}

function fromT(json: unknown, depth: number): unknown {
  switch (typeof json) {
    case "string":
    case "boolean":
    case "number":
      return json;
    case "object":
      break;
    default:
      throw new Failure(`a ${typeof json}: not JSON data`, typeof json);
  }
  if (json === null) return null;
  if (depth >= MAX_NESTING) throw new Failure(`JSON nested deeper than ${MAX_NESTING} levels`, "nesting");
  if (Array.isArray(json)) return json.map((v, i) => withSegment(`[${i}]`, () => fromT(v, depth + 1)));
  const proto = Object.getPrototypeOf(json);
  if (proto !== Object.prototype && proto !== null) {
    throw new Failure(`an instance of ${typeName(json)}: not JSON data`, typeName(json));
  }
  const obj = json as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1 && TAG_NAMES.has(keys[0]!)) {
    const tag = keys[0]!;
    return withSegment(keySegment(tag), () => fromTag(tag, obj[tag], depth));
  }
  return literalObject(obj, keys, depth);
}

function literalObject(obj: Record<string, unknown>, keys: string[], depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys)
    setOwn(
      out,
      k,
      withSegment(keySegment(k), () => fromT(obj[k], depth + 1)),
    );
  return out;
}

function fromTag(tag: string, body: unknown, depth: number): unknown {
  switch (tag) {
    case "$bigint":
      if (typeof body !== "string" || !/^-?\d+$/.test(body))
        throw new Failure("expected a decimal integer as text", typeName(body));
      return BigInt(body);
    case "$bytes":
      return base64ToBytes(body);
    case "$date": {
      const d = typeof body === "string" ? parseIsoDate(body) : undefined;
      if (d === undefined)
        throw new Failure("expected an ISO 8601 date-time such as 2024-01-02T03:04:05.678Z", typeName(body));
      return d;
    }
    case "$float":
      return parseFloatText(body);
    case "$map": {
      const pairs = expectArray(body, "an array of [key, value] pairs");
      const m = new Map<unknown, unknown>();
      pairs.forEach((pair, i) => {
        withSegment(`[${i}]`, () => {
          if (!Array.isArray(pair) || pair.length !== 2) {
            throw new Failure("expected a [key, value] pair", typeName(pair));
          }
          m.set(fromT(pair[0], depth + 1), fromT(pair[1], depth + 1));
        });
      });
      return m;
    }
    case "$set":
      return new Set(expectArray(body, "an array").map((v) => withSegment("{set}", () => fromT(v, depth + 1))));
    case "$ndarray": {
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new Failure('expected an object {"dtype", "shape", "data"}', typeName(body));
      }
      const { dtype, shape, data } = body as Record<string, unknown>;
      if (typeof dtype !== "string") throw new Failure("expected a dtype string", typeName(dtype));
      const dims = expectArray(shape, "a shape array");
      const bytes = withSegment(".data", () => base64ToBytes(data));
      try {
        return new NDArray(dtype, dims as number[], bytes);
      } catch (e) {
        throw new Failure(e instanceof Error ? e.message : String(e), "NDArray");
      }
    }
    case "$object": {
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new Failure("expected an object", typeName(body));
      }
      const inner = body as Record<string, unknown>;
      return literalObject(inner, Object.keys(inner), depth + 1);
    }
    default:
      throw new Failure(`unknown tag ${tag}`, "object");
  }
}

/**
 * Tagged JSON → a protocol value (`JSON.parse` output in, values for `encodeValue` out).
 * @throws UsageError (`INVALID_ARGUMENT`) naming the path of a malformed tag.
 */
export function fromTaggedJson(json: unknown): unknown {
  try {
    return fromT(json, 0);
  } catch (e) {
    if (e instanceof Failure) {
      throw new UsageError(`invalid tagged JSON at ${path("value", e)}: ${e.what}`);
    }
    throw e;
  }
}
