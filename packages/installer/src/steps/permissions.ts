import { commandFailure } from "../command-failures.js";
import { InstallError, logTail } from "../errors.js";
import { wrap } from "../remote-commands.js";
import { remoteScript } from "../remote-scripts.js";
import { markDirty, SHORT_TIMEOUT, type SurveyedRun, wrapOptions } from "./context.js";

/**
 * `permissions` (shared endpoints only): byte-compiles the agent with the Python calls run,
 * then leaves nothing group- or world-writable.
 */
export async function ensureModes(r: SurveyedRun): Promise<void> {
  const endpoint = r.plan.layout.endpointDir;
  await r.recorder.run("permissions", "checking that nothing is writable by group or others", async () => {
    // The Python calls run with: the venv's, else the base interpreter.
    const python = r.plan.wantVenv ? r.plan.venvPython : r.python.base.executable;
    const res = await r.remote.run(
      wrap(["sh", "-c", remoteScript("share.sh"), "sh", endpoint, python], wrapOptions(r, false)),
      { step: "permissions", timeoutMs: SHORT_TIMEOUT },
    );
    if (res.exitCode !== 0) throw commandFailure("permissions", `setting the modes in ${endpoint}`, res, endpoint);
    const lines = res.stdout.split("\n");
    const bad = lines.filter((l) => l.startsWith("bad ")).map((l) => l.slice(4));
    if (bad.length > 0) {
      throw new InstallError(
        "PERMISSION_DENIED",
        `files in the shared endpoint stay writable by group or others: ${bad.join(", ")}`,
        { step: "permissions", fix: `as their owner: chmod -R go-w ${endpoint}` },
      );
    }
    if (lines.includes("compile-failed")) {
      throw new InstallError("COMMAND_FAILED", `${python} could not byte-compile the agent in ${endpoint}`, {
        step: "permissions",
        fix: "run the install again with --force; check the endpoint with sremote doctor",
        log: logTail(res.stderr, 15),
      });
    }
    const compiled = lines.includes("compiled");
    const changed = compiled || lines.includes("changed");
    if (changed) await markDirty(r);
    const done = [
      ...(compiled ? ["byte-compiled the agent"] : []),
      ...(lines.includes("changed") ? ["made everything readable, nothing writable by group or others"] : []),
    ];
    return { changed, skipped: !changed, message: changed ? done.join("; ") : "modes already right" };
  });
}
