import {
  type Connector,
  DEFAULT_ENDPOINT_NAME,
  defaultLayout,
  hasErrorCode,
  type LocationFile,
  layoutFromLocation,
  locationFilePath,
  type OperationOptions,
  parseLocationFile,
  posixJoin,
  type RemoteLayout,
  UsageError,
} from "@sremote/core";

/**
 * A remote path from the user: absolute, `~`, `~/x`, or relative to the home folder.
 *
 * @throws UsageError for an empty path or one with a NUL byte or a newline.
 */
export function remotePath(homeDir: string, path: string, what: string): string {
  if (typeof path !== "string" || path.trim() === "") throw new UsageError(`${what} must be a non-empty path`);
  if (/[\0\r\n]/.test(path)) throw new UsageError(`${what} must not contain NUL bytes or newlines`);
  if (path.startsWith("/")) return posixJoin(path);
  if (path === "~") return posixJoin(homeDir);
  return posixJoin(homeDir, path.startsWith("~/") ? path.slice(2) : path);
}

/** True when `inner` is `outer` or inside it. */
export function isInside(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer === "/" ? "/" : `${outer}/`);
}

/** A remote text file, `null` when it does not exist. */
export async function readOptionalText(
  connector: Connector,
  path: string,
  options: OperationOptions,
): Promise<string | null> {
  try {
    return new TextDecoder().decode(await connector.getFile(path, options));
  } catch (err) {
    if (hasErrorCode(err, "FILE_NOT_FOUND")) return null;
    throw err;
  }
}

/** The user's current `.location`, as text and parsed. */
export interface CurrentLocation {
  path: string;
  /** `null` when there is no file. */
  text: string | null;
  /** The parsed file; `null` when absent. */
  location: LocationFile | null;
  /** The error when the file exists but is invalid. */
  error: UsageError | null;
}

/** Reads `~/.sremote/.location` without throwing for an invalid one. */
export async function readCurrentLocation(
  connector: Connector,
  homeDir: string,
  options: OperationOptions,
): Promise<CurrentLocation> {
  const path = locationFilePath(homeDir);
  const text = await readOptionalText(connector, path, options);
  if (text === null) return { path, text: null, location: null, error: null };
  try {
    return { path, text, location: parseLocationFile(text, `${connector.name}:${path}`), error: null };
  } catch (err) {
    if (err instanceof UsageError) return { path, text, location: null, error: err };
    throw err;
  }
}

/** The layout a `.location` (or its absence) gives. */
export function currentLayout(homeDir: string, current: CurrentLocation): RemoteLayout {
  return current.location ? layoutFromLocation(current.location, homeDir) : defaultLayout(homeDir);
}

/** True when two layouts name the same folders. */
export function sameLayout(a: RemoteLayout, b: RemoteLayout): boolean {
  return a.endpointDir === b.endpointDir && a.tmpDir === b.tmpDir && a.workDir === b.workDir;
}

/** `~/.sremote`, the folder holding `.location`. */
export function locationDir(homeDir: string): string {
  return posixJoin(homeDir, DEFAULT_ENDPOINT_NAME);
}
