import { randomBytes } from "node:crypto";
import {
  type Connector,
  ConnectorError,
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
        throw noResponse(this.#connector.name, this.#layout, run, err);
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
