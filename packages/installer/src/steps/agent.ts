import { AGENT_VERSION, agentFiles, agentManifest, readRemoteManifest, syncAgent } from "@sremote/agent";
import { manifestMatches } from "../agent-check.js";
import { endpointPath, markDirty, type SurveyedRun } from "./context.js";

/** `agent`: uploads the agent files whose content hash differs from the endpoint's manifest. */
export async function ensureAgent(r: SurveyedRun): Promise<void> {
  const { agentDir, force } = r.options;
  await r.recorder.run("agent", "checking the agent files", async () => {
    const endpoint = r.plan.layout.endpointDir;
    const [remoteManifest, local] = await Promise.all([
      readRemoteManifest(r.connector, endpoint, r.op),
      agentManifest(agentDir),
    ]);
    const interpreterPresent = r.survey.has.has("interpreter.sh");
    if (manifestMatches(remoteManifest, local) && !force && interpreterPresent) {
      return { changed: false, skipped: true, message: `agent ${local.version} up to date` };
    }
    await markDirty(r);
    const sizes = new Map((await agentFiles(agentDir)).map((f) => [f.path, f.size]));
    const result = await syncAgent(r.connector, endpoint, {
      agentDir,
      force: force || !interpreterPresent,
      shared: r.plan.shared,
      signal: r.op.signal,
      onProgress: (e) => {
        if (e.action === "upload") {
          r.recorder.emit({
            type: "upload",
            step: "agent",
            path: endpointPath(r, e.file),
            bytes: sizes.get(e.file) ?? 0,
          });
        }
      },
    });
    const was =
      result.previousVersion && result.previousVersion !== AGENT_VERSION ? ` (was ${result.previousVersion})` : "";
    return { changed: true, message: `agent ${AGENT_VERSION}: ${result.uploaded.length} file(s) uploaded${was}` };
  });
}
