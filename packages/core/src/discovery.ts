import type { Connector } from "./connector.js";
import type { OperationOptions } from "./deadline.js";
import { hasErrorCode } from "./errors.js";
import { defaultLayout, layoutFromLocation, locationFilePath, parseLocationFile, type RemoteLayout } from "./layout.js";

/** A layout and where it came from. */
export interface DiscoveredLayout {
  layout: RemoteLayout;
  /** `"location"`: read from the user's `.location` file; `"default"`: no such file. */
  source: "location" | "default";
  /** Where the `.location` file is (or would be). */
  locationPath: string;
  /** The remote home folder. */
  homeDir: string;
}

/**
 * The seed's self-discovery: reads `~/.sremote/.location` through the connector and
 * resolves it, or falls back to the default layout when the file does not exist.
 *
 * @throws UsageError (`INVALID_LOCATION`) when the file exists but is invalid.
 */
export async function discoverLayout(connector: Connector, options: OperationOptions = {}): Promise<DiscoveredLayout> {
  const homeDir = await connector.homeDir(options);
  const locationPath = locationFilePath(homeDir);
  let text: string;
  try {
    text = new TextDecoder().decode(await connector.getFile(locationPath, options));
  } catch (err) {
    if (hasErrorCode(err, "FILE_NOT_FOUND")) {
      return { layout: defaultLayout(homeDir), source: "default", locationPath, homeDir };
    }
    throw err;
  }
  const location = parseLocationFile(text, `${connector.name}:${locationPath}`);
  return { layout: layoutFromLocation(location, homeDir), source: "location", locationPath, homeDir };
}
