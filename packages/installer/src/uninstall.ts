import { type Connector, type OperationOptions, parseLocationFile, type RemoteLayout } from "@sremote/core";
import { commandFailure } from "./command-failures.js";
import { containsHome, locateEndpoint } from "./endpoint-layout.js";
import { InstallError } from "./errors.js";
import { type InstallEventListener, StepRecorder, type StepReport } from "./events.js";
import { runOperation } from "./operation.js";
import type { OperationCounts } from "./operation-counts.js";
import { currentLayout, isInside, locationDir } from "./paths.js";
import { remoteScript, UNINSTALL_NOT_ENDPOINT } from "./remote-scripts.js";

/** Options of {@link uninstall}. */
export interface UninstallOptions extends OperationOptions {
  /** The endpoint to remove (default: the one `~/.sremote/.location` names, else `~/.sremote`). */
  dir?: string | undefined;
  /** The whole layout, from a target that carries it. */
  layout?: RemoteLayout | undefined;
  /**
   * Keep the venv (`env/`), `install-state.json`, `python` and `preamble.sh` so that a later
   * install reuses the packages; the agent, the marker and everything else go.
   */
  keepPackages?: boolean | undefined;
  onProgress?: InstallEventListener | undefined;
}

/** What {@link uninstall} did. */
export interface UninstallResult {
  layout: RemoteLayout;
  /** Paths removed. */
  removed: string[];
  /** Paths deliberately left (the kept venv, a temp folder outside `~/.sremote`, someone else's endpoint). */
  kept: string[];
  /**
   * True when the endpoint belongs to another account (a shared endpoint this user attached
   * to): only this user's `.location` and private temp folder were removed.
   */
  detached: boolean;
  steps: StepReport[];
  operations: OperationCounts;
}

/**
 * Removes an endpoint the installer made — only after checking it is one (an agent manifest
 * or install state inside), never the home folder or anything above it — plus the
 * `.location` pointing at it and the private temp folder under `~/.sremote`. For someone
 * else's shared endpoint it only detaches this user.
 *
 * @throws InstallError (`INVALID_ARGUMENT`) when the folder is not an SRemote endpoint
 *   (nothing is removed); ConnectorError for transport failures.
 */
export async function uninstall(connector: Connector, options: UninstallOptions = {}): Promise<UninstallResult> {
  return runOperation("uninstall", connector, options, async ({ connector: c, counts, signal }) => {
    const recorder = new StepRecorder(options.onProgress);
    const op = { signal };
    const exec = (argv: string[]) => c.exec(argv, { ...op, timeoutMs: 300_000 });
    const removed: string[] = [];
    const kept: string[] = [];
    const { homeDir, current, layout } = await locateEndpoint(
      c,
      {
        layout: options.layout,
        dir: options.dir,
        recordedTmpDir: true,
        invalidLocation: { step: "uninstall", fix: (path) => `give the endpoint with --dir, or fix ${path}` },
      },
      op,
    );
    const ep = layout.endpointDir;
    if (containsHome(ep, homeDir)) {
      throw new InstallError("INVALID_ARGUMENT", `refusing to remove ${ep}: it contains the home folder`, {
        step: "uninstall",
      });
    }

    let detached = false;
    await recorder.run("uninstall", `removing ${ep}`, async () => {
      const look = await exec(["sh", "-c", remoteScript("doctor.sh"), "sh", ep, layout.tmpDir, layout.workDir]);
      const lines = new Set(look.stdout.split("\n"));
      if (!lines.has("has endpoint")) {
        return { changed: false, skipped: true, message: `no endpoint at ${ep}` };
      }
      if (lines.has("owner no")) {
        detached = true;
        kept.push(ep);
        return { changed: false, skipped: true, message: `${ep} belongs to another account: only detaching from it` };
      }
      const r = await exec(["sh", "-c", remoteScript("uninstall.sh"), "sh", ep, options.keepPackages ? "1" : "0"]);
      if (r.exitCode === UNINSTALL_NOT_ENDPOINT) {
        throw new InstallError("INVALID_ARGUMENT", r.stderr.replace(/^sremote-install: /, "").trim(), {
          step: "uninstall",
          fix: "name the endpoint folder with --dir",
        });
      }
      if (r.exitCode !== 0) throw commandFailure("uninstall", `removing ${ep}`, r, ep);
      for (const line of r.stdout.split("\n")) {
        if (line.startsWith("removed ")) removed.push(line.slice(8));
        else if (line.startsWith("kept ")) kept.push(line.slice(5));
      }
      return { changed: true, message: options.keepPackages ? `removed ${ep} except the venv` : `removed ${ep}` };
    });

    // The private temp folder, when it is outside the endpoint: removed only under ~/.sremote.
    const tmp = layout.tmpDir;
    if (!isInside(tmp, ep) || detached) {
      if (isInside(tmp, locationDir(homeDir)) && tmp !== locationDir(homeDir)) {
        const r = await exec(["rm", "-rf", "--", tmp]);
        if (r.exitCode !== 0) throw commandFailure("uninstall", `removing ${tmp}`, r, tmp);
        removed.push(tmp);
      } else {
        kept.push(tmp);
      }
    }

    // The .location pointing at this endpoint.
    if (current.text !== null && !options.keepPackages) {
      let pointsHere = false;
      try {
        pointsHere =
          currentLayout(homeDir, { ...current, location: parseLocationFile(current.text) }).endpointDir === ep;
      } catch {
        pointsHere = false;
      }
      if (pointsHere && !isInside(current.path, ep)) {
        await c.deleteFile(current.path, op);
        removed.push(current.path);
      }
    }
    // ~/.sremote itself when nothing is left in it, and only when it held this endpoint (or
    // what this uninstall removed): an empty ~/.sremote next to an endpoint a target names
    // (local:/data/x) is not ours to remove.
    const locDir = locationDir(homeDir);
    const ours = isInside(ep, locDir) || removed.some((p) => isInside(p, locDir));
    if (ours && !isInside(locDir, ep)) {
      const r = await exec(["rmdir", "--", locDir]);
      if (r.exitCode === 0) removed.push(locDir);
    }
    return { layout, removed, kept, detached, steps: recorder.steps, operations: { ...counts } };
  });
}
