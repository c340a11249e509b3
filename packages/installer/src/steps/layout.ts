import { AGENT_VERSION } from "@sremote/agent";
import { defaultLayout, formatLocationFile, locationFromLayout, posixJoin, UsageError } from "@sremote/core";
import { STATE_FILE, VENV_DIR } from "../endpoint-files.js";
import { containsHome, locateEndpoint } from "../endpoint-layout.js";
import { isInside, locationDir, readOptionalText, sameLayout } from "../paths.js";
import { emptyState, type InstallState, parseState } from "../state.js";
import type { EndpointPlan, InstallRun } from "./context.js";

/**
 * `layout`: finds the endpoint (`dir`, else the folder `.location` names, else `~/.sremote`),
 * reads the last install's state and decides what this install wants: options left out keep
 * what the last install recorded. Changes nothing.
 */
export async function locate(r: InstallRun): Promise<EndpointPlan> {
  const o = r.options;
  return r.recorder
    .run("layout", "finding the endpoint", async () => {
      await r.connector.connect(r.op);
      const { homeDir, current, layout, source } = await locateEndpoint(
        r.connector,
        {
          layout: o.layout,
          dir: o.dir,
          tmpDir: o.tmpDir,
          workDir: o.workDir,
          invalidLocation: {
            step: "layout",
            fix: (path) => `fix or delete ${path}, or give the endpoint folder with --dir`,
          },
        },
        r.op,
      );
      const endpoint = layout.endpointDir;
      if (containsHome(endpoint, homeDir)) {
        throw new UsageError(
          `the endpoint folder ${endpoint} would contain the home folder: choose a folder of its own`,
        );
      }
      const previous = await readState(r, endpoint);
      const state = previous ? structuredClone(previous) : emptyState(AGENT_VERSION);
      const shared = o.shared ?? previous?.shared ?? false;
      const wantVenv = o.venv ?? (previous ? previous.wantVenv !== null : true);
      const systemSitePackages = o.systemSitePackages ?? previous?.wantVenv?.systemSitePackages ?? false;
      state.wantVenv = wantVenv ? { systemSitePackages } : null;
      // A shared endpoint's owner keeps the private temp folder in ~/.sremote.
      if (shared && source === "dir" && o.tmpDir === undefined) layout.tmpDir = posixJoin(locationDir(homeDir), "tmp");
      if (shared && isInside(layout.tmpDir, endpoint)) {
        throw new UsageError(
          `a shared endpoint cannot hold the installing user's private temp folder (${layout.tmpDir}): put the endpoint outside ~/.sremote (--dir /group/folder/sremote) or give --tmp-dir outside it`,
        );
      }
      const writeLocation = o.writeLocation ?? o.layout === undefined;
      const wantLocation = writeLocation && !sameLayout(layout, defaultLayout(homeDir));
      const plan: EndpointPlan = {
        homeDir,
        current,
        layout,
        previous,
        state,
        shared,
        preamble: r.inputs.preamble ?? previous?.preamble ?? [],
        wantVenv,
        systemSitePackages,
        requestedPython: r.inputs.python ?? previous?.python?.requested ?? null,
        writeLocation,
        locationText: wantLocation ? formatLocationFile(locationFromLayout(layout, homeDir)) : null,
        umask: shared ? "022" : "077",
        fileMode: shared ? 0o644 : 0o600,
        venvPython: posixJoin(endpoint, `${VENV_DIR}/bin/python`),
      };
      return { changed: false, message: `endpoint ${endpoint}${shared ? " (shared)" : ""}`, plan };
    })
    .then((step) => step.plan);
}

async function readState(r: InstallRun, endpoint: string): Promise<InstallState | null> {
  const text = await readOptionalText(r.connector, posixJoin(endpoint, STATE_FILE), r.op);
  return text === null ? null : parseState(text);
}
