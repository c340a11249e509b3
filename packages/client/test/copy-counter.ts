import { vi } from "vitest";

/**
 * Runs `fn` while counting the bytes `Uint8Array.prototype.set` copies from sources of 4 KiB
 * or more (pipe chunks, SSH packets, frames): how a test sees whether a big value was copied
 * on its way in. Small copies (message fields) are not counted.
 */
export async function bigCopies<T>(fn: () => Promise<T>): Promise<{ value: T; copied: number }> {
  let copied = 0;
  const set = Uint8Array.prototype.set;
  const spy = vi.spyOn(Uint8Array.prototype, "set").mockImplementation(function (
    this: Uint8Array,
    source: ArrayLike<number>,
    offset?: number,
  ) {
    if (source.length >= 4096) copied += source.length;
    return set.call(this, source, offset);
  });
  try {
    return { value: await fn(), copied };
  } finally {
    spy.mockRestore();
  }
}
