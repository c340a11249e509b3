import type { Connector } from "@sremote/core";
import { isSremoteError } from "@sremote/core";
import { formatBytes, freeBytes, LOW_SPACE_BYTES } from "../command-failures.js";
import { InstallError, type InstallStep } from "../errors.js";
import { locationDir } from "../paths.js";
import type { LocatedRun, RunProgress } from "./context.js";

/** Steps that write to the remote, whose failures may be a full file system, and what they write. */
const WRITING_STEPS: ReadonlyMap<InstallStep, string> = new Map<InstallStep, string>([
  ["folders", "preparing the folders"],
  ["config", "writing the endpoint's configuration"],
  ["venv", "creating the venv"],
  ["agent", "uploading the agent"],
  ["package", "installing a package"],
  ["location", "writing .location"],
  ["permissions", "setting the shared endpoint's modes"],
  ["complete", "recording the install"],
]);

/**
 * A clearer error for a step that failed writing: a full file system (or quota) hides
 * behind venv's "exit status 1" and SFTP's "Failure", so df is asked; a connector's file
 * error becomes an {@link InstallError} that names the step and a fix.
 */
export async function explainFailure(r: LocatedRun, step: InstallStep, err: unknown): Promise<unknown> {
  if (!WRITING_STEPS.has(step) || !isSremoteError(err)) return err;
  const isInstallError = err instanceof InstallError;
  if (isInstallError ? err.code !== "COMMAND_FAILED" : err.code !== "REMOTE_IO" && err.code !== "PERMISSION_DENIED") {
    return err;
  }
  const { homeDir, layout } = r.plan;
  const what = isInstallError ? err.headline : `${WRITING_STEPS.get(step)} failed (${err.message})`;
  const folders = [
    ...new Set(
      step === "location"
        ? [locationDir(homeDir)]
        : step === "package"
          ? [layout.tmpDir, layout.endpointDir]
          : [layout.endpointDir],
    ),
  ];
  for (const folder of folders) {
    const free = await freeBytes(r.connector, folder);
    if (free !== null && free < LOW_SPACE_BYTES) {
      return new InstallError(
        "REMOTE_IO",
        `${what}: the remote file system holding ${folder} is full (${formatBytes(free)} free)`,
        {
          step,
          fix: `free some space there (df -h ${folder}; quota -s), or install elsewhere with --dir <folder> (--tmp-dir for the temp folder)`,
          log: isInstallError ? err.log : err.message,
          details: isInstallError ? { ...err.details, freeBytes: free } : { freeBytes: free },
          cause: err,
        },
      );
    }
  }
  if (isInstallError) return err;
  const folder = folders[0] as string;
  return new InstallError(err.code as "REMOTE_IO" | "PERMISSION_DENIED", what, {
    step,
    fix:
      err.code === "PERMISSION_DENIED"
        ? `check the owner and modes of ${folder} and its files (ls -la ${folder}), or install elsewhere with --dir <folder>`
        : `check the remote file system holding ${folder} (df -h ${folder}) and run the install again`,
    cause: err,
  });
}

/** Removes what a failed step left half-made: its build folder, a partial venv. */
export async function cleanUpAfterFailure(progress: RunProgress, connector: Connector): Promise<void> {
  const leftovers: string[] = [];
  if (progress.pendingBuild) leftovers.push(progress.pendingBuild);
  if (progress.venvBeingCreated) leftovers.push(progress.venvBeingCreated);
  if (leftovers.length === 0) return;
  // Its own time limit: the operation's deadline may be what ended it.
  await connector.exec(["rm", "-rf", "--", ...leftovers], { timeoutMs: 60_000 }).catch(() => {});
}
