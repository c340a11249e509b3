import { AGENT_VERSION } from "@sremote/agent";
import type { Connector } from "@sremote/core";
import { StepRecorder } from "./events.js";
import type { InstallOptions, InstallResult } from "./install-options.js";
import { runOperation } from "./operation.js";
import { RemoteRunner } from "./remote-commands.js";
import type { PythonRecord } from "./state.js";
import { ensureAgent } from "./steps/agent.js";
import { finish } from "./steps/complete.js";
import { writeConfig } from "./steps/config.js";
import type { InstallRun, LocatedRun, ProbedRun, ResolvedRun, RunProgress, SurveyedRun } from "./steps/context.js";
import { cleanUpAfterFailure, explainFailure } from "./steps/failures.js";
import { prepareFolders } from "./steps/folders.js";
import { checkInputs } from "./steps/inputs.js";
import { locate } from "./steps/layout.js";
import { ensureLocation } from "./steps/location.js";
import { ensurePackage } from "./steps/package.js";
import { ensureModes } from "./steps/permissions.js";
import { checkPython } from "./steps/python.js";
import { checkSources } from "./steps/sources.js";
import { ensureVenv } from "./steps/venv.js";

export type { InstallOptions, InstallResult } from "./install-options.js";

const DEFAULT_COMMAND_TIMEOUT = 30 * 60_000;

/**
 * Installs (or repairs, or updates) an SRemote endpoint through any connector: folders, the
 * agent, Python and its venv, packages, `.location`, shared-endpoint modes. Safe to run
 * again at any time: steps whose inputs did not change are skipped, and an interrupted
 * install is repaired by the next one (`install-complete` is written last).
 *
 * Everything that can be checked before a change is: options and local packages on the
 * client, then (changing nothing remotely) Python, venv support, git and the git refs, and
 * whether sources can be built offline. A missing Python or venv support, an unreachable git
 * URL or an unknown ref fail before anything is created.
 *
 * @throws UsageError (`INVALID_ARGUMENT`, `INVALID_LOCATION`) for bad options;
 *   {@link InstallError} for a failed step (with `fix` and `log`); ConnectorError for
 *   transport failures; TimeoutError / AbortError per `timeoutMs`/`signal`.
 */
export async function install(connector: Connector, options: InstallOptions = {}): Promise<InstallResult> {
  const t0 = performance.now();
  const inputs = await checkInputs(options);
  let progress: RunProgress | undefined;
  const result = await runOperation(
    "install",
    connector,
    options,
    ({ connector: c, counts, signal }) => {
      const recorder = new StepRecorder(options.onProgress);
      const run: InstallRun = {
        connector: c,
        remote: new RemoteRunner(c, recorder, signal, options.loginEnv ?? false),
        recorder,
        options,
        inputs,
        op: { signal },
        longTimeout: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT,
        progress: { dirty: false, pendingBuild: undefined, venvBeingCreated: undefined },
      };
      progress = run.progress;
      return runSteps(run).then((r) => ({ ...r, operations: { ...counts } }));
    },
    // What a failed step left half-made, through the caller's connector (not counted).
    () => (progress ? cleanUpAfterFailure(progress, connector) : Promise.resolve()),
  );
  return { ...result, durationMs: performance.now() - t0 };
}

/** The steps in order, each given the context the ones before it built. */
async function runSteps(run: InstallRun): Promise<Omit<InstallResult, "operations" | "durationMs">> {
  const located: LocatedRun = { ...run, plan: await locate(run) };
  run.recorder.explainFailure = (step, err) => explainFailure(located, step, err);
  const probed: ProbedRun = { ...located, python: await checkPython(located) };
  const resolved: ResolvedRun = { ...probed, commits: await checkSources(probed) };
  const surveyed: SurveyedRun = { ...resolved, survey: await prepareFolders(resolved) };
  await writeConfig(surveyed);
  let venv = await ensureVenv(surveyed);
  await ensureAgent(surveyed);
  for (const source of run.inputs.sources) venv = await ensurePackage({ ...surveyed, venv }, source);
  const location = await ensureLocation(surveyed);
  const { plan } = surveyed;
  if (plan.shared) await ensureModes(surveyed);
  await finish(surveyed);
  const steps = run.recorder.steps;
  return {
    layout: { ...plan.layout },
    homeDir: plan.homeDir,
    location: { path: plan.current.path, action: location },
    changed: run.progress.dirty || steps.some((s) => s.changed),
    steps,
    python: plan.state.python as PythonRecord,
    venv: plan.state.venv,
    packages: plan.state.packages,
    agentVersion: AGENT_VERSION,
    shared: plan.shared,
  };
}
