import { randomBytes } from "node:crypto";
import { setMaxListeners } from "node:events";
import {
  type Connector,
  ConnectorError,
  type ConnectorErrorCode,
  hasErrorCode,
  type Launcher,
  type OperationOptions,
  ProtocolError,
  posixJoin,
  type RemoteLayout,
  RemoteNotSetupError,
  UsageError,
} from "@sremote/core";
import {
  type CallMessage,
  DEFAULT_MAX_FRAME_BYTES,
  decodeAgentMessage,
  encodeMessage,
  type ProbeMessage,
  type ResultMessage,
} from "@sremote/protocol";
import { type AgentCommandOptions, fileCommand, type LearnedPython } from "./agent-command.js";
import type { Logger } from "./logger.js";
import type { RemoteClientOptions } from "./options.js";

/** A fresh random file-carrier id: 32 hex characters. */
export function randomCallId(): string {
  return randomBytes(16).toString("hex");
}

/**
 * The seed's protocol over any connector: upload the request, run interpreter.sh, download
 * the result, delete both files (also on failure). Starts Python once per call.
 */
export class FileCarrier {
  readonly #connector: Connector;
  readonly #layout: RemoteLayout;
  readonly #command: AgentCommandOptions;
  readonly #loginEnv: boolean;
  readonly #logger: Logger;
  #tmpReady = false;
  readonly #maxFrameBytes: number;
  /** Whether this client's first call (which asks the agent to sweep stale temp files) went out. */
  #swept = false;
  /** Cleanups still running, awaited by {@link FileCarrier.drain}. */
  readonly #cleanups = new Set<Promise<void>>();
  /** Calls still running, which {@link FileCarrier.close} waits for or stops. */
  readonly #running = new Set<Promise<unknown>>();
  /** Aborted by {@link FileCarrier.close} when running calls outlast its grace. */
  readonly #closeAbort = new AbortController();

  constructor(options: {
    connector: Connector;
    layout: RemoteLayout;
    command: AgentCommandOptions;
    loginEnv: boolean;
    logger: Logger;
    /** The client's `maxFrameBytes`: the most a request or a response may take (default 256 MiB). */
    maxFrameBytes?: number | undefined;
  }) {
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#connector = options.connector;
    this.#layout = options.layout;
    this.#command = options.command;
    this.#loginEnv = options.loginEnv;
    this.#logger = options.logger;
    // Every running call listens on this signal (one listener per operation): as many as the
    // caller runs at once, which is not a leak. Without this Node warns past 10.
    setMaxListeners(0, this.#closeAbort.signal);
  }

  /** Runs one call or probe. The message id names the files: it must be 32 random hex chars. */
  run(message: CallMessage | ProbeMessage, options: OperationOptions = {}): Promise<ResultMessage> {
    if (this.#closeAbort.signal.aborted) {
      return Promise.reject(new ConnectorError("CLOSED", this.#connector.name, "the client is closed"));
    }
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.#closeAbort.signal])
      : this.#closeAbort.signal;
    const running = this.#run(message, { ...options, signal }).catch((err: unknown) => {
      if (this.#closeAbort.signal.aborted && !options.signal?.aborted) {
        throw new ConnectorError("CLOSED", this.#connector.name, "the client was closed before the call finished", {
          cause: err,
        });
      }
      throw err;
    });
    this.#running.add(running);
    const forget = () => this.#running.delete(running);
    running.then(forget, forget);
    return running;
  }

  /**
   * Lets running calls finish for up to `graceMs`, then stops them (their remote process is
   * ended through the connector) — and in both cases deletes their request and response
   * files while the connector is still open.
   */
  async close(graceMs: number): Promise<void> {
    if (this.#running.size > 0) {
      const settled = Promise.allSettled([...this.#running]);
      const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([settled, timer]);
      this.#closeAbort.abort();
      await settled;
    } else {
      this.#closeAbort.abort();
    }
    await this.drain();
  }

  async #run(message: CallMessage | ProbeMessage, options: OperationOptions): Promise<ResultMessage> {
    // The call's budget travels with it: an agent whose client is gone ends the call then.
    // `inlineReply`: the agent removes the request once read and answers on its stdout (one
    // upload and one exec per call); `sweep`, on a client's first call: it removes the temp
    // files of clients that are gone (docs/reliability.md). Agents before these keys ignore
    // them, and the response file is read as in the seed's flow.
    const timeoutMs = options.timeoutMs;
    const sweep = !this.#swept;
    this.#swept = true;
    const request = encodeMessage({
      ...message,
      ...(message.kind === "call" && timeoutMs !== undefined && timeoutMs > 0
        ? { timeoutMs: Math.ceil(timeoutMs) }
        : {}),
      inlineReply: INLINE_REPLY_BYTES,
      maxFrameBytes: this.#maxFrameBytes,
      ...(sweep ? { sweep: true } : {}),
    } as unknown as CallMessage);
    if (request.length > this.#maxFrameBytes) {
      // As on a session: this call alone fails, before anything was sent.
      throw new UsageError(
        `message of ${request.length} bytes exceeds the frame limit of ${this.#maxFrameBytes} bytes (maxFrameBytes)`,
      );
    }
    const reqPath = posixJoin(this.#layout.tmpDir, `${message.id}.req`);
    const respPath = posixJoin(this.#layout.tmpDir, `${message.id}.resp`);
    // What may be left when the call ends: all three unless the agent said otherwise.
    let leftovers = [reqPath, respPath, `${respPath}.part`];
    try {
      await this.#upload(reqPath, request, options);
      const command = fileCommand(this.#layout, reqPath, respPath, this.#command);
      const run = await this.#connector.exec(command.argv, {
        env: command.env,
        loginEnv: this.#loginEnv,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
      const reply = inlineReply(run.stdout);
      let bytes: Uint8Array;
      if (reply !== undefined && reply !== "file") {
        leftovers = [];
        bytes = reply;
      } else {
        if (reply === "file") leftovers = [respPath];
        try {
          bytes = await this.#connector.getFile(respPath, options);
        } catch (err) {
          if (!hasErrorCode(err, "FILE_NOT_FOUND")) throw afterTheCallRan(err);
          throw noResponse(this.#connector.name, this.#layout, run, err);
        }
      }
      let msg: ReturnType<typeof decodeAgentMessage>;
      try {
        msg = decodeAgentMessage(bytes);
      } catch (err) {
        throw new ProtocolError(
          `the agent's response could not be decoded (${(err as Error).message}; interpreter.sh ${exitText(run)})`,
          { cause: err },
        );
      }
      if (msg.kind !== "result" || msg.id !== message.id) {
        throw new ProtocolError(`expected the result of ${message.id}, got ${msg.kind}`);
      }
      return msg;
    } finally {
      if (leftovers.length > 0) this.#cleanup(leftovers);
    }
  }

  /** Waits for the background deletions of request/response files. */
  async drain(): Promise<void> {
    while (this.#cleanups.size > 0) await Promise.allSettled([...this.#cleanups]);
  }

  async #upload(path: string, data: Uint8Array, options: OperationOptions): Promise<void> {
    if (!this.#tmpReady) {
      try {
        await this.#connector.putFile(path, data, { ...options, mode: 0o600 });
        this.#tmpReady = true;
        return;
      } catch (err) {
        // The seed's behaviour: create the temp folder on demand, only when it is missing.
        if (!hasErrorCode(err, "FILE_NOT_FOUND")) throw err;
      }
      const mk = await this.#connector.exec(["mkdir", "-p", "-m", "700", this.#layout.tmpDir], options);
      if (mk.exitCode !== 0) {
        throw new RemoteNotSetupError(
          `cannot create the temp folder ${this.#layout.tmpDir}: ${mk.stderr.trim() || `mkdir exited ${mk.exitCode}`}`,
          { details: { exitCode: mk.exitCode, stderr: mk.stderr } },
        );
      }
      this.#tmpReady = true;
    }
    await this.#connector.putFile(path, data, { ...options, mode: 0o600 });
  }

  #cleanup(paths: string[]): void {
    // Deleting is not part of the caller's deadline: a timed-out call must still clean up.
    // One batched deletion where the connector has it (one command for all three files).
    const connector = this.#connector;
    const warn = (err: unknown) => {
      this.#logger.warn?.("could not delete a temp file", { paths, error: String(err) });
    };
    const work = (
      connector.deleteFiles
        ? connector.deleteFiles(paths, { timeoutMs: 60_000 }).catch(warn)
        : Promise.all(paths.map((p) => connector.deleteFile(p, { timeoutMs: 60_000 }).catch(warn)))
    ).then(() => undefined);
    this.#cleanups.add(work);
    work.finally(() => this.#cleanups.delete(work));
  }
}

/**
 * Responses up to this size come back inline on the agent's stdout (base64, one line);
 * bigger ones through the response file, whose download then costs little beside the
 * transfer itself (docs/reliability.md has the measurements).
 */
export const INLINE_REPLY_BYTES = 1024 * 1024;

const REPLY_LINE_START = "sremote-reply";
const REPLY_PREFIX = "sremote-reply:";
const REPLY_IN_FILE = "sremote-reply-file";

/**
 * The agent's reply line in a file-carrier command's stdout: the response bytes, `"file"`
 * when it wrote the response file instead, `undefined` when there is no reply line (an agent
 * of the seed's flow, or one that died before answering). The last reply line counts,
 * wherever it is: a login shell's profile may print before the agent starts, and a
 * connector's wrapper after it. (What calls print never reaches this stdout: the agent
 * captures it.)
 */
export function inlineReply(stdout: string): Uint8Array | "file" | undefined {
  let at = stdout.lastIndexOf(REPLY_LINE_START);
  while (at > 0 && stdout.charCodeAt(at - 1) !== 10) at = stdout.lastIndexOf(REPLY_LINE_START, at - 1);
  if (at < 0) return undefined;
  let end = stdout.indexOf("\n", at);
  if (end < 0) end = stdout.length;
  if (stdout.startsWith(REPLY_PREFIX, at)) return Buffer.from(stdout.slice(at + REPLY_PREFIX.length, end), "base64");
  if (end - at === REPLY_IN_FILE.length && stdout.startsWith(REPLY_IN_FILE, at)) return "file";
  return undefined;
}

/**
 * `err` from reading the response, when the function has already run: a transport failure
 * the connector calls retryable ("safe to repeat" for the download itself) must not reach
 * the caller as retryable, or a caller that retries on `retryable` runs the function twice.
 */
function afterTheCallRan(err: unknown): unknown {
  if (!(err instanceof ConnectorError) || !err.retryable) return err;
  const prefix = `${err.connector}: `;
  const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
  return new ConnectorError(
    err.code as ConnectorErrorCode,
    err.connector,
    `${message} (reading the response, after the function ran: not retryable)`,
    { cause: err, details: err.details, retryable: false },
  );
}

type CommandOutcome = { exitCode: number | null; signal: string | null; stdout: string; stderr: string };

function exitText(run: CommandOutcome): string {
  return run.signal ? `killed by ${run.signal}` : `exited ${run.exitCode}`;
}

/**
 * No response file. Either the endpoint is not set up — the shell found no interpreter.sh
 * (exit 127, or a shell message naming it), interpreter.sh found no Python (exit 4) or no
 * agent, which it says on stderr as `sremote: …` — or the agent started and ended without answering (killed, `os._exit`):
 * then the call may have run, as when a session's agent dies, and it is `CONNECTION_LOST`,
 * not retryable.
 */
function noResponse(
  connectorName: string,
  layout: RemoteLayout,
  run: CommandOutcome,
  cause: unknown,
): RemoteNotSetupError | ConnectorError {
  const stderr = run.stderr.trim();
  const details = { exitCode: run.exitCode, signal: run.signal, stdout: run.stdout, stderr: run.stderr };
  const setupProblem =
    run.signal === null &&
    (run.exitCode === 127 || run.exitCode === 4 || /^sremote: /m.test(stderr) || /interpreter\.sh/.test(stderr));
  if (run.signal === null && run.exitCode === 5) {
    // The agent ran the call but could not write its response: the temp folder is full,
    // over quota, read-only or not writable (its stderr line names which).
    return new ConnectorError(
      "REMOTE_IO",
      connectorName,
      `the agent could not write its response in ${layout.tmpDir} (full, over quota or read-only?); the call ran${stderr ? `: ${stderr.slice(-2000)}` : ""}`,
      { cause, details },
    );
  }
  if (!setupProblem) {
    return new ConnectorError(
      "CONNECTION_LOST",
      connectorName,
      `the agent ended without writing a response (interpreter.sh ${exitText(run)}); the call may have run${stderr ? `: ${stderr.slice(-2000)}` : ""}`,
      { cause, details },
    );
  }
  const hint =
    run.exitCode === 127 || /interpreter\.sh/.test(stderr)
      ? ` Is SRemote installed in ${layout.endpointDir}? Run \`sremote install <target>\`.`
      : "";
  return new RemoteNotSetupError(
    `the agent wrote no response (interpreter.sh ${exitText(run)})${stderr ? `: ${stderr.slice(-2000)}` : ""}.${hint}`,
    { cause, details },
  );
}

/**
 * The client's file carrier, with its options. The interpreter is read per call: a session
 * agent of the same client may have told where Python is since (LearnedPython).
 */
export function clientFileCarrier(facts: {
  options: RemoteClientOptions;
  connector: Connector;
  layout: RemoteLayout;
  logger: Logger;
  launcher: Launcher | undefined;
  learnedPython: LearnedPython;
  nextFileSlot: () => number;
}): FileCarrier {
  const { options, launcher, learnedPython } = facts;
  return new FileCarrier({
    connector: facts.connector,
    layout: facts.layout,
    command: {
      get python() {
        return learnedPython.pythonFor(options.python, launcher);
      },
      launcher,
      nextFileSlot: facts.nextFileSlot,
    },
    loginEnv: options.loginEnv ?? false,
    logger: facts.logger,
    maxFrameBytes: options.maxFrameBytes,
  });
}
