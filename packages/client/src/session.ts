import type { AgentCommand } from "@sremote/core";
import {
  type Connector,
  ConnectorError,
  deadline,
  ProtocolError,
  RemoteNotSetupError,
  type RemoteProcess,
  SremoteError,
} from "@sremote/core";
import {
  type AgentInfo,
  type AgentMessage,
  type CallMessage,
  decodeAgentMessage,
  encodeFrame,
  encodeMessage,
  encodeMessageFrameParts,
  FrameDecoder,
  type ProbeMessage,
  type ResultMessage,
  TickBatcher,
} from "@sremote/protocol";
import { awaitHello } from "./agent-hello.js";
import type { Logger } from "./logger.js";

const STDERR_TAIL_BYTES = 64 * 1024;
/** Reads smaller than this go to a reused scratch buffer rather than into their frame. */
const SCRATCH_BYTES = 64 * 1024;
/** decodeAgentMessage's options, made once (not per frame). */
const OWNED = { ownsBuffer: true } as const;
const SHARED = { ownsBuffer: false } as const;

/** Receives `output` frames of a streaming call. */
export type OutputListener = (stream: "stdout" | "stderr", data: string) => void;

/** Receives the outcome of one request sent with {@link AgentSession.send}. */
export interface RequestHandler {
  resolve(result: ResultMessage): void;
  reject(error: Error): void;
  onOutput?: OutputListener | undefined;
}

/** Facts needed to start one agent session. */
export interface AgentSessionOptions {
  connector: Connector;
  command: AgentCommand;
  loginEnv?: boolean | undefined;
  maxFrameBytes: number;
  /** How long to wait for the agent's `hello` frame. */
  startTimeoutMs: number;
  /** The protocol major version this client speaks. */
  protocol: number;
  logger: Logger;
  signal?: AbortSignal | undefined;
}

/**
 * One long-lived agent speaking framed MessagePack over a spawned process's stdin/stdout.
 * Requests are matched to results by id, so many can be in flight.
 */
export class AgentSession {
  /** The agent's `hello` facts. */
  readonly info: AgentInfo;
  /** True while the session takes new requests. */
  accepting = true;

  readonly #process: RemoteProcess;
  readonly #pending = new Map<string, RequestHandler>();
  readonly #decoder: FrameDecoder;
  readonly #logger: Logger;
  #stderr: Buffer[] = [];
  #stderrBytes = 0;
  #ended: Error | undefined;
  /** Sends the frames written in one tick as one buffer. */
  readonly #out: TickBatcher;
  /** The connector's name, for the errors this session raises. */
  readonly #connectorName: string;
  /** The frame limit, checked on what this side sends too: the agent would drop the session. */
  readonly #maxFrameBytes: number;
  /** Settles once the process has exited and every pending request has settled. */
  readonly closed: Promise<void>;

  private constructor(
    process: RemoteProcess,
    decoder: FrameDecoder,
    info: AgentInfo,
    logger: Logger,
    stderr: Buffer[],
    connectorName: string,
    maxFrameBytes: number,
  ) {
    this.#process = process;
    this.#connectorName = connectorName;
    this.#maxFrameBytes = maxFrameBytes;
    this.#out = new TickBatcher((bytes) => process.stdin.write(bytes));
    this.#decoder = decoder;
    this.info = info;
    this.#logger = logger;
    for (const chunk of stderr) this.#keepStderr(chunk);
    if (process.readStdoutInto) {
      // Reads land in the frame being assembled when there is one big enough, else in one
      // reused scratch buffer (its frames are decoded, and copied from, before the next read).
      const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
      process.readStdoutInto({
        buffer: () => {
          const target = decoder.readTarget();
          return target !== null && target.byteLength >= SCRATCH_BYTES ? target : scratch;
        },
        onData: (bytes) => this.#onData(bytes),
      });
    } else {
      process.stdout.on("data", (chunk: Buffer) => this.#onData(chunk));
    }
    process.stderr.on("data", (chunk: Buffer) => this.#keepStderr(chunk));
    process.stdin.on("error", () => {
      // EPIPE when the agent died: reported through `exited`.
    });
    this.closed = process.exited.then((exit) => {
      const error =
        this.#ended ??
        (exit.error
          ? new ConnectorError(
              exit.error.code === "CLOSED" ? "CLOSED" : "CONNECTION_LOST",
              this.#connectorName,
              `agent session lost: ${exit.error.message}${this.#stderrSuffix()}`,
              { cause: exit.error, details: { stderr: this.stderrTail() } },
            )
          : undefined) ??
        new ConnectorError(
          "CONNECTION_LOST",
          this.#connectorName,
          `agent session ended unexpectedly (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`})${this.#stderrSuffix()}`,
          { details: { exitCode: exit.exitCode, signal: exit.signal, stderr: this.stderrTail() } },
        );
      this.#end(error);
    });
  }

  /**
   * Starts the agent and waits for its `hello`.
   *
   * @throws RemoteNotSetupError when the agent does not start or speaks another protocol version.
   */
  static async start(options: AgentSessionOptions): Promise<AgentSession> {
    const { connector, command } = options;
    if (!connector.spawn)
      throw new ConnectorError("UNSUPPORTED", connector.name, "this connector cannot spawn processes");
    const d = deadline({ signal: options.signal, timeoutMs: options.startTimeoutMs });
    try {
      const proc = await connector.spawn(command.argv, {
        env: command.env,
        loginEnv: options.loginEnv,
        signal: d.signal,
      });
      const stderr: Buffer[] = [];
      const onErr = (chunk: Buffer) => stderr.push(chunk);
      proc.stderr.on("data", onErr);
      try {
        const hello = await awaitHello(proc, d, options.logger, () =>
          Buffer.concat(stderr).toString("utf8").slice(-4000).trim(),
        );
        if (hello.protocol !== options.protocol) {
          throw new RemoteNotSetupError(
            `the remote agent speaks protocol ${hello.protocol} (agent ${hello.version}), this client speaks ${options.protocol}: reinstall the agent (sremote install <target>, or let the client upload it with autoInstallAgent)`,
            { code: "VERSION_MISMATCH", details: { agent: hello } },
          );
        }
        proc.stderr.off("data", onErr);
        // Views, not copies: each frame is decoded at once, and decoding copies what it keeps.
        const decoder = new FrameDecoder({ maxFrameBytes: options.maxFrameBytes, views: true });
        return new AgentSession(proc, decoder, hello, options.logger, stderr, connector.name, options.maxFrameBytes);
      } catch (err) {
        proc.kill("SIGKILL");
        throw err;
      }
    } finally {
      d.dispose();
    }
  }

  /** Number of requests sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** True until the agent process has ended. */
  get alive(): boolean {
    return this.#ended === undefined;
  }

  /** Ids of the requests still waiting for their result. */
  pendingIds(): string[] {
    return [...this.#pending.keys()];
  }

  /** The last 64 KiB the agent wrote to its stderr (its diagnostics). */
  stderrTail(): string {
    return Buffer.concat(this.#stderr).toString("utf8");
  }

  /**
   * Sends a call or probe; `handler` learns its result, or why it failed (the session ended
   * first, the message cannot be encoded, a duplicate id): never synchronously, so a caller may
   * send from inside a loop over its own queue. No promise: that would cost the per-call path
   * a promise and a microtask.
   */
  send(message: CallMessage | ProbeMessage, handler: RequestHandler): void {
    let failure: Error | undefined = this.#ended;
    if (!failure && this.#pending.has(message.id)) {
      failure = new SremoteError("INTERNAL", `duplicate call id ${message.id} on one session (a client bug)`);
    }
    let parts: Uint8Array[] | undefined;
    if (!failure) {
      try {
        // Over the limit: a UsageError for this call alone (the agent would refuse the frame
        // and end the session, failing every call on it). Large bytes arguments are written
        // from the caller's memory, not copied into the frame.
        parts = encodeMessageFrameParts(message, { maxFrameBytes: this.#maxFrameBytes });
      } catch (err) {
        failure = err as Error;
      }
    }
    if (failure || !parts) {
      const error = failure as Error;
      queueMicrotask(() => handler.reject(error));
      return;
    }
    this.#pending.set(message.id, handler);
    this.#out.pushParts(parts);
  }

  /** Asks the agent to cancel a call (answered by the call's result). */
  cancel(id: string): void {
    if (!this.#ended && this.#pending.has(id)) this.#write(encodeFrame(encodeMessage({ v: 1, kind: "cancel", id })));
  }

  /** Asks the agent to finish its work and exit; kills it after `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    if (!this.#ended) {
      this.#write(encodeFrame(encodeMessage({ v: 1, kind: "shutdown" })));
      this.#out.flush(); // before the end of input, not in the next tick
      this.#process.stdin.end();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    });
    const late = await Promise.race([this.closed.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      this.kill(
        new ConnectorError("CLOSED", this.#connectorName, "the agent session was closed before the call finished"),
      );
      await this.closed;
    }
  }

  /** Ends the agent now; pending requests reject with `reason`. */
  kill(reason: Error): void {
    this.accepting = false;
    if (!this.#ended) this.#ended = reason;
    this.#process.kill("SIGKILL");
  }

  #write(frame: Uint8Array): void {
    this.#out.push(frame); // the frames of one tick leave in one write
  }

  #onData(chunk: Uint8Array): void {
    if (this.#ended) return;
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    for (const frame of frames) {
      let msg: AgentMessage;
      try {
        // A frame spread over several reads was assembled in a buffer of its own, which
        // nothing else holds: its large bins can stay in it instead of being copied out.
        msg = decodeAgentMessage(frame, this.#decoder.isAssembled(frame) ? OWNED : SHARED);
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      this.#dispatch(msg);
    }
  }

  #dispatch(msg: AgentMessage): void {
    switch (msg.kind) {
      case "result": {
        if (msg.id === "" && !msg.ok) {
          this.#fail(new ProtocolError(`the agent reported a protocol error: ${msg.error?.message ?? "unknown"}`));
          return;
        }
        const pending = this.#pending.get(msg.id);
        if (!pending) {
          this.#logger.warn?.("result for an unknown call id ignored", { id: msg.id });
          return;
        }
        this.#pending.delete(msg.id);
        pending.resolve(msg);
        return;
      }
      case "output":
        this.#pending.get(msg.id)?.onOutput?.(msg.stream, msg.data);
        return;
      case "pong":
        return; // this client sends no pings (the protocol allows them; nothing waits for one)
      case "hello":
        this.#fail(new ProtocolError("the agent sent a second hello"));
        return;
    }
  }

  #fail(error: Error): void {
    const wrapped =
      error instanceof ProtocolError
        ? new ProtocolError(`${error.message}${this.#stderrSuffix()}`, { cause: error })
        : new ProtocolError(`bad data from the agent: ${error.message}${this.#stderrSuffix()}`, { cause: error });
    this.kill(wrapped);
  }

  #end(error: Error): void {
    this.accepting = false;
    this.#ended ??= error;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.reject(this.#ended);
  }

  #stderrSuffix(): string {
    const tail = this.stderrTail().trim();
    return tail ? `; agent stderr: ${tail.slice(-2000)}` : "";
  }

  #keepStderr(chunk: Buffer): void {
    this.#stderr.push(chunk);
    this.#stderrBytes += chunk.length;
    while (this.#stderrBytes > STDERR_TAIL_BYTES && this.#stderr.length > 1) {
      this.#stderrBytes -= (this.#stderr.shift() as Buffer).length;
    }
  }
}
