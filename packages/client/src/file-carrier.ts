import { randomBytes } from "node:crypto";
import {
  type Connector,
  hasErrorCode,
  type OperationOptions,
  ProtocolError,
  posixJoin,
  type RemoteLayout,
  RemoteNotSetupError,
} from "@sremote/core";
import {
  type CallMessage,
  decodeAgentMessage,
  encodeMessage,
  type ProbeMessage,
  type ResultMessage,
} from "@sremote/protocol";
import { type AgentCommandOptions, fileCommand } from "./agent-command.js";
import type { Logger } from "./logger.js";

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
  /** Cleanups still running, awaited by {@link FileCarrier.drain}. */
  readonly #cleanups = new Set<Promise<void>>();

  constructor(options: {
    connector: Connector;
    layout: RemoteLayout;
    command: AgentCommandOptions;
    loginEnv: boolean;
    logger: Logger;
  }) {
    this.#connector = options.connector;
    this.#layout = options.layout;
    this.#command = options.command;
    this.#loginEnv = options.loginEnv;
    this.#logger = options.logger;
  }

  /** Runs one call or probe. The message id names the files: it must be 32 random hex chars. */
  async run(message: CallMessage | ProbeMessage, options: OperationOptions = {}): Promise<ResultMessage> {
    const request = encodeMessage(message);
    const reqPath = posixJoin(this.#layout.tmpDir, `${message.id}.req`);
    const respPath = posixJoin(this.#layout.tmpDir, `${message.id}.resp`);
    try {
      await this.#upload(reqPath, request, options);
      const command = fileCommand(this.#layout, reqPath, respPath, this.#command);
      const run = await this.#connector.exec(command.argv, {
        env: command.env,
        loginEnv: this.#loginEnv,
        signal: options.signal,
        timeoutMs: options.timeoutMs,
      });
      let bytes: Uint8Array;
      try {
        bytes = await this.#connector.getFile(respPath, options);
      } catch (err) {
        if (!hasErrorCode(err, "FILE_NOT_FOUND")) throw err;
        throw notSetUp(this.#layout, run, "the agent wrote no response", err);
      }
      try {
        const msg = decodeAgentMessage(bytes);
        if (msg.kind !== "result" || msg.id !== message.id) {
          throw new ProtocolError(`expected the result of ${message.id}, got ${msg.kind}`);
        }
        return msg;
      } catch (err) {
        throw notSetUp(this.#layout, run, `the agent's response could not be decoded (${(err as Error).message})`, err);
      }
    } finally {
      this.#cleanup([reqPath, respPath, `${respPath}.part`]);
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
    const work = Promise.all(
      paths.map((p) =>
        this.#connector.deleteFile(p, { timeoutMs: 60_000 }).catch((err: unknown) => {
          this.#logger.warn?.("could not delete a temp file", { path: p, error: String(err) });
        }),
      ),
    ).then(() => undefined);
    this.#cleanups.add(work);
    work.finally(() => this.#cleanups.delete(work));
  }
}

function notSetUp(
  layout: RemoteLayout,
  run: { exitCode: number | null; signal: string | null; stdout: string; stderr: string },
  what: string,
  cause: unknown,
): RemoteNotSetupError {
  const stderr = run.stderr.trim();
  const hint =
    run.exitCode === 127 || /interpreter\.sh/.test(stderr)
      ? ` Is SRemote installed in ${layout.endpointDir}? Run \`sremote install <target>\`.`
      : "";
  return new RemoteNotSetupError(
    `${what} (interpreter.sh ${run.signal ? `killed by ${run.signal}` : `exited ${run.exitCode}`})${stderr ? `: ${stderr.slice(-2000)}` : ""}.${hint}`,
    { cause, details: { exitCode: run.exitCode, signal: run.signal, stdout: run.stdout, stderr: run.stderr } },
  );
}
