/**
 * What the encoder (encode.ts) and the decoder (decode.ts) of the value codec share: the
 * limits and ext type codes of docs/protocol.md §1.
 */

/** Deepest nesting of arrays/maps/sets accepted on encode and on decode. */
export const MAX_NESTING = 512;

/** MessagePack ext type codes used by the protocol. */
export const EXT_TIMESTAMP = -1;
export const EXT_NDARRAY = 1;
export const EXT_SET = 2;

/** 2^32, for splitting 64-bit integers into two 32-bit halves. */
export const TWO_32 = 2 ** 32;
