/**
 * Byte buffers without the cost of zero-filling large ones. Node's `new Uint8Array(n)` zeroes
 * memory, which for megabyte frames costs more than the copy that follows. Every buffer made
 * here is completely overwritten by its caller before anything can read it.
 */

const UNSAFE_MIN = 64 * 1024;
const allocUnsafe: ((n: number) => Uint8Array) | undefined =
  typeof Buffer === "function"
    ? (n) => {
        const b = Buffer.allocUnsafeSlow(n);
        // A plain Uint8Array over the memory: Buffer's slice() would alias instead of copying.
        return new Uint8Array(b.buffer, b.byteOffset, n);
      }
    : undefined;

/** A new buffer of `n` bytes whose content is unspecified: the caller must fill all of it. */
export function allocUninitialized(n: number): Uint8Array {
  return n >= UNSAFE_MIN && allocUnsafe !== undefined ? allocUnsafe(n) : new Uint8Array(n);
}

/** A copy of `src` as a plain `Uint8Array` (offset 0, own buffer), whatever `src` is. */
export function copyBytes(src: Uint8Array): Uint8Array {
  const out = allocUninitialized(src.byteLength);
  out.set(src);
  return out;
}
