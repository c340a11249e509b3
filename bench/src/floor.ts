import type { Connector, RemoteProcess } from "@sremote/core";
import { encodeFrame, FrameDecoder, TickBatcher } from "@sremote/protocol";

/**
 * The floor: the least any framed request/response over this connector's process pipes
 * can cost — a minimal Python loop echoing length-prefixed frames. No decoding, no call.
 */
export const ECHO_LOOP = [
  "import sys, os",
  "r = sys.stdin.buffer",
  "w = os.fdopen(os.dup(1), 'wb', 0)",
  "while True:",
  "    h = r.read(4)",
  "    if len(h) < 4: break",
  "    p = r.read(int.from_bytes(h, 'big'))",
  "    w.write(h + p)",
].join("\n");

/** One echo process; `roundTrip` sends a frame and resolves with its echo (FIFO). */
export class EchoFloor {
  readonly #process: RemoteProcess;
  readonly #decoder = new FrameDecoder();
  readonly #waiting: ((frame: Uint8Array) => void)[] = [];
  readonly #out: TickBatcher;

  private constructor(process: RemoteProcess) {
    this.#process = process;
    // Same write batching as the session carrier: the frames of one tick leave as one buffer.
    this.#out = new TickBatcher((bytes) => process.stdin.write(bytes));
    process.stdout.on("data", (chunk: Buffer) => {
      for (const frame of this.#decoder.push(chunk)) this.#waiting.shift()?.(frame);
    });
  }

  static async start(connector: Connector, python: string): Promise<EchoFloor> {
    if (!connector.spawn) throw new Error(`${connector.name} cannot spawn: no floor`);
    return new EchoFloor(await connector.spawn([python, "-c", ECHO_LOOP]));
  }

  roundTrip(payload: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve) => {
      this.#waiting.push(resolve);
      this.#out.push(encodeFrame(payload));
    });
  }

  async close(): Promise<void> {
    this.#process.stdin.end();
    await this.#process.exited;
  }
}
