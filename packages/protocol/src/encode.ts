/**
 * The value codec's encoder: TypeScript values → MessagePack bytes, exactly as
 * docs/protocol.md §1 says (values.ts says why the codec is hand-written).
 */
import { UsageError } from "@sremote/core";
import { allocUninitialized, copyBytes } from "./bytes.js";
import { checkNDArrayLayout, NDArray } from "./ndarray.js";
import { EXT_NDARRAY, EXT_SET, MAX_NESTING, TWO_32 } from "./value-format.js";

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
const utf8Length: (s: string) => number =
  typeof Buffer === "function" ? (s) => Buffer.byteLength(s, "utf8") : (s) => textEncoder.encode(s).length;

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE_BIG = -MAX_SAFE_BIG;
const INITIAL_BUFFER = 8 * 1024;
const KEEP_BUFFER_MAX = 1024 * 1024;
const DETACH_MIN = 256 * 1024;
/** Node's Buffer.from() copies buffers under half its 8 KiB pool into the pool. */
const POOLED_MAX = 4 * 1024;
/** Bins (and ndarray data) from this size are left out of the buffer when holes are on. */
export const HOLE_MIN = 64 * 1024;

/** A large byte run left out of an encoder's buffer: it belongs at offset `at`. */
export interface EncoderHole {
  at: number;
  bytes: Uint8Array;
}

/** Low-level encoder state: a growable buffer written front to back. */
export class Encoder {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  /**
   * When not null, bins and ndarray data of {@link HOLE_MIN} bytes or more are not copied into
   * `buf`: their header is written, and the caller's bytes are recorded here to be sent from
   * where they are (one copy less of a large argument, and no buffer of its size).
   */
  holes: EncoderHole[] | null = null;
  /** Bytes of the holes, which `buf` does not hold. */
  holeBytes = 0;
  /** An empty list for {@link holes}, reused from one frame to the next. */
  readonly spareHoles: EncoderHole[] = [];

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
    // A large value should not make a buffer of twice its size (a 64 MiB string, 128 MiB):
    // grow by half of what is needed at most (still geometric, so linear in total).
    if (need >= DETACH_MIN) size = Math.min(size, need + (need >>> 1));
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
    if (this.holes !== null && n >= HOLE_MIN) {
      this.holes.push({ at: this.pos, bytes: b });
      this.holeBytes += n;
      return;
    }
    this.ensure(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }

  /** Moves the holes at or after `from` by `by` bytes (the caller moved the buffer's bytes). */
  shiftHoles(from: number, by: number): void {
    for (const h of this.holes ?? []) if (h.at >= from) h.at += by;
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
    // The ext header counts the bytes written since beginExt: no holes inside.
    const holes = this.holes;
    this.holes = null;
    try {
      for (const v of s) this.encode(v, depth);
    } catch (e) {
      if (e instanceof EncodeFailure) e.segments.push("{set}");
      throw e;
    } finally {
      this.holes = holes;
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
    if (this.holes !== null && bytes.byteLength >= HOLE_MIN) {
      this.holes.push({ at: this.pos, bytes });
      this.holeBytes += bytes.byteLength;
      return;
    }
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
