/**
 * `NDArray`: the TypeScript side of MessagePack ext type 1 (docs/protocol.md §1).
 *
 * An n-dimensional array in numpy's terms: a dtype string in numpy's `.str` form
 * (`"<f8"`, `"|u1"`, `"<c16"`, …), a shape, and the raw C-order bytes. `data` is a typed
 * view when JavaScript has a matching typed array (see {@link typedArrayKind}), else a
 * `Uint8Array` of raw bytes.
 */
import { UsageError } from "@sremote/core";

/** Brand shared by every copy of this package, so two installed copies recognise each other's arrays. */
export const NDARRAY_BRAND: unique symbol = Symbol.for("sremote.protocol.NDArray") as never;

type TypedArrayCtor =
  | Float64ArrayConstructor
  | Float32ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Uint8ArrayConstructor
  | Uint16ArrayConstructor
  | Uint32ArrayConstructor
  | BigUint64ArrayConstructor;

/** dtype → the typed array `data` is exposed as. Every other dtype is raw bytes (`Uint8Array`). */
const VIEW_TYPES: Readonly<Record<string, TypedArrayCtor>> = {
  "<f8": Float64Array,
  "<f4": Float32Array,
  "<i1": Int8Array,
  "|i1": Int8Array,
  "<i2": Int16Array,
  "<i4": Int32Array,
  "<i8": BigInt64Array,
  "|u1": Uint8Array,
  "<u1": Uint8Array,
  "<u2": Uint16Array,
  "<u4": Uint32Array,
  "<u8": BigUint64Array,
  "|b1": Uint8Array,
};

/** Typed array class name → the dtype {@link NDArray.from} gives it. */
const DTYPE_OF_VIEW: Readonly<Record<string, string>> = {
  Float64Array: "<f8",
  Float32Array: "<f4",
  Int8Array: "|i1",
  Int16Array: "<i2",
  Int32Array: "<i4",
  BigInt64Array: "<i8",
  Uint8Array: "|u1",
  Uint8ClampedArray: "|u1",
  Uint16Array: "<u2",
  Uint32Array: "<u4",
  BigUint64Array: "<u8",
};

// numpy `.str`: byte order (`<` little, `|` not applicable), kind letter, item size, and for
// datetime64/timedelta64 a unit in brackets. Big-endian (`>`) is not allowed on the wire.
const DTYPE_RE = /^([<|])([a-zA-Z])(\d{1,6})(\[[0-9a-zA-Z]{1,8}\])?$/;

/**
 * Item size in bytes of a wire dtype, or a string saying why it is not acceptable.
 * `U` (unicode) counts 4 bytes per character, as numpy does.
 */
export function dtypeItemSize(dtype: string): number | string {
  if (typeof dtype !== "string") return "dtype must be a string";
  const m = DTYPE_RE.exec(dtype);
  if (m === null) {
    if (dtype.startsWith(">")) return `dtype ${JSON.stringify(dtype)} is big-endian; the wire is little-endian only`;
    if (dtype === "|O" || dtype.startsWith("|O")) return "dtype object ('|O') cannot be sent";
    return `dtype ${JSON.stringify(dtype)} is not a numpy dtype string such as "<f8" or "|u1"`;
  }
  const kind = m[2]!;
  const n = Number(m[3]);
  if (kind === "O") return "dtype object ('|O') cannot be sent";
  if (m[4] !== undefined && kind !== "M" && kind !== "m") {
    return `dtype ${JSON.stringify(dtype)}: only datetime64/timedelta64 take a [unit]`;
  }
  return kind === "U" ? n * 4 : n;
}

/** The typed array class used for `data` with this dtype, or `undefined` when it is raw bytes. */
export function typedArrayKind(dtype: string): TypedArrayCtor | undefined {
  return VIEW_TYPES[dtype];
}

function shapeSize(shape: readonly number[]): number | string {
  if (!Array.isArray(shape)) return "shape must be an array of non-negative integers";
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      return `shape[${i}] must be a non-negative integer (got ${String(d)})`;
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) return "shape is too large";
  return n;
}

/**
 * Checks a dtype/shape/byte length triple; returns `undefined` when consistent, else why not.
 * Shared by the constructor and the decoder (which turns the reason into a ProtocolError).
 */
export function checkNDArrayLayout(dtype: string, shape: readonly number[], byteLength: number): string | undefined {
  const itemSize = dtypeItemSize(dtype);
  if (typeof itemSize === "string") return itemSize;
  const count = shapeSize(shape);
  if (typeof count === "string") return count;
  const want = itemSize * count;
  if (want !== byteLength) {
    return `data has ${byteLength} bytes but dtype ${dtype} with shape [${shape.join(", ")}] needs ${want}`;
  }
  return undefined;
}

/**
 * Makes the `data` view for a dtype over the given bytes. The bytes are viewed in place when
 * they are aligned for the element type, else copied.
 */
export function viewFor(dtype: string, bytes: Uint8Array): ArrayBufferView {
  const Ctor = VIEW_TYPES[dtype];
  if (Ctor === undefined || Ctor === Uint8Array) return bytes;
  const size = Ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % size !== 0) bytes = new Uint8Array(bytes); // copy: aligned, offset 0
  return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return view instanceof Uint8Array && view.constructor === Uint8Array
    ? view
    : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * An n-dimensional array (numpy's `ndarray` on the Python side). `data` holds the elements in
 * C order, little-endian.
 *
 * ```ts
 * const a = new NDArray("<f8", [2, 3], new Float64Array([1, 2, 3, 4, 5, 6]));
 * a.data; // Float64Array
 * ```
 */
export class NDArray {
  /** numpy dtype string (`.str`), little-endian or `|`. */
  readonly dtype: string;
  /** Dimensions; `[]` for a 0-d array. */
  readonly shape: readonly number[];
  /**
   * The elements: `Float64Array` for `<f8`, `Float32Array` for `<f4`, `Int8Array` for `|i1`,
   * `Int16Array`, `Int32Array`, `BigInt64Array` for `<i8`, `Uint8Array` for `|u1` and `|b1`,
   * `Uint16Array`, `Uint32Array`, `BigUint64Array` for `<u8`; a `Uint8Array` of raw bytes for
   * any other dtype (`<c16`, `<U5`, `<M8[ns]`…).
   */
  readonly data: ArrayBufferView;

  /**
   * @param dtype numpy dtype string, e.g. `"<f8"`.
   * @param shape dimensions (non-negative integers).
   * @param data the bytes, as any typed array or `DataView` over exactly `itemsize × prod(shape)`
   *   bytes; it is re-viewed as the dtype's typed array (in place when aligned, else copied).
   * @throws UsageError (`INVALID_ARGUMENT`) when dtype, shape and byte length disagree.
   */
  constructor(dtype: string, shape: readonly number[], data: ArrayBufferView) {
    if (!ArrayBuffer.isView(data)) {
      throw new UsageError("NDArray data must be a typed array or DataView");
    }
    const problem = checkNDArrayLayout(dtype, shape, data.byteLength);
    if (problem !== undefined) throw new UsageError(`invalid NDArray: ${problem}`);
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    const Ctor = VIEW_TYPES[dtype];
    this.data = Ctor !== undefined && data.constructor === Ctor ? data : viewFor(dtype, bytesOf(data));
    Object.defineProperty(this, NDARRAY_BRAND, { value: true });
  }

  /**
   * An NDArray over a typed array, dtype taken from its class (`Float64Array` → `<f8`…);
   * `shape` defaults to one dimension.
   */
  static from(data: ArrayBufferView, shape?: readonly number[]): NDArray {
    const name = data?.constructor?.name ?? "";
    const dtype = DTYPE_OF_VIEW[name];
    if (dtype === undefined || !ArrayBuffer.isView(data) || data instanceof DataView) {
      throw new UsageError(`NDArray.from needs a typed array (got ${name || typeof data}); use new NDArray(dtype, …)`);
    }
    const length = (data as unknown as { length: number }).length;
    return new NDArray(dtype, shape ?? [length], data);
  }

  /** Number of elements (`prod(shape)`). */
  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }

  /** The raw bytes (C order, little-endian), sharing memory with `data`. */
  get bytes(): Uint8Array {
    return bytesOf(this.data);
  }

  /** True for an NDArray from any copy of this package. */
  static isNDArray(value: unknown): value is NDArray {
    return (
      value instanceof NDArray ||
      (typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[NDARRAY_BRAND] === true)
    );
  }
}
