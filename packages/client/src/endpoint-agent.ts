import { AGENT_VERSION, agentManifest, readRemoteManifest, syncAgent } from "@sremote/agent";
import {
  type Connector,
  hasErrorCode,
  type OperationOptions,
  type RemoteLayout,
  RemoteNotSetupError,
} from "@sremote/core";
import type { Logger } from "./logger.js";

/**
 * Makes the endpoint's agent files those of `agentDir` (the client's own by default) before
 * the first call, uploading only what differs (the client's `autoInstallAgent`).
 *
 * @throws RemoteNotSetupError when they differ and this account cannot write there.
 */
export async function ensureAgent(
  connector: Connector,
  layout: RemoteLayout,
  agentDir: string | undefined,
  logger: Logger,
  op: OperationOptions,
): Promise<void> {
  const [remote, local] = await Promise.all([
    readRemoteManifest(connector, layout.endpointDir, op),
    agentManifest(agentDir),
  ]);
  if (remote && sameManifest(remote.files, local.files)) return;
  logger.info?.(
    remote
      ? `updating the agent in ${layout.endpointDir} (${remote.version} → ${AGENT_VERSION})`
      : `uploading the agent to ${layout.endpointDir}`,
  );
  try {
    await syncAgent(connector, layout.endpointDir, { ...op, agentDir: agentDir });
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
