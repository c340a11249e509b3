import { commandFailure, describeExit } from "../command-failures.js";
import { VENV_DIR } from "../endpoint-files.js";
import { InstallError, logTail } from "../errors.js";
import { minorVersion, parseProbe, type VenvInfo } from "../python-probe.js";
import { wrap } from "../remote-commands.js";
import { remoteScript } from "../remote-scripts.js";
import {
  endpointPath,
  markDirty,
  newScratch,
  removeScratch,
  SHORT_TIMEOUT,
  type SurveyedRun,
  saveState,
  type VenvState,
  wrapOptions,
} from "./context.js";

/**
 * `venv`: `python -m venv <endpoint>/env` when the `python` step found a reason to (re)create
 * it, or removes it for `venv: false`. Returns the venv the later steps install into.
 */
export async function ensureVenv(r: SurveyedRun): Promise<VenvState> {
  const { plan, python } = r;
  const envDir = endpointPath(r, VENV_DIR);
  const step = await r.recorder.run("venv", plan.wantVenv ? `checking the venv ${envDir}` : "no venv", async () => {
    const unchanged: VenvState = { info: python.venvInfo, recreated: false };
    if (!plan.wantVenv) {
      if (!python.venvInfo && plan.state.venv === null) {
        return { changed: false, skipped: true, message: "no venv (venv: false)", venv: unchanged };
      }
      await markDirty(r);
      const res = await r.remote.run(["rm", "-rf", "--", envDir], { step: "venv", timeoutMs: SHORT_TIMEOUT });
      if (res.exitCode !== 0) throw commandFailure("venv", `removing ${envDir}`, res, plan.layout.endpointDir);
      plan.state.venv = null;
      plan.state.packages = [];
      await saveState(r);
      const none: VenvState = { info: null, recreated: false };
      return { changed: true, message: `removed the venv ${envDir} (venv: false)`, venv: none };
    }
    if (python.venvReasons.length === 0) {
      return {
        changed: false,
        skipped: true,
        message: `venv up to date (Python ${python.base.version})`,
        venv: unchanged,
      };
    }
    await markDirty(r);
    plan.state.venv = null;
    plan.state.packages = [];
    await saveState(r);
    const argv = [python.base.executable, "-m", "venv", "--clear"];
    if (plan.systemSitePackages) argv.push("--system-site-packages");
    argv.push(envDir);
    r.progress.venvBeingCreated = envDir;
    const scratch = newScratch(r);
    const res = await r.remote.run(wrap(argv, { ...wrapOptions(r, true), scratch }), {
      step: "venv",
      timeoutMs: r.longTimeout,
      stream: true,
    });
    await removeScratch(r, scratch);
    if (res.exitCode !== 0) {
      const text = `${res.stdout}\n${res.stderr}`;
      if (/ensurepip is not\s+available|No module named ensurepip/.test(text)) {
        throw new InstallError(
          "NOT_SET_UP",
          `Python ${python.base.version} cannot create virtual environments: ensurepip is missing`,
          {
            step: "venv",
            fix: `apt-get install python${minorVersion(python.base.version)}-venv on the remote (Debian/Ubuntu), or pass another interpreter with --python`,
            log: logTail(text),
          },
        );
      }
      throw commandFailure("venv", `creating the venv ${envDir}`, res, plan.layout.endpointDir);
    }
    const info = await probeVenv(r);
    r.progress.venvBeingCreated = undefined;
    plan.state.venv = {
      systemSitePackages: plan.systemSitePackages,
      base: python.base.executable,
      version: python.base.version,
    };
    await saveState(r);
    const created: VenvState = { info, recreated: true };
    return { changed: true, message: `created ${envDir} (${python.venvReasons.join("; ")})`, venv: created };
  });
  return step.venv;
}

/** What the venv holds now (its distributions); fails when its Python does not run. */
export async function probeVenv(r: SurveyedRun): Promise<VenvInfo> {
  const venvPython = r.plan.venvPython;
  const res = await r.remote.run(wrap([venvPython, "-c", remoteScript("venvinfo.py")], wrapOptions(r, false)), {
    step: "venv",
    timeoutMs: SHORT_TIMEOUT,
  });
  const parsed = parseProbe(res.stdout);
  if (res.exitCode !== 0 || !parsed.venv) {
    throw new InstallError("COMMAND_FAILED", `the venv's Python ${venvPython} does not run (${describeExit(res)})`, {
      step: "venv",
      fix: "run the install again with --force to recreate the venv",
      log: logTail(`${res.stdout}\n${res.stderr}`),
    });
  }
  return parsed.venv;
}
