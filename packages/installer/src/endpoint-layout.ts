import { type Connector, type OperationOptions, posixJoin, type RemoteLayout } from "@sremote/core";
import { InstallError, type InstallStep } from "./errors.js";
import { type CurrentLocation, currentLayout, isInside, readCurrentLocation, remotePath } from "./paths.js";

/** Where an install, attach, uninstall, doctor or discover finds the endpoint's folders. */
export interface EndpointLayoutRequest {
  /** The whole layout (a target that carries it); relative paths are taken from the home folder. */
  layout?: RemoteLayout | undefined;
  /** The endpoint folder; the temp folder is then `<dir>/tmp` and calls start in the home folder. */
  dir?: string | undefined;
  /** With `dir`: take the temp folder `.location` records when it names the same endpoint. */
  recordedTmpDir?: boolean | undefined;
  /** The temp folder, whatever the rest says. */
  tmpDir?: string | undefined;
  /** The working folder, whatever the rest says. */
  workDir?: string | undefined;
  /**
   * Without `layout` and `dir`, an invalid `.location` throws an {@link InstallError}
   * (`INVALID_ARGUMENT`) for this step with the fix this gives for the file's path; left
   * out, the default layout is used and the caller reports `current.error` itself.
   */
  invalidLocation?: { step: InstallStep; fix: (locationPath: string) => string } | undefined;
}

/** A layout and where it came from. */
export interface ResolvedEndpointLayout {
  /** Absolute folders. */
  layout: RemoteLayout;
  /** `given`: the `layout` option; `dir`: the `dir` option; else `.location` or the default. */
  source: "given" | "dir" | "location" | "default";
}

/**
 * The one place the endpoint's layout is worked out: a given layout, else a `dir`, else what
 * the user's `~/.sremote/.location` says, else `~/.sremote`. Paths may be absolute, `~/x` or
 * relative to the home folder.
 *
 * @throws UsageError for a path that is empty or holds NUL bytes or newlines;
 *   {@link InstallError} for an invalid `.location` when `invalidLocation` is given.
 */
export function resolveEndpointLayout(
  homeDir: string,
  current: CurrentLocation,
  request: EndpointLayoutRequest,
): ResolvedEndpointLayout {
  let layout: RemoteLayout;
  let source: ResolvedEndpointLayout["source"];
  if (request.layout) {
    layout = {
      endpointDir: remotePath(homeDir, request.layout.endpointDir, "layout.endpointDir"),
      tmpDir: remotePath(homeDir, request.layout.tmpDir, "layout.tmpDir"),
      workDir: remotePath(homeDir, request.layout.workDir, "layout.workDir"),
    };
    source = "given";
  } else if (request.dir !== undefined) {
    const endpointDir = remotePath(homeDir, request.dir, "dir");
    const recorded = request.recordedTmpDir && current.location ? currentLayout(homeDir, current) : null;
    layout = {
      endpointDir,
      tmpDir: recorded?.endpointDir === endpointDir ? recorded.tmpDir : posixJoin(endpointDir, "tmp"),
      workDir: posixJoin(homeDir),
    };
    source = "dir";
  } else {
    if (current.error && request.invalidLocation) {
      throw new InstallError("INVALID_ARGUMENT", current.error.message, {
        step: request.invalidLocation.step,
        fix: request.invalidLocation.fix(current.path),
        cause: current.error,
      });
    }
    layout = currentLayout(homeDir, current);
    source = current.location ? "location" : "default";
  }
  if (request.tmpDir !== undefined) layout.tmpDir = remotePath(homeDir, request.tmpDir, "tmpDir");
  if (request.workDir !== undefined) layout.workDir = remotePath(homeDir, request.workDir, "workDir");
  return { layout, source };
}

/** The home folder, the user's `.location` and the layout {@link resolveEndpointLayout} gives. */
export interface LocatedEndpoint extends ResolvedEndpointLayout {
  homeDir: string;
  current: CurrentLocation;
}

/** Asks the remote for the home folder and `.location`, then resolves the layout. */
export async function locateEndpoint(
  connector: Connector,
  request: EndpointLayoutRequest,
  options: OperationOptions,
): Promise<LocatedEndpoint> {
  const homeDir = await connector.homeDir(options);
  const current = await readCurrentLocation(connector, homeDir, options);
  return { homeDir, current, ...resolveEndpointLayout(homeDir, current, request) };
}

/** True when removing or taking over `endpointDir` would take the home folder with it. */
export function containsHome(endpointDir: string, homeDir: string): boolean {
  return endpointDir === "/" || isInside(homeDir, endpointDir);
}
