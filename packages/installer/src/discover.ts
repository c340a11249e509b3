import { type AgentManifest, readRemoteManifest } from "@sremote/agent";
import { type Connector, hasErrorCode, type OperationOptions, posixJoin, type RemoteLayout } from "@sremote/core";
import { InstallError } from "./errors.js";
import { currentLayout, readCurrentLocation, remotePath } from "./paths.js";
import { MARKER_FILE, STATE_FILE } from "./scripts.js";
import { type InstallState, parseState } from "./state.js";

/** Options of {@link discover}. */
export interface DiscoverOptions extends OperationOptions {
  /** Use this layout instead of reading `.location` (a target that carries one). */
  layout?: RemoteLayout | undefined;
}

/** What {@link discover} found. */
export interface DiscoverResult {
  homeDir: string;
  layout: RemoteLayout;
  /** Where the layout came from. */
  source: "location" | "default" | "given";
  /** `~/.sremote/.location`. */
  locationPath: string;
  /** The installer's record, `null` when the endpoint has none. */
  state: InstallState | null;
  /** The completion marker is present: the last install finished. */
  complete: boolean;
  /** The agent manifest in the endpoint, `null` when there is none. */
  agent: AgentManifest | null;
}

async function exists(connector: Connector, path: string, options: OperationOptions): Promise<string | null> {
  try {
    return new TextDecoder().decode(await connector.getFile(path, options));
  } catch (err) {
    if (hasErrorCode(err, "FILE_NOT_FOUND")) return null;
    throw err;
  }
}

/**
 * Finds the user's endpoint (the seed's self-discovery through `~/.sremote/.location`) and
 * reads what the installer recorded there. Changes nothing.
 *
 * @throws InstallError (`INVALID_ARGUMENT`) for an invalid `.location`; ConnectorError for
 *   transport failures.
 */
export async function discover(connector: Connector, options: DiscoverOptions = {}): Promise<DiscoverResult> {
  const op = { signal: options.signal, timeoutMs: options.timeoutMs };
  const homeDir = await connector.homeDir(op);
  const current = await readCurrentLocation(connector, homeDir, op);
  let layout: RemoteLayout;
  let source: DiscoverResult["source"];
  if (options.layout) {
    layout = {
      endpointDir: remotePath(homeDir, options.layout.endpointDir, "layout.endpointDir"),
      tmpDir: remotePath(homeDir, options.layout.tmpDir, "layout.tmpDir"),
      workDir: remotePath(homeDir, options.layout.workDir, "layout.workDir"),
    };
    source = "given";
  } else {
    if (current.error) {
      throw new InstallError("INVALID_ARGUMENT", current.error.message, {
        step: "layout",
        fix: `fix or delete ${current.path}`,
        cause: current.error,
      });
    }
    layout = currentLayout(homeDir, current);
    source = current.location ? "location" : "default";
  }
  const [stateText, marker, agent] = await Promise.all([
    exists(connector, posixJoin(layout.endpointDir, STATE_FILE), op),
    exists(connector, posixJoin(layout.endpointDir, MARKER_FILE), op),
    readRemoteManifest(connector, layout.endpointDir, op),
  ]);
  return {
    homeDir,
    layout,
    source,
    locationPath: current.path,
    state: stateText === null ? null : parseState(stateText),
    complete: marker !== null,
    agent,
  };
}
