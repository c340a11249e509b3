import { AGENT_VERSION, agentManifest, readRemoteManifest } from "@sremote/agent";
import {
  type Connector,
  formatLocationFile,
  hasErrorCode,
  interpreterPath,
  locationFromLayout,
  type OperationOptions,
  posixJoin,
  type RemoteLayout,
  UsageError,
} from "@sremote/core";
import { manifestMatches } from "./agent-check.js";
import { commandFailure, describeExit } from "./command-failures.js";
import { MARKER_FILE } from "./endpoint-files.js";
import { locateEndpoint } from "./endpoint-layout.js";
import { InstallError, logTail } from "./errors.js";
import { type InstallEventListener, StepRecorder, type StepReport } from "./events.js";
import { runOperation } from "./operation.js";
import type { OperationCounts } from "./operation-counts.js";
import { isInside, locationDir } from "./paths.js";
import { parseAgentInfo } from "./python-probe.js";
import { COMMAND_ENV } from "./remote-commands.js";
import { ATTACH_MISSING, remoteScript } from "./remote-scripts.js";

/** Options of {@link attach}. */
export interface AttachOptions extends OperationOptions {
  /** Local folder holding the agent's files (default: `$SREMOTE_AGENT_DIR`, else the installed `@sremote/agent`); for bundled apps. */
  agentDir?: string | undefined;
  /** The shared endpoint another account installed (`sremote install --shared --dir …`). */
  dir: string;
  /** This user's private temp folder (default `~/.sremote/tmp`). */
  tmpDir?: string | undefined;
  /** This user's working folder (default: the home folder). */
  workDir?: string | undefined;
  /** Run the check of the endpoint's Python in a login environment. */
  loginEnv?: boolean | undefined;
  onProgress?: InstallEventListener | undefined;
}

/** What {@link attach} did. */
export interface AttachResult {
  layout: RemoteLayout;
  homeDir: string;
  location: { path: string; action: "written" | "unchanged" };
  changed: boolean;
  /** The endpoint's agent version, and whether it is the client's. */
  agent: { installedVersion: string | null; clientVersion: string; upToDate: boolean };
  /** `interpreter.sh --info` as this user sees it. */
  python: Record<string, unknown>;
  /** Warnings: an outdated agent, an endpoint this user could write to. */
  warnings: string[];
  steps: StepReport[];
  operations: OperationCounts;
}

/**
 * Points this user at a shared endpoint someone else installed: checks it is complete and
 * usable from this account, creates private temp and working folders (0700) and writes
 * `~/.sremote/.location` (the seed's `sremote` + `relative_tmp`/`relative_pwd` fields).
 *
 * @throws InstallError (`NOT_SET_UP`) when the endpoint is missing, incomplete or unusable.
 */
export async function attach(connector: Connector, options: AttachOptions): Promise<AttachResult> {
  if (!options || typeof options.dir !== "string")
    throw new UsageError("attach needs the shared endpoint's folder (dir)");
  return runOperation("attach", connector, options, async ({ connector: c, counts, signal }) => {
    const recorder = new StepRecorder(options.onProgress);
    const op = { signal };
    const warnings: string[] = [];
    const { homeDir, current, layout } = await locateEndpoint(
      c,
      { dir: options.dir, tmpDir: options.tmpDir ?? "~/.sremote/tmp", workDir: options.workDir ?? "~" },
      op,
    );
    const endpointDir = layout.endpointDir;
    if (isInside(layout.tmpDir, endpointDir)) {
      throw new UsageError(
        `the private temp folder ${layout.tmpDir} cannot be inside the shared endpoint ${endpointDir}`,
      );
    }
    const text = formatLocationFile(locationFromLayout(layout, homeDir));

    const checked = await recorder.run("attach", `checking the shared endpoint ${endpointDir}`, async () => {
      const r = await c.exec(
        ["sh", "-c", remoteScript("attach.sh"), "sh", endpointDir, layout.tmpDir, layout.workDir, locationDir(homeDir)],
        { ...op, timeoutMs: 120_000 },
      );
      if (r.exitCode === ATTACH_MISSING) {
        throw new InstallError("NOT_SET_UP", `${endpointDir} does not exist or cannot be reached by this account`, {
          step: "attach",
          fix: `check the path and that this account may enter every folder above it (ls -ld ${endpointDir})`,
        });
      }
      if (r.exitCode !== 0) throw commandFailure("attach", "preparing the private folders", r, layout.tmpDir);
      const lines = r.stdout.split("\n");
      if (lines.includes("readable no")) {
        throw new InstallError("PERMISSION_DENIED", `this account cannot read the agent in ${endpointDir}`, {
          step: "attach",
          fix: `ask the endpoint's owner to install it with --shared (sremote install <target> --shared --dir ${endpointDir})`,
        });
      }
      if (lines.includes("writable yes")) {
        warnings.push(
          `${endpointDir} is writable by this account: a shared endpoint should be writable by its owner only`,
        );
      }
      try {
        await c.getFile(posixJoin(endpointDir, MARKER_FILE), op);
      } catch (err) {
        if (!hasErrorCode(err, "FILE_NOT_FOUND")) throw err;
        throw new InstallError("NOT_SET_UP", `${endpointDir} is not a complete SRemote endpoint (no ${MARKER_FILE})`, {
          step: "attach",
          fix: `ask its owner to run: sremote install <target> --shared --dir ${endpointDir}`,
        });
      }
      const changed = lines.filter((l) => l.startsWith("changed ")).map((l) => l.slice("changed ".length));
      return { changed: changed.length > 0, message: changed.length ? changed.join("; ") : "private folders in place" };
    });

    const [manifest, local] = await Promise.all([
      readRemoteManifest(c, endpointDir, op),
      agentManifest(options.agentDir),
    ]);
    const upToDate = manifestMatches(manifest, local);
    if (!upToDate) {
      warnings.push(
        `the shared endpoint's agent (${manifest?.version ?? "none"}) differs from this client's (${AGENT_VERSION}): calls will fail until its owner runs sremote install on it`,
      );
    }
    const info = await recorder.run("python", "starting Python through the shared endpoint", async () => {
      const r = await c.exec(["sh", interpreterPath(layout), "--info", endpointDir], {
        ...op,
        env: COMMAND_ENV,
        loginEnv: options.loginEnv ?? false,
        timeoutMs: 120_000,
      });
      if (r.exitCode !== 0) {
        throw new InstallError(
          "NOT_SET_UP",
          `Python does not start through ${interpreterPath(layout)} for this account (${describeExit(r)})`,
          {
            step: "python",
            fix: "ask the endpoint's owner to check it with sremote doctor",
            log: logTail(r.stderr, 10),
          },
        );
      }
      const python = parseAgentInfo(r.stdout);
      if (!python) {
        throw new InstallError("NOT_SET_UP", "interpreter.sh --info printed no JSON", {
          step: "python",
          fix: "ask the endpoint's owner to check it with sremote doctor",
          log: logTail(r.stdout, 10),
        });
      }
      return { changed: false, message: `Python ${String(python.python)} (${String(python.codec)} codec)`, python };
    });

    const location = await recorder.run("location", `pointing ${current.path} at ${endpointDir}`, async () => {
      if (current.text === text)
        return { changed: false, skipped: true, message: "already points there", action: "unchanged" as const };
      await c.putFile(current.path, new TextEncoder().encode(text), { ...op, mode: 0o600 });
      return { changed: true, message: `wrote ${current.path}`, action: "written" as const };
    });
    for (const w of warnings) recorder.emit({ type: "warning", step: "attach", message: w });
    return {
      layout,
      homeDir,
      location: { path: current.path, action: location.action },
      changed: checked.changed || location.changed,
      agent: { installedVersion: manifest?.version ?? null, clientVersion: AGENT_VERSION, upToDate },
      python: info.python,
      warnings,
      steps: recorder.steps,
      operations: { ...counts },
    };
  });
}
