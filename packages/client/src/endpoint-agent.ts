import { AGENT_VERSION, agentManifest, readRemoteManifest, syncAgent } from "@sremote/agent";
import {
  type Connector,
  hasErrorCode,
  type OperationOptions,
  type RemoteLayout,
  RemoteNotSetupError,
} from "@sremote/core";
import type { Logger } from "./logger.js";
import type { AgentSession } from "./session.js";

/**
 * Makes the endpoint's agent files those of `agentDir` (the client's own by default) before
 * the first call, uploading only what differs (the client's `autoInstallAgent`). Resolves
 * `true` when it changed them (an agent started before then runs old files), `false` when
 * they were current. `early`, an agent started meanwhile, is discarded unless they were current.
 *
 * @throws RemoteNotSetupError when they differ and this account cannot write there.
 */
export async function ensureAgent(
  connector: Connector,
  layout: RemoteLayout,
  agentDir: string | undefined,
  logger: Logger,
  op: OperationOptions,
  early?: EarlySession | undefined,
): Promise<boolean> {
  try {
    const updated = await syncIfStale(connector, layout, agentDir, logger, op);
    if (updated) early?.discard();
    return updated;
  } catch (err) {
    early?.discard();
    throw err;
  }
}

async function syncIfStale(
  connector: Connector,
  layout: RemoteLayout,
  agentDir: string | undefined,
  logger: Logger,
  op: OperationOptions,
): Promise<boolean> {
  const [remote, local] = await Promise.all([
    readRemoteManifest(connector, layout.endpointDir, op),
    agentManifest(agentDir),
  ]);
  if (remote && sameManifest(remote.files, local.files)) return false;
  logger.info?.(
    remote
      ? `updating the agent in ${layout.endpointDir} (${remote.version} → ${AGENT_VERSION})`
      : `uploading the agent to ${layout.endpointDir}`,
  );
  try {
    await syncAgent(connector, layout.endpointDir, { ...op, agentDir: agentDir });
    return true;
  } catch (err) {
    if (hasErrorCode(err, "PERMISSION_DENIED")) {
      throw new RemoteNotSetupError(
        `the agent in ${layout.endpointDir} is ${remote ? `version ${remote.version}` : "missing"} and this account cannot write there (a shared endpoint?): ask its owner to run \`sremote install\`, or pass autoInstallAgent: false to use it as it is`,
        { code: remote ? "VERSION_MISMATCH" : "NOT_SET_UP", cause: err },
      );
    }
    throw err;
  }
}

function sameManifest(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * An agent session started beside {@link ensureAgent}'s manifest read (both need only the
 * connection, so the exec channel and the interpreter start overlap the SFTP read). It is
 * handed to the pool only when the check found the files current; otherwise — files
 * updated, check failed, client closed — it is ended unused, so a stale agent never
 * answers a call. A failed early start is not an error: the pool starts again and reports.
 */
export class EarlySession {
  readonly #abort = new AbortController();
  readonly #session: Promise<AgentSession | undefined>;
  #taken = false;

  constructor(start: (signal: AbortSignal) => Promise<AgentSession>) {
    this.#session = start(this.#abort.signal).catch(() => undefined);
  }

  /** The session for the pool (once); after {@link EarlySession.discard}, undefined. */
  take(): Promise<AgentSession | undefined> | undefined {
    if (this.#taken) return undefined;
    this.#taken = true;
    return this.#session;
  }

  /** Ends the session unused (idempotent; a no-op once taken). */
  discard(): void {
    if (this.#taken) return;
    this.#taken = true;
    this.#abort.abort();
    void this.#session.then((s) => s?.kill(new Error("an early agent start was discarded")));
  }
}
