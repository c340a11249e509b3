import { type AgentManifest, readRemoteManifest } from "@sremote/agent";
import type { Connector, OperationOptions, RemoteLayout } from "@sremote/core";
import { posixJoin } from "@sremote/core";
import { MARKER_FILE, STATE_FILE } from "./endpoint-files.js";
import { locateEndpoint } from "./endpoint-layout.js";
import { readOptionalText } from "./paths.js";
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

/**
 * Finds the user's endpoint (the seed's self-discovery through `~/.sremote/.location`) and
 * reads what the installer recorded there. Changes nothing.
 *
 * @throws InstallError (`INVALID_ARGUMENT`) for an invalid `.location`; ConnectorError for
 *   transport failures.
 */
export async function discover(connector: Connector, options: DiscoverOptions = {}): Promise<DiscoverResult> {
  const op = { signal: options.signal, timeoutMs: options.timeoutMs };
  const { homeDir, current, layout, source } = await locateEndpoint(
    connector,
    { layout: options.layout, invalidLocation: { step: "layout", fix: (path) => `fix or delete ${path}` } },
    op,
  );
  const [stateText, marker, agent] = await Promise.all([
    readOptionalText(connector, posixJoin(layout.endpointDir, STATE_FILE), op),
    readOptionalText(connector, posixJoin(layout.endpointDir, MARKER_FILE), op),
    readRemoteManifest(connector, layout.endpointDir, op),
  ]);
  return {
    homeDir,
    layout,
    source: source === "dir" ? "given" : source,
    locationPath: current.path,
    state: stateText === null ? null : parseState(stateText),
    complete: marker !== null,
    agent,
  };
}
