import { mkdtempSync, rmdirSync, unlinkSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { StdoutReader } from "./connector.js";
import { UsageError } from "./errors.js";

/** Node's `onread` socket option. */
interface OnRead {
  buffer: () => Uint8Array;
  callback: (n: number, buf: Uint8Array) => boolean;
}

/** Size of each buffer a read gets while stdout is an ordinary stream. */
const CHUNK_BYTES = 64 * 1024;

/**
 * For connector authors: a local child process's stdout as a Unix stream socket that this
 * side reads with Node's `onread` option, so that the reader can choose where each read lands
 * ({@link SocketStdout.readInto}, behind `RemoteProcess.readStdoutInto`); until it does,
 * `stream` is an ordinary `Readable`. The local connector and the OpenSSH transport use it.
 *
 * Node's own child pipes read into a fresh 64 KiB chunk per read, which a frame decoder then
 * copies: for a 64 MiB result, ~1,000 chunks (~36 MB of short-lived memory, each page of it
 * faulted in) and a 64 MiB copy. Read in place, the bytes land in the frame's buffer.
 *
 * Node has no `socketpair()`; {@link openSocketStdout} makes the pair by connecting to a
 * listening socket in a fresh private folder (mode 0700, so no other user can connect first),
 * which is removed before the command starts.
 */
export class SocketStdout {
  /** stdout as a stream: data until {@link readInto}, then only `end`, `error` and `close`. */
  readonly stream: Readable;
  /** Settles once the socket has closed. */
  readonly closed: Promise<void>;
  readonly #socket: Socket;
  #reader: StdoutReader | undefined;

  /** @internal use {@link openSocketStdout}: `connectOn` connects the socket with `onread`. */
  constructor(connectOn: (onread: OnRead) => Socket) {
    // The callbacks run only once data arrives, after both fields are set.
    this.#socket = connectOn({
      buffer: () => this.#reader?.buffer() ?? Buffer.allocUnsafe(CHUNK_BYTES),
      callback: (n, buf) => {
        const bytes = buf.subarray(0, n);
        if (this.#reader !== undefined) {
          this.#reader.onData(bytes);
          return true;
        }
        // false stops reading until the stream's consumer asks for more (read() resumes).
        return this.stream.push(bytes);
      },
    });
    this.stream = new Readable({
      highWaterMark: CHUNK_BYTES,
      read: () => {
        this.#socket.resume();
      },
      destroy: (err, callback) => {
        this.#socket.destroy();
        callback(err);
      },
    });
    this.#socket.on("end", () => this.stream.push(null));
    this.#socket.on("error", (err) => this.stream.destroy(err));
    this.closed = new Promise((resolve) => this.#socket.once("close", () => resolve()));
  }

  /** Hands every later read to `reader` (bytes the stream holds go to it first). */
  readInto(reader: StdoutReader): void {
    if (this.#reader !== undefined) throw new UsageError("readStdoutInto: stdout already has a reader");
    this.#reader = reader;
    for (let held = this.stream.read() as Buffer | null; held !== null; held = this.stream.read() as Buffer | null) {
      reader.onData(held);
    }
    // Flowing with nothing pushed: the stream still reports 'end' and 'close' when they come.
    this.stream.resume();
    this.#socket.resume();
  }

  /** Lets go of the socket (the command's copy stays open until it exits). */
  destroy(): void {
    this.#socket.destroy();
    this.stream.destroy();
  }
}

/**
 * A connected pair of Unix stream sockets: the end for the command's stdout (give it to
 * `spawn` as `stdio[1]`, then destroy it: the child has its own copy), and this side's
 * {@link SocketStdout}. Rejects when the pair cannot be made (e.g. no writable temporary
 * folder); callers fall back to a plain pipe.
 *
 * @example
 * ```ts
 * const pair = await openSocketStdout().catch(() => undefined);
 * const child = spawn("cat", [], { stdio: ["pipe", pair?.childEnd ?? "pipe", "pipe"] });
 * pair?.childEnd.destroy();
 * const stdout = pair?.stdout.stream ?? child.stdout;
 * ```
 */
export async function openSocketStdout(): Promise<{ childEnd: Socket; stdout: SocketStdout }> {
  // Synchronous file calls: each is microseconds, where fs/promises' first use costs
  // milliseconds in a fresh process (the CLI spawns one agent and exits).
  const dir = mkdtempSync(join(tmpdir(), "sremote-out-"));
  const path = join(dir, "s");
  const server = createServer({ pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
    const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
    let ours: Socket | undefined;
    const stdout = new SocketStdout((onread) => {
      ours = connect({ path, onread });
      return ours;
    });
    // Until the caller has the stream, a failed connect must not be an unhandled 'error'.
    const ignore = () => {};
    stdout.stream.on("error", ignore);
    let childEnd: Socket;
    try {
      [childEnd] = await Promise.all([
        accepted,
        new Promise<void>((resolve, reject) => {
          ours!.once("connect", resolve);
          ours!.once("error", reject);
        }),
      ]);
    } catch (err) {
      stdout.destroy(); // its 'error', if any, still meets `ignore`
      throw err;
    }
    stdout.stream.off("error", ignore);
    return { childEnd, stdout };
  } finally {
    server.close();
    try {
      unlinkSync(path);
    } catch {
      // never bound, or already gone
    }
    try {
      rmdirSync(dir);
    } catch {
      // left for the system's temporary-file cleaning; nothing else can connect through it
    }
  }
}
