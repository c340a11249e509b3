/**
 * The value codec's decoder: MessagePack bytes → TypeScript values, validated exactly as
 * docs/protocol.md §1 says (values.ts says why the codec is hand-written).
 */
import { ProtocolError, UsageError } from "@sremote/core";
import { copyBytes } from "./bytes.js";
import { checkNDArrayLayout, NDArray, viewFor } from "./ndarray.js";
import { EXT_NDARRAY, EXT_SET, EXT_TIMESTAMP, MAX_NESTING, TWO_32 } from "./value-format.js";

const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Low-level decoder over one buffer. */
export class Decoder {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  end: number;
  depth = 0;
  /**
   * Bins of this many bytes or more are returned as views of `bytes` instead of copies: for a
   * caller that owns `bytes` and hands it over (a frame assembled in its own buffer).
   */
  viewBinsFrom = Number.POSITIVE_INFINITY;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  fail(message: string): never {
    throw new ProtocolError(`invalid MessagePack at byte ${this.pos}: ${message}`);
  }

  private need(n: number): void {
    if (this.pos + n > this.end) {
      throw new ProtocolError(
        `invalid MessagePack: truncated data (need ${n} more byte${n === 1 ? "" : "s"} at byte ${this.pos}, have ${this.end - this.pos})`,
      );
    }
  }

  /** Decodes exactly one value spanning the whole range. */
  decodeAll(): unknown {
    if (this.pos >= this.end) this.need(1);
    const v = this.decode();
    if (this.pos !== this.end) this.fail(`${this.end - this.pos} trailing byte(s) after the value`);
    return v;
  }

  decode(): unknown {
    this.need(1);
    const b = this.bytes[this.pos++]!;
    if (b < 0x80) return b;
    if (b < 0x90) return this.readMap(b & 0x0f);
    if (b < 0xa0) return this.readArray(b & 0x0f);
    if (b < 0xc0) return this.readStr(b & 0x1f);
    if (b >= 0xe0) return b - 0x100;
    const view = this.view;
    let n: number;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        this.need(1);
        return this.readBin(this.bytes[this.pos++]!);
      case 0xc5:
        this.need(2);
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.readBin(n);
      case 0xc6:
        this.need(4);
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.readBin(n);
      case 0xc7:
        this.need(1);
        return this.readExt(this.bytes[this.pos++]!);
      case 0xc8:
        this.need(2);
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.readExt(n);
      case 0xc9:
        this.need(4);
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.readExt(n);
      case 0xca:
        this.need(4);
        this.pos += 4;
        return view.getFloat32(this.pos - 4);
      case 0xcb:
        this.need(8);
        this.pos += 8;
        return view.getFloat64(this.pos - 8);
      case 0xcc:
        this.need(1);
        return this.bytes[this.pos++]!;
      case 0xcd:
        this.need(2);
        this.pos += 2;
        return view.getUint16(this.pos - 2);
      case 0xce:
        this.need(4);
        this.pos += 4;
        return view.getUint32(this.pos - 4);
      case 0xcf: {
        this.need(8);
        const hi = view.getUint32(this.pos);
        const lo = view.getUint32(this.pos + 4);
        this.pos += 8;
        return hi < 0x200000 ? hi * TWO_32 + lo : view.getBigUint64(this.pos - 8);
      }
      case 0xd0:
        this.need(1);
        this.pos += 1;
        return view.getInt8(this.pos - 1);
      case 0xd1:
        this.need(2);
        this.pos += 2;
        return view.getInt16(this.pos - 2);
      case 0xd2:
        this.need(4);
        this.pos += 4;
        return view.getInt32(this.pos - 4);
      case 0xd3: {
        this.need(8);
        const hi = view.getInt32(this.pos);
        const lo = view.getUint32(this.pos + 4);
        this.pos += 8;
        // Safe when -(2^53 - 1) <= value <= 2^53 - 1.
        if (hi >= -0x200000 && hi < 0x200000 && !(hi === -0x200000 && lo === 0)) return hi * TWO_32 + lo;
        return view.getBigInt64(this.pos - 8);
      }
      case 0xd4:
        return this.readExt(1);
      case 0xd5:
        return this.readExt(2);
      case 0xd6:
        return this.readExt(4);
      case 0xd7:
        return this.readExt(8);
      case 0xd8:
        return this.readExt(16);
      case 0xd9:
        this.need(1);
        return this.readStr(this.bytes[this.pos++]!);
      case 0xda:
        this.need(2);
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.readStr(n);
      case 0xdb:
        this.need(4);
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.readStr(n);
      case 0xdc:
        this.need(2);
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.readArray(n);
      case 0xdd:
        this.need(4);
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.readArray(n);
      case 0xde:
        this.need(2);
        n = view.getUint16(this.pos);
        this.pos += 2;
        return this.readMap(n);
      case 0xdf:
        this.need(4);
        n = view.getUint32(this.pos);
        this.pos += 4;
        return this.readMap(n);
      default:
        this.pos--;
        return this.fail(`byte 0x${b.toString(16)} is never used (reserved)`);
    }
  }

  private enter(): void {
    if (++this.depth > MAX_NESTING) {
      this.fail(`nesting deeper than ${MAX_NESTING} levels`);
    }
  }

  private readStr(n: number): string {
    this.need(n);
    const start = this.pos;
    this.pos += n;
    if (n < 48) {
      const s = utf8Short(this.bytes, start, n);
      if (s === null) {
        this.pos = start;
        this.fail("invalid UTF-8 in a string");
      }
      return s;
    }
    try {
      return textDecoder.decode(this.bytes.subarray(start, start + n));
    } catch {
      this.pos = start;
      return this.fail("invalid UTF-8 in a string");
    }
  }

  private readBin(n: number): Uint8Array {
    this.need(n);
    this.pos += n;
    if (n >= this.viewBinsFrom) {
      return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.pos - n, n);
    }
    // A copy, as a plain Uint8Array even when the input is a Buffer (whose slice() shares memory).
    return copyBytes(this.bytes.subarray(this.pos - n, this.pos));
  }

  private readArray(n: number): unknown[] {
    this.enter();
    // Each element takes at least one byte: reject absurd lengths before allocating.
    if (n > this.end - this.pos) this.need(n);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = this.decode();
    this.depth--;
    return out;
  }

  private readMap(n: number): Record<string, unknown> | Map<unknown, unknown> {
    this.enter();
    if (2 * n > this.end - this.pos) this.need(2 * n);
    const start = this.pos;
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const b = this.bytes[this.pos]!;
      // Keys that are not strings make the whole map a Map: start over.
      if (!((b >= 0xa0 && b < 0xc0) || b === 0xd9 || b === 0xda || b === 0xdb)) {
        this.pos = start;
        return this.readMapAsMap(n);
      }
      let key: string;
      if (b >= 0xa0 && b <= 0xb0) {
        // Short keys repeat a lot (10,000 dicts with the same 4 keys): cache their strings.
        const n = b & 0x1f;
        this.need(1 + n);
        key = cachedKey(this.bytes, this.pos + 1, n) ?? this.fail("invalid UTF-8 in a string");
        this.pos += 1 + n;
      } else {
        key = this.decode() as string;
      }
      const value = this.decode();
      if (key === "__proto__") {
        Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
      } else {
        obj[key] = value;
      }
    }
    this.depth--;
    return obj;
  }

  private readMapAsMap(n: number): Map<unknown, unknown> {
    const m = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) {
      const key = this.decode();
      m.set(key, this.decode());
    }
    this.depth--;
    return m;
  }

  private readExt(n: number): unknown {
    this.need(1 + n);
    const type = this.view.getInt8(this.pos);
    const start = this.pos + 1;
    const end = start + n;
    switch (type) {
      case EXT_TIMESTAMP:
        this.pos = end;
        return this.readTimestamp(start, n);
      case EXT_SET:
        return this.within(start, end, () => this.readSet());
      case EXT_NDARRAY:
        return this.within(start, end, () => this.readNDArray());
      default:
        return this.fail(`unknown ext type ${type}`);
    }
  }

  /** Decodes an ext payload in [start, end): it must be used up exactly. */
  private within<T>(start: number, end: number, fn: () => T): T {
    const outerEnd = this.end;
    this.pos = start;
    this.end = end;
    const v = fn();
    if (this.pos !== end) this.fail(`${end - this.pos} trailing byte(s) in an ext payload`);
    this.end = outerEnd;
    return v;
  }

  private readTimestamp(start: number, n: number): Date {
    const view = this.view;
    let sec: number;
    let ns: number;
    if (n === 4) {
      sec = view.getUint32(start);
      ns = 0;
    } else if (n === 8) {
      const hi = view.getUint32(start);
      ns = hi >>> 2;
      sec = (hi & 3) * TWO_32 + view.getUint32(start + 4);
    } else if (n === 12) {
      ns = view.getUint32(start);
      const big = view.getBigInt64(start + 4);
      if (big > 10n ** 15n || big < -(10n ** 15n)) this.fail("timestamp outside the range of a JavaScript Date");
      sec = Number(big);
    } else {
      return this.fail(`timestamp ext with ${n} bytes (must be 4, 8 or 12)`);
    }
    if (ns > 999_999_999) this.fail(`timestamp nanoseconds ${ns} > 999999999`);
    const ms = sec * 1000 + Math.floor(ns / 1e6);
    const d = new Date(ms);
    if (Number.isNaN(d.getTime())) this.fail("timestamp outside the range of a JavaScript Date");
    return d;
  }

  private readSet(): Set<unknown> {
    const b = this.pos < this.end ? this.bytes[this.pos]! : -1;
    if (!((b >= 0x90 && b < 0xa0) || b === 0xdc || b === 0xdd)) this.fail("set ext payload must be an array");
    // The set and its payload array are one nesting level.
    const elements = this.decode() as unknown[];
    return new Set(elements);
  }

  private readNDArray(): NDArray {
    const b = this.pos < this.end ? this.bytes[this.pos]! : -1;
    if (!((b >= 0x90 && b < 0xa0) || b === 0xdc || b === 0xdd)) this.fail("ndarray ext payload must be an array");
    // The payload's own array is not a nesting level of the value.
    const depth = this.depth;
    this.depth = 0;
    const payload = this.decode() as unknown[];
    this.depth = depth;
    if (payload.length !== 4)
      this.fail(`ndarray ext payload must be [dtype, shape, "C", data], got ${payload.length} items`);
    const [dtype, shape, order, data] = payload;
    if (typeof dtype !== "string") this.fail("ndarray dtype must be a string");
    if (!Array.isArray(shape)) this.fail("ndarray shape must be an array");
    if (order !== "C") this.fail(`ndarray order must be "C" (got ${JSON.stringify(order)})`);
    if (!(data instanceof Uint8Array)) this.fail("ndarray data must be bin");
    const problem = checkNDArrayLayout(dtype, shape as number[], data.byteLength);
    if (problem !== undefined) this.fail(`invalid ndarray: ${problem}`);
    return new NDArray(dtype, shape as number[], viewFor(dtype, data));
  }
}

const KEY_CACHE_SIZE = 4096;
const keyCacheBytes: (Uint8Array | undefined)[] = new Array(KEY_CACHE_SIZE);
const keyCacheStrings: string[] = new Array(KEY_CACHE_SIZE);

/** Decodes a short map key through a small direct-mapped cache; `null` for invalid UTF-8. */
function cachedKey(bytes: Uint8Array, start: number, n: number): string | null {
  let h = n;
  for (let i = 0; i < n; i++) h = (Math.imul(h, 31) + bytes[start + i]!) | 0;
  h &= KEY_CACHE_SIZE - 1;
  const hit = keyCacheBytes[h];
  if (hit !== undefined && hit.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (hit[i] !== bytes[start + i]) {
        same = false;
        break;
      }
    }
    if (same) return keyCacheStrings[h]!;
  }
  const s = utf8Short(bytes, start, n);
  if (s !== null) {
    keyCacheBytes[h] = new Uint8Array(bytes.subarray(start, start + n)); // a copy, even of a Buffer
    keyCacheStrings[h] = s;
  }
  return s;
}

/**
 * Strict UTF-8 → string for short byte runs (no overlongs, no surrogates, ≤ U+10FFFF).
 * `null` when the bytes are not valid UTF-8.
 */
function utf8Short(bytes: Uint8Array, start: number, n: number): string | null {
  const end = start + n;
  let i = start;
  // ASCII fast path.
  while (i < end && bytes[i]! < 0x80) i++;
  if (i === end) {
    if (n <= 16) {
      let s = "";
      for (let j = start; j < end; j++) s += String.fromCharCode(bytes[j]!);
      return s;
    }
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  }
  const units: number[] = [];
  for (let j = start; j < i; j++) units.push(bytes[j]!);
  while (i < end) {
    const b0 = bytes[i++]!;
    if (b0 < 0x80) {
      units.push(b0);
    } else if (b0 >= 0xc2 && b0 < 0xe0) {
      if (i >= end) return null;
      const b1 = bytes[i++]!;
      if ((b1 & 0xc0) !== 0x80) return null;
      units.push(((b0 & 0x1f) << 6) | (b1 & 0x3f));
    } else if (b0 >= 0xe0 && b0 < 0xf0) {
      if (i + 1 >= end) return null;
      const b1 = bytes[i++]!;
      const b2 = bytes[i++]!;
      if ((b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80) return null;
      const cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f);
      if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return null;
      units.push(cp);
    } else if (b0 >= 0xf0 && b0 < 0xf5) {
      if (i + 2 >= end) return null;
      const b1 = bytes[i++]!;
      const b2 = bytes[i++]!;
      const b3 = bytes[i++]!;
      if ((b1 & 0xc0) !== 0x80 || (b2 & 0xc0) !== 0x80 || (b3 & 0xc0) !== 0x80) return null;
      const cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f);
      if (cp < 0x10000 || cp > 0x10ffff) return null;
      const c = cp - 0x10000;
      units.push(0xd800 | (c >> 10), 0xdc00 | (c & 0x3ff));
    } else {
      return null;
    }
  }
  return String.fromCharCode.apply(null, units);
}

/**
 * Decodes one MessagePack value (the whole buffer; trailing bytes are an error), by the rules of
 * docs/protocol.md §1: ints within ±(2^53−1) as `number`, else `bigint`; maps with only string
 * keys as plain objects (`__proto__` an own key), other maps as `Map`; bin as a fresh `Uint8Array`.
 * @throws ProtocolError on anything malformed.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) throw new UsageError("decodeValue needs a Uint8Array");
  return new Decoder(bytes).decodeAll();
}
