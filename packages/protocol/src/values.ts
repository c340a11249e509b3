/**
 * The value codec: TypeScript values ↔ MessagePack bytes, exactly as docs/protocol.md §1 says.
 *
 * Hand-written rather than delegated to a general MessagePack library because the protocol's
 * rules are stricter than any library's defaults (smallest int format for every integer up to
 * 64 bits, float64 only, errors naming the path of an unencodable value, lone surrogates and
 * invalid UTF-8 rejected, `__proto__` kept as an own key, int-keyed maps decoded as `Map`,
 * canonical fixext headers, a nesting limit); docs/decisions/msgpack-library.md has the
 * measurements behind the choice.
 */
import { ProtocolError, UsageError } from "@sremote/core";
import { allocUninitialized, copyBytes } from "./bytes.js";
import { checkNDArrayLayout, NDArray, viewFor } from "./ndarray.js";

/** Deepest nesting of arrays/maps/sets accepted on encode and on decode. */
export const MAX_NESTING = 512;

/** MessagePack ext type codes used by the protocol. */
export const EXT_TIMESTAMP = -1;
export const EXT_NDARRAY = 1;
export const EXT_SET = 2;

/**
 * A value that cannot be encoded. A `UsageError` (`INVALID_ARGUMENT`): the caller passed it.
 * `path` says where it is (`args[1].owner`, `value["a b"][0]`, `kwargs.x{set}`).
 */
export class SerializationError extends UsageError {
  override name = "SerializationError";
  /** Where the value is, e.g. `args[1].owner`. */
  readonly path: string;
  /** What it is: `function`, `symbol`, a class name, `Float64Array`, `Date`, `string`, `bigint`, `nesting`. */
  readonly valueType: string;

  constructor(what: string, valueType: string, path: string) {
    // `what` may carry an explanation after ": ", which reads best after the path.
    const i = what.indexOf(": ");
    super(
      i < 0 ? `cannot encode ${what} at ${path}` : `cannot encode ${what.slice(0, i)} at ${path}: ${what.slice(i + 2)}`,
    );
    this.path = path;
    this.valueType = valueType;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), path: this.path, valueType: this.valueType };
  }
}

/** Internal: thrown inside the encoder, collects path segments while unwinding. */
class EncodeFailure {
  readonly segments: string[] = [];
  constructor(
    readonly what: string,
    readonly valueType: string,
  ) {}
}

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Path segment for a string map key: `.name` for identifiers, `["…"]` (JSON-quoted) otherwise. */
export function keySegment(key: string): string {
  return IDENT_RE.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function nonStringKeySegment(key: unknown): string {
  if (typeof key === "number" || typeof key === "bigint" || typeof key === "boolean") return `<${String(key)}>`;
  if (key === null || key === undefined) return "<null>";
  return `<${typeName(key)}>`;
}

/** Renders root + segments (collected innermost first), eliding the middle of absurdly long paths. */
function renderPath(root: string, reversed: readonly string[]): string {
  const segs = [...reversed].reverse();
  if (segs.length > 40) {
    return `${root}${segs.slice(0, 20).join("")}…(${segs.length - 25} more)…${segs.slice(-5).join("")}`;
  }
  return root + segs.join("");
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  const t = typeof value;
  if (t !== "object") return t;
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  return typeof ctor?.name === "string" && ctor.name !== "" ? ctor.name : "object";
}

const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const hasWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === "function";
function isWellFormed(s: string): boolean {
  return hasWellFormed ? (s as unknown as { isWellFormed(): boolean }).isWellFormed() : !LONE_SURROGATE_RE.test(s);
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Length: (s: string) => number =
  typeof Buffer === "function" ? (s) => Buffer.byteLength(s, "utf8") : (s) => textEncoder.encode(s).length;

const TWO_32 = 2 ** 32;
const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;
const INITIAL_BUFFER = 8 * 1024;
const KEEP_BUFFER_MAX = 1024 * 1024;
const DETACH_MIN = 256 * 1024;
/** Node's Buffer.from() copies buffers under half its 8 KiB pool into the pool. */
const POOLED_MAX = 4 * 1024;

/** Low-level encoder state: a growable buffer written front to back. */
export class Encoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(size = INITIAL_BUFFER) {
    this.buf = new Uint8Array(size);
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = allocUninitialized(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer, next.byteOffset, next.byteLength);
  }

  /**
   * The bytes written, from `start`, as a buffer the caller owns: a copy when small; when large,
   * the encoder's own buffer (a view of it), which the encoder then gives up — saving a copy of
   * megabyte payloads.
   */
  take(start = 0): Uint8Array {
    const n = this.pos - start;
    if (n < DETACH_MIN) return copyBytes(this.buf.subarray(start, this.pos));
    const out = this.buf.subarray(start, this.pos);
    this.buf = new Uint8Array(INITIAL_BUFFER);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
    return out;
  }

  /**
   * Like {@link take} from 0, but a small result may be a view into Node's shared `Buffer` pool
   * (where there is one): cheaper than a buffer of its own, for bytes written out at once.
   */
  takePooled(): Uint8Array {
    if (typeof Buffer === "function" && this.pos < POOLED_MAX) return Buffer.from(this.buf.subarray(0, this.pos));
    return this.take();
  }

  /** Encodes one value; `depth` = containers enclosing it. Throws EncodeFailure (internal). */
  encode(value: unknown, depth: number): void {
    switch (typeof value) {
      case "string":
        this.writeString(value);
        return;
      case "number":
        if (Number.isInteger(value) && Math.abs(value) <= Number.MAX_SAFE_INTEGER && !Object.is(value, -0)) {
          this.writeInt(value);
        } else {
          this.ensure(9);
          this.buf[this.pos] = 0xcb;
          if (!Number.isNaN(value)) {
            this.view.setFloat64(this.pos + 1, value);
          } else {
            // Every NaN is written as the canonical quiet NaN, whatever its payload bits.
            this.view.setUint32(this.pos + 1, 0x7ff80000);
            this.view.setUint32(this.pos + 5, 0);
          }
          this.pos += 9;
        }
        return;
      case "boolean":
        this.ensure(1);
        this.buf[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case "undefined":
        this.ensure(1);
        this.buf[this.pos++] = 0xc0;
        return;
      case "bigint":
        this.writeBigInt(value);
        return;
      case "object":
        if (value === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xc0;
          return;
        }
        this.encodeObject(value, depth);
        return;
      case "function": {
        const name = (value as { name?: string }).name;
        throw new EncodeFailure(`a function${name ? ` (${name})` : ""}: functions cannot be sent`, "function");
      }
      default:
        throw new EncodeFailure(`a ${typeof value}: it has no MessagePack form`, typeof value);
    }
  }

  private encodeObject(value: object, depth: number): void {
    if (Array.isArray(value)) {
      this.checkDepth(depth);
      this.writeArray(value, depth + 1);
      return;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      this.checkDepth(depth);
      this.writeObject(value as Record<string, unknown>, depth + 1);
      return;
    }
    if (value instanceof Uint8Array) {
      this.writeBin(value);
      return;
    }
    if (value instanceof Map) {
      this.checkDepth(depth);
      this.writeMap(value, depth + 1);
      return;
    }
    if (value instanceof Date) {
      this.writeDate(value);
      return;
    }
    if (value instanceof Set) {
      this.checkDepth(depth);
      this.writeSet(value, depth + 1);
      return;
    }
    if (NDArray.isNDArray(value)) {
      this.writeNDArray(value);
      return;
    }
    const name = typeName(value);
    if (ArrayBuffer.isView(value)) {
      throw new EncodeFailure(
        `a ${name}: only Uint8Array travels as bytes; wrap other typed arrays in an NDArray (NDArray.from(x))`,
        name,
      );
    }
    if (
      value instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer)
    ) {
      throw new EncodeFailure(`an ${name}: wrap it in a Uint8Array to send bytes`, name);
    }
    throw new EncodeFailure(
      `an instance of ${name}: only plain objects, arrays, Map, Set, Date, Uint8Array and NDArray can be sent`,
      name,
    );
  }

  private checkDepth(depth: number): void {
    if (depth >= MAX_NESTING) {
      throw new EncodeFailure(`a value nested deeper than ${MAX_NESTING} levels (a circular reference?)`, "nesting");
    }
  }

  writeInt(v: number): void {
    this.ensure(9);
    const buf = this.buf;
    let p = this.pos;
    if (v >= 0) {
      if (v < 0x80) {
        buf[p++] = v;
      } else if (v < 0x100) {
        buf[p++] = 0xcc;
        buf[p++] = v;
      } else if (v < 0x10000) {
        buf[p++] = 0xcd;
        buf[p++] = v >>> 8;
        buf[p++] = v & 0xff;
      } else if (v < TWO_32) {
        buf[p++] = 0xce;
        this.view.setUint32(p, v);
        p += 4;
      } else {
        buf[p++] = 0xcf;
        this.view.setUint32(p, Math.floor(v / TWO_32));
        this.view.setUint32(p + 4, v >>> 0);
        p += 8;
      }
    } else if (v >= -0x20) {
      buf[p++] = v & 0xff;
    } else if (v >= -0x80) {
      buf[p++] = 0xd0;
      buf[p++] = v & 0xff;
    } else if (v >= -0x8000) {
      buf[p++] = 0xd1;
      this.view.setInt16(p, v);
      p += 2;
    } else if (v >= -0x80000000) {
      buf[p++] = 0xd2;
      this.view.setInt32(p, v);
      p += 4;
    } else {
      buf[p++] = 0xd3;
      const hi = Math.floor(v / TWO_32);
      this.view.setInt32(p, hi);
      this.view.setUint32(p + 4, v - hi * TWO_32);
      p += 8;
    }
    this.pos = p;
  }

  private writeBigInt(v: bigint): void {
    if (v >= MIN_SAFE_BIG && v <= MAX_SAFE_BIG) {
      this.writeInt(Number(v));
      return;
    }
    if (v < MIN_INT64 || v > MAX_UINT64) {
      throw new EncodeFailure(`bigint ${v}: outside the 64-bit range [-2^63, 2^64-1]`, "bigint");
    }
    this.ensure(9);
    if (v > 0n) {
      this.buf[this.pos] = 0xcf;
      this.view.setBigUint64(this.pos + 1, v);
    } else {
      this.buf[this.pos] = 0xd3;
      this.view.setBigInt64(this.pos + 1, v);
    }
    this.pos += 9;
  }

  writeString(s: string): void {
    const len = s.length;
    if (len < 64) {
      // Short: encode by hand after the header's room, then write the header: fixstr (1 byte)
      // for under 32 UTF-8 bytes, else str8 (2). Under 32 UTF-16 units, 1 byte is reserved and
      // the bytes move only in the rare case where multi-byte characters reach 32 bytes.
      this.ensure(2 + len * 3);
      const buf = this.buf;
      const start = this.pos;
      const reserve = len < 32 ? 1 : 2;
      let p = start + reserve;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80) {
          buf[p++] = c;
        } else if (c < 0x800) {
          buf[p++] = 0xc0 | (c >> 6);
          buf[p++] = 0x80 | (c & 0x3f);
        } else if (c < 0xd800 || c > 0xdfff) {
          buf[p++] = 0xe0 | (c >> 12);
          buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          buf[p++] = 0x80 | (c & 0x3f);
        } else {
          const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
          if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
            throw new EncodeFailure("a string with a lone surrogate (not valid Unicode)", "string");
          }
          i++;
          const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          buf[p++] = 0xf0 | (cp >> 18);
          buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[p++] = 0x80 | (cp & 0x3f);
        }
      }
      const n = p - start - reserve;
      if (n < 32) {
        buf[start] = 0xa0 | n; // n < 32 implies len < 32: one byte was reserved
      } else {
        if (reserve === 1) {
          buf.copyWithin(start + 2, start + 1, p);
          p++;
        }
        buf[start] = 0xd9;
        buf[start + 1] = n;
      }
      this.pos = p;
      return;
    }
    if (!isWellFormed(s)) {
      throw new EncodeFailure("a string with a lone surrogate (not valid Unicode)", "string");
    }
    const n = utf8Length(s);
    this.writeHeader(n, 0xa0, 32, 0xd9, 0xda, 0xdb);
    this.ensure(n);
    textEncoder.encodeInto(s, this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
  }

  /** Writes a str/array/map header: fix form under `fixLimit` (0 = none), else 8/16/32-bit length. */
  private writeHeader(n: number, fixBase: number, fixLimit: number, c8: number, c16: number, c32: number): void {
    this.ensure(5);
    const buf = this.buf;
    if (n < fixLimit) {
      buf[this.pos++] = fixBase | n;
    } else if (n < 0x100 && c8 !== 0) {
      buf[this.pos++] = c8;
      buf[this.pos++] = n;
    } else if (n < 0x10000) {
      buf[this.pos++] = c16;
      buf[this.pos++] = n >>> 8;
      buf[this.pos++] = n & 0xff;
    } else {
      buf[this.pos++] = c32;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private writeBin(b: Uint8Array): void {
    const n = b.byteLength;
    this.writeHeader(n, 0, 0, 0xc4, 0xc5, 0xc6);
    this.ensure(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  private writeArray(a: readonly unknown[], depth: number): void {
    const n = a.length;
    this.writeHeader(n, 0x90, 16, 0, 0xdc, 0xdd);
    let i = 0;
    try {
      for (; i < n; i++) this.encode(a[i], depth);
    } catch (e) {
      if (e instanceof EncodeFailure) e.segments.push(`[${i}]`);
      throw e;
    }
  }

  private writeObject(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o);
    const n = keys.length;
    this.writeHeader(n, 0x80, 16, 0, 0xde, 0xdf);
    let key = "";
    let inKey = false;
    try {
      for (let i = 0; i < n; i++) {
        key = keys[i]!;
        inKey = true;
        this.writeString(key);
        inKey = false;
        this.encode(o[key], depth);
      }
    } catch (e) {
      if (e instanceof EncodeFailure) e.segments.push(inKey ? "<key>" : keySegment(key));
      throw e;
    }
  }

  private writeMap(m: Map<unknown, unknown>, depth: number): void {
    this.writeHeader(m.size, 0x80, 16, 0, 0xde, 0xdf);
    let key: unknown;
    let inKey = false;
    try {
      for (const [k, v] of m) {
        key = k;
        inKey = true;
        this.encode(k, depth);
        inKey = false;
        this.encode(v, depth);
      }
    } catch (e) {
      if (e instanceof EncodeFailure) {
        e.segments.push(inKey ? "<key>" : typeof key === "string" ? keySegment(key) : nonStringKeySegment(key));
      }
      throw e;
    }
  }

  /** Reserves room for the largest ext header (6 bytes) and returns where the payload starts. */
  private beginExt(): number {
    this.ensure(6);
    const start = this.pos;
    this.pos += 6;
    return start;
  }

  /** Writes the canonical ext header for the payload written since `beginExt`, moving it down. */
  private endExt(start: number, type: number): void {
    const payloadStart = start + 6;
    const n = this.pos - payloadStart;
    const h = extHeaderSize(n);
    if (h !== 6) this.buf.copyWithin(start + h, payloadStart, this.pos);
    this.pos = start;
    this.writeExtHeader(n, type);
    this.pos = start + h + n;
  }

  private writeExtHeader(n: number, type: number): void {
    this.ensure(6);
    const buf = this.buf;
    let p = this.pos;
    switch (n) {
      case 1:
        buf[p++] = 0xd4;
        break;
      case 2:
        buf[p++] = 0xd5;
        break;
      case 4:
        buf[p++] = 0xd6;
        break;
      case 8:
        buf[p++] = 0xd7;
        break;
      case 16:
        buf[p++] = 0xd8;
        break;
      default:
        if (n < 0x100) {
          buf[p++] = 0xc7;
          buf[p++] = n;
        } else if (n < 0x10000) {
          buf[p++] = 0xc8;
          buf[p++] = n >>> 8;
          buf[p++] = n & 0xff;
        } else {
          buf[p++] = 0xc9;
          this.view.setUint32(p, n);
          p += 4;
        }
    }
    buf[p++] = type & 0xff;
    this.pos = p;
  }

  private writeSet(s: Set<unknown>, depth: number): void {
    const start = this.beginExt();
    this.writeHeader(s.size, 0x90, 16, 0, 0xdc, 0xdd);
    try {
      for (const v of s) this.encode(v, depth);
    } catch (e) {
      if (e instanceof EncodeFailure) e.segments.push("{set}");
      throw e;
    }
    this.endExt(start, EXT_SET);
  }

  private writeDate(d: Date): void {
    const ms = d.getTime();
    if (Number.isNaN(ms)) throw new EncodeFailure("an invalid Date", "Date");
    const sec = Math.floor(ms / 1000);
    const ns = (ms - sec * 1000) * 1e6;
    this.ensure(15);
    const buf = this.buf;
    const p = this.pos;
    if (sec >= 0 && sec < 2 ** 34) {
      if (ns === 0 && sec < TWO_32) {
        buf[p] = 0xd6;
        buf[p + 1] = 0xff;
        this.view.setUint32(p + 2, sec);
        this.pos = p + 6;
      } else {
        buf[p] = 0xd7;
        buf[p + 1] = 0xff;
        // 64-bit form: nanoseconds in the upper 30 bits, seconds in the lower 34.
        this.view.setUint32(p + 2, ns * 4 + Math.floor(sec / TWO_32));
        this.view.setUint32(p + 6, sec >>> 0);
        this.pos = p + 10;
      }
    } else {
      buf[p] = 0xc7;
      buf[p + 1] = 12;
      buf[p + 2] = 0xff;
      this.view.setUint32(p + 3, ns);
      this.view.setBigInt64(p + 7, BigInt(sec));
      this.pos = p + 15;
    }
  }

  private writeNDArray(a: NDArray): void {
    const data = a.data;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const problem = checkNDArrayLayout(a.dtype, a.shape, bytes.byteLength);
    if (problem !== undefined) throw new EncodeFailure(`an invalid NDArray: ${problem}`, "NDArray");
    // Payload = [dtype, shape, "C", data]. Write its head after a 6-byte reserve, then place the
    // ext header right before it, so the (possibly large) data is copied once.
    const start = this.beginExt();
    this.ensure(1);
    this.buf[this.pos++] = 0x94;
    this.writeString(a.dtype);
    this.writeHeader(a.shape.length, 0x90, 16, 0, 0xdc, 0xdd);
    for (const d of a.shape) this.writeInt(d);
    this.ensure(2);
    this.buf[this.pos++] = 0xa1;
    this.buf[this.pos++] = 0x43; // "C"
    this.writeHeader(bytes.byteLength, 0, 0, 0xc4, 0xc5, 0xc6);
    const headLen = this.pos - start - 6;
    const n = headLen + bytes.byteLength;
    const h = extHeaderSize(n);
    this.buf.copyWithin(start + h, start + 6, this.pos);
    this.pos = start;
    this.writeExtHeader(n, EXT_NDARRAY);
    this.pos = start + h + headLen;
    this.ensure(bytes.byteLength);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.byteLength;
  }
}

function extHeaderSize(n: number): number {
  if (n === 1 || n === 2 || n === 4 || n === 8 || n === 16) return 2;
  if (n < 0x100) return 3;
  if (n < 0x10000) return 4;
  return 6;
}

let spare: Encoder | null = null;

/** Runs `fn` with a reusable encoder (a fresh one when re-entered, e.g. from a getter). */
export function withEncoder<T>(fn: (enc: Encoder) => T): T {
  const enc = spare ?? new Encoder();
  spare = null;
  enc.pos = 0;
  try {
    return fn(enc);
  } finally {
    if (enc.buf.length <= KEEP_BUFFER_MAX) spare = enc;
  }
}

/** Turns an internal failure into the public error, with `root` as the path's start. */
export function toSerializationError(e: unknown, root: string): unknown {
  if (e instanceof EncodeFailure) return new SerializationError(e.what, e.valueType, renderPath(root, e.segments));
  if (e instanceof RangeError && /call stack/i.test(e.message)) {
    return new SerializationError("a value nested too deeply", "nesting", root);
  }
  return e;
}

/** Encodes `value` (at nesting depth `depth`) into `enc`; failures become SerializationError at `root`. */
export function encodeInto(enc: Encoder, value: unknown, root: string, depth = 0): void {
  try {
    enc.encode(value, depth);
  } catch (e) {
    throw toSerializationError(e, root);
  }
}

/**
 * Encodes one value as MessagePack, by the rules of docs/protocol.md §1.
 * @param options.path the name of the value in error messages (default `value`).
 * @throws SerializationError (a UsageError, code `INVALID_ARGUMENT`) naming the type and the path.
 */
export function encodeValue(value: unknown, options: { path?: string } = {}): Uint8Array {
  return withEncoder((enc) => {
    encodeInto(enc, value, options.path ?? "value");
    return enc.take();
  });
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Low-level decoder over one buffer. */
export class Decoder {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;
  end: number;
  depth = 0;

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
