/**
 * Session-carrier framing (docs/spec-protocol.md, "Session carrier"): each frame is a 4-byte
 * unsigned big-endian payload length, then the payload (one MessagePack map).
 */
import { ProtocolError, UsageError } from "@sremote/core";
import { allocUninitialized, copyBytes } from "./bytes.js";

/** Default largest payload accepted, in bytes (256 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

/** The largest length a 4-byte header can carry. */
export const MAX_FRAME_HEADER_LENGTH = 0xffff_ffff;

function checkMax(maxFrameBytes: number): number {
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_HEADER_LENGTH) {
    throw new UsageError(
      `maxFrameBytes must be an integer from 1 to ${MAX_FRAME_HEADER_LENGTH} (got ${maxFrameBytes})`,
    );
  }
  return maxFrameBytes;
}

/**
 * One frame: the 4-byte big-endian length of `payload`, then `payload` (copied).
 * @throws UsageError for an empty payload or one larger than `maxFrameBytes`.
 */
export function encodeFrame(payload: Uint8Array, options: { maxFrameBytes?: number } = {}): Uint8Array {
  const max = checkMax(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
  const n = payload.byteLength;
  if (n === 0) throw new UsageError("cannot send an empty frame");
  if (n > max) throw new UsageError(`frame of ${n} bytes exceeds the limit of ${max} bytes`);
  const out = new Uint8Array(4 + n);
  new DataView(out.buffer).setUint32(0, n);
  out.set(payload, 4);
  return out;
}

/**
 * Splits a byte stream into frames. Feed it chunks as they arrive; it returns every frame
 * completed by each chunk. Each payload byte is copied once into its frame's own buffer, so a
 * large frame arriving in many small chunks costs linear time, and returned frames never share
 * memory with the pushed chunks. A reader that can choose where its reads land may read the
 * rest of a frame straight into that buffer ({@link FrameDecoder.readTarget}): then nothing is
 * copied.
 *
 * With `views: true`, a frame that lies wholly inside one pushed chunk is returned as a view of
 * that chunk instead of a copy (frames spread over several chunks are still assembled in their
 * own buffer): for a consumer that decodes each frame at once and keeps nothing that aliases it,
 * such as the client's session, which saves an allocation and a copy per message.
 *
 * A zero-length frame, or a length over `maxFrameBytes` (checked as soon as the 4 header bytes
 * are in, before any payload is buffered), is a `ProtocolError`; after one, the decoder stays
 * failed and every later `push` throws the same error.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  private readonly views: boolean;
  private readonly header = new Uint8Array(4);
  private headerFill = 0;
  private frame: Uint8Array | null = null;
  private frameFill = 0;
  private failure: ProtocolError | null = null;
  /** Buffers this decoder allocated for frames spread over several chunks. */
  private readonly assembledBuffers = new WeakSet<ArrayBufferLike>();

  /**
   * @param options.maxFrameBytes largest payload accepted (default 256 MiB).
   * @param options.views return frames wholly inside a chunk as views of it (default false: copies).
   */
  constructor(options: { maxFrameBytes?: number; views?: boolean } = {}) {
    this.maxFrameBytes = checkMax(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.views = options.views === true;
  }

  /** Bytes received that belong to a frame not yet complete (header bytes included). */
  get pendingBytes(): number {
    return this.frame === null ? this.headerFill : 4 + this.frameFill;
  }

  /**
   * Where the rest of the frame being assembled goes: a view of its own buffer from the first
   * byte not yet received, or `null` between frames (and after a failure). A reader that can
   * choose where its next read lands (`RemoteProcess.readStdoutInto`) reads there, then
   * `push`es the view of what arrived: bytes already in place are counted, not copied.
   */
  readTarget(): Uint8Array | null {
    const frame = this.frame;
    return frame === null ? null : frame.subarray(this.frameFill);
  }

  /**
   * True when `frame` (returned by `push`) lies in a buffer this decoder allocated and shares
   * with nothing else — it was spread over several chunks — rather than being a view of a
   * pushed chunk (`views: true`): its consumer may keep views of it instead of copies.
   */
  isAssembled(frame: Uint8Array): boolean {
    return this.assembledBuffers.has(frame.buffer);
  }

  /** The error that stopped this decoder, if any. */
  get error(): ProtocolError | null {
    return this.failure;
  }

  /**
   * Adds received bytes; returns the frames (payloads) they complete, in order.
   * @throws ProtocolError for a zero-length or oversized frame. When good frames precede the bad
   *   header in the same chunk, they are returned first and the error is thrown by the next
   *   `push` or `end` (and is readable at once as {@link error}).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure !== null) throw this.failure;
    const frames: Uint8Array[] = [];
    try {
      this.consume(chunk, frames);
    } catch (e) {
      if (e === this.failure && frames.length > 0) return frames;
      throw e;
    }
    return frames;
  }

  private consume(chunk: Uint8Array, frames: Uint8Array[]): void {
    const n = chunk.byteLength;
    let i = 0;
    while (i < n) {
      if (this.frame === null) {
        // Fast path: a whole header inside this chunk.
        let length: number;
        if (this.headerFill === 0 && n - i >= 4) {
          length = ((chunk[i]! << 24) | (chunk[i + 1]! << 16) | (chunk[i + 2]! << 8) | chunk[i + 3]!) >>> 0;
          i += 4;
        } else {
          while (this.headerFill < 4 && i < n) this.header[this.headerFill++] = chunk[i++]!;
          if (this.headerFill < 4) break;
          const h = this.header;
          length = ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
          this.headerFill = 0;
        }
        this.checkLength(length);
        if (n - i >= length) {
          // The whole frame is in this chunk.
          const whole = chunk.subarray(i, i + length);
          frames.push(this.views ? whole : copyBytes(whole));
          i += length;
          continue;
        }
        this.frame = allocUninitialized(length);
        this.assembledBuffers.add(this.frame.buffer);
        this.frameFill = 0;
      }
      const frame = this.frame;
      const take = Math.min(frame.byteLength - this.frameFill, n - i);
      // Bytes read straight into place (see readTarget) are already where they belong.
      if (chunk.buffer !== frame.buffer || chunk.byteOffset + i !== frame.byteOffset + this.frameFill) {
        frame.set(chunk.subarray(i, i + take), this.frameFill);
      }
      this.frameFill += take;
      i += take;
      if (this.frameFill === frame.byteLength) {
        frames.push(frame);
        this.frame = null;
        this.frameFill = 0;
      }
    }
  }

  private checkLength(length: number): void {
    if (length === 0) this.fail("received a zero-length frame");
    if (length > this.maxFrameBytes) {
      this.fail(`received a frame of ${length} bytes, over the limit of ${this.maxFrameBytes} bytes`);
    }
  }

  private fail(message: string): never {
    this.failure = new ProtocolError(message);
    this.frame = null;
    this.headerFill = 0;
    this.frameFill = 0;
    throw this.failure;
  }

  /** Marks the end of the stream. @throws ProtocolError when it ends inside a frame. */
  end(): void {
    if (this.failure !== null) throw this.failure;
    if (this.frame !== null) {
      this.fail(`stream ended inside a frame (${this.frameFill} of ${this.frame.byteLength} payload bytes received)`);
    }
    if (this.headerFill > 0) this.fail(`stream ended inside a frame header (${this.headerFill} of 4 bytes received)`);
  }
}

/** Frames of one tick are merged into one write up to this many bytes; bigger frames go alone. */
export const TICK_BATCH_MAX_BYTES = 64 * 1024;

/**
 * Gathers the frames written during one tick of the event loop and hands them to `write` as
 * one buffer when the tick ends: one system call for many frames, and over SSH one channel
 * packet instead of one per frame (an ssh2 channel sends every `write()` as a packet of its
 * own, and corking the stream does not merge them). Order is kept; a frame of
 * {@link TICK_BATCH_MAX_BYTES} or more is not copied into a batch — what waits goes first,
 * then it — and a batch reaching that size leaves at once.
 *
 * @example
 * ```ts
 * const out = new TickBatcher((bytes) => child.stdin.write(bytes));
 * out.push(encodeMessageFrame(a)); out.push(encodeMessageFrame(b)); // one write, at the end of the tick
 * out.flush(); // now, e.g. before ending the stream
 * ```
 */
export class TickBatcher {
  readonly #write: (bytes: Uint8Array) => void;
  #frames: Uint8Array[] = [];
  #bytes = 0;

  constructor(write: (bytes: Uint8Array) => void) {
    this.#write = write;
  }

  /** Queues `frame` for the write at the end of this tick. */
  push(frame: Uint8Array): void {
    if (frame.byteLength >= TICK_BATCH_MAX_BYTES) {
      this.flush();
      this.#write(frame);
      return;
    }
    this.#frames.push(frame);
    this.#bytes += frame.byteLength;
    if (this.#frames.length === 1) process.nextTick(() => this.flush());
    else if (this.#bytes >= TICK_BATCH_MAX_BYTES) this.flush();
  }

  /**
   * Queues a frame given in parts ({@link encodeMessageFrameParts}): one part is
   * {@link push}ed; several (a large frame) leave now, after what waits, each as it is.
   */
  pushParts(parts: readonly Uint8Array[]): void {
    if (parts.length === 1) {
      this.push(parts[0] as Uint8Array);
      return;
    }
    this.flush();
    for (const part of parts) this.#write(part);
  }

  /** Writes what is queued now, as one buffer (nothing when nothing is queued). */
  flush(): void {
    const frames = this.#frames;
    if (frames.length === 0) return;
    const bytes = this.#bytes;
    this.#frames = [];
    this.#bytes = 0;
    this.#write(frames.length === 1 ? (frames[0] as Uint8Array) : Buffer.concat(frames, bytes));
  }
}
