import { AGENT_VERSION } from "@sremote/agent";
import { MARKER_FILE } from "../endpoint-files.js";
import type { CompletionMarker } from "../state.js";
import { encode, endpointPath, markDirty, type SurveyedRun, saveState } from "./context.js";

/** `complete`: writes `install-state.json` and the completion marker `install-complete`, last. */
export async function finish(r: SurveyedRun): Promise<void> {
  const { plan } = r;
  await r.recorder.run("complete", "recording the install", async () => {
    // A choice recorded only in the state (e.g. venv: false before any venv was made) counts too.
    const upToDate =
      !r.progress.dirty &&
      r.survey.has.has(MARKER_FILE) &&
      plan.previous !== null &&
      JSON.stringify(plan.state) === JSON.stringify(plan.previous) &&
      !r.options.force;
    if (upToDate) return { changed: false, skipped: true, message: "nothing changed" };
    await markDirty(r);
    await saveState(r);
    const marker: CompletionMarker = { completedAt: new Date().toISOString(), agentVersion: AGENT_VERSION };
    await r.connector.putFile(endpointPath(r, MARKER_FILE), encode(`${JSON.stringify(marker)}\n`), {
      ...r.op,
      mode: plan.fileMode,
    });
    return { changed: true, message: `install complete in ${plan.layout.endpointDir}` };
  });
}
