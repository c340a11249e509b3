import type { AgentManifest } from "@sremote/agent";

/** True when the endpoint's agent manifest lists exactly the client's agent files, same version. */
export function manifestMatches(remote: AgentManifest | null, local: AgentManifest): boolean {
  return (
    remote !== null &&
    remote.version === local.version &&
    Object.keys(local.files).length === Object.keys(remote.files).length &&
    Object.entries(local.files).every(([k, v]) => remote.files[k] === v)
  );
}
