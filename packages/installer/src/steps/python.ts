import { commandFailure } from "../command-failures.js";
import { InstallError, logTail } from "../errors.js";
import {
  type Candidate,
  MIN_PYTHON,
  minorVersion,
  type PythonInfo,
  parseProbe,
  versionAtLeast,
} from "../python-probe.js";
import { wrap } from "../remote-commands.js";
import { PREAMBLE_FAILED, remoteScript } from "../remote-scripts.js";
import { type LocatedRun, type PythonFacts, SHORT_TIMEOUT } from "./context.js";

/**
 * `python`: finds Python ≥ 3.8 (the `python` option, else `python3`, else `python`), the
 * venv's Python and git; decides whether the venv must be (re)created and checks that it
 * can be. Changes nothing.
 */
export async function checkPython(r: LocatedRun): Promise<PythonFacts> {
  const plan = r.plan;
  const step = await r.recorder.run("python", "finding Python", async () => {
    const candidates = plan.requestedPython ? [plan.requestedPython] : ["python3", "python"];
    const probe = [plan.venvPython, remoteScript("pyinfo.py"), remoteScript("venvinfo.py"), ...candidates];
    const res = await r.remote.run(
      wrap(["sh", "-c", remoteScript("probe.sh"), "sh", ...probe], {
        preamble: "",
        preambleText: plan.preamble.join("\n"),
        umask: plan.umask,
      }),
      { step: "python", timeoutMs: SHORT_TIMEOUT },
    );
    if (res.exitCode === PREAMBLE_FAILED) {
      throw new InstallError("NOT_SET_UP", "the preamble failed on the remote", {
        step: "python",
        fix: "check the --preamble lines in a shell on the remote (a `module` command may need --login-env)",
        log: logTail(res.stderr),
      });
    }
    if (res.exitCode !== 0) throw commandFailure("python", "looking for Python", res, plan.layout.endpointDir);
    const found = parseProbe(res.stdout);
    const base = choosePython(found.candidates, plan.requestedPython, res.stderr).info as PythonInfo;
    const venvInfo = found.venvFailed === null ? found.venv : null;

    // Will the venv be (re)created, and can it be?
    const reasons: string[] = [];
    if (plan.wantVenv) {
      const recorded = plan.state.venv;
      if (r.options.force) reasons.push("forced");
      if (!recorded) reasons.push("no venv yet");
      else {
        if (recorded.base !== base.executable || recorded.version !== base.version) {
          reasons.push(
            `Python changed (${recorded.version} at ${recorded.base} → ${base.version} at ${base.executable})`,
          );
        }
        if (recorded.systemSitePackages !== plan.systemSitePackages) {
          reasons.push(`--system-site-packages ${plan.systemSitePackages ? "added" : "removed"}`);
        }
      }
      if (!venvInfo) {
        reasons.push(found.venvFailed === null ? "its Python is missing" : "its Python does not run");
      } else if (venvInfo.version !== base.version) reasons.push(`its Python is ${venvInfo.version}`);
      if (reasons.length > 0 && (!base.venv || !base.ensurepip)) {
        const missing = base.venv ? "ensurepip" : "the venv module";
        throw new InstallError(
          "NOT_SET_UP",
          `Python ${base.version} at ${base.executable} cannot create virtual environments: ${missing} is missing`,
          {
            step: "python",
            fix: `install venv support on the remote (Debian/Ubuntu: apt-get install python${minorVersion(base.version)}-venv; RHEL/Fedora: dnf install python3), pass another interpreter with --python, or install without a venv (--no-venv, no packages)`,
          },
        );
      }
    }
    const facts: PythonFacts = { base, venvInfo, venvReasons: reasons, git: found.git };
    return {
      changed: false,
      skipped: false,
      message: `Python ${base.version} (${base.implementation}) at ${base.executable}`,
      facts,
    };
  });
  return step.facts;
}

/** Picks the first candidate that runs and is new enough, or explains why none is. */
function choosePython(candidates: Candidate[], requested: string | null, stderr: string): Candidate {
  const reasons: string[] = [];
  for (const cand of candidates) {
    if (!cand.path) {
      reasons.push(`${cand.name}: not found`);
      continue;
    }
    if (!cand.info) {
      reasons.push(`${cand.name} (${cand.path}): does not run (exit status ${cand.failed ?? "?"})`);
      continue;
    }
    if (!versionAtLeast(cand.info.version, MIN_PYTHON)) {
      reasons.push(`${cand.name} (${cand.path}): Python ${cand.info.version} is too old`);
      continue;
    }
    return cand;
  }
  const err = stderr.trim();
  throw new InstallError(
    "NOT_SET_UP",
    `no suitable Python (${MIN_PYTHON.join(".")}+) on the remote: ${reasons.join("; ")}`,
    {
      step: "python",
      fix: requested
        ? `check the interpreter given with --python (${requested}), or leave --python out to use python3`
        : "install Python 3.8+ there (apt-get install python3), load it with --preamble 'module load python', or pass --python /path/to/python3",
      log: err ? logTail(err, 10) : undefined,
    },
  );
}
