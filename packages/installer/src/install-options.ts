import type { OperationOptions, RemoteLayout } from "@sremote/core";
import type { InstallEventListener, StepReport } from "./events.js";
import type { OperationCounts } from "./operation-counts.js";
import type { PackageInput } from "./sources.js";
import type { PackageRecord, PythonRecord, VenvRecord } from "./state.js";

/** Options of {@link install}. Options left out keep what the endpoint's last install recorded. */
export interface InstallOptions extends OperationOptions {
  /** Local folder holding the agent's files (default: `$SREMOTE_AGENT_DIR`, else the installed `@sremote/agent`); for bundled apps. */
  agentDir?: string | undefined;
  /**
   * The endpoint folder: absolute, or relative to the remote home (`~/x` too). Default: the
   * folder the user's `~/.sremote/.location` names, else `~/.sremote`.
   */
  dir?: string | undefined;
  /** Private temp folder (default `<dir>/tmp`; `~/.sremote/tmp` for a shared endpoint). */
  tmpDir?: string | undefined;
  /** Working folder calls start in (default: the home folder). */
  workDir?: string | undefined;
  /**
   * The whole layout, e.g. from a target string that carries it (`local:/path`). Overrides
   * `dir`, `tmpDir` and `workDir`; no `.location` is written for it unless `writeLocation`.
   */
  layout?: RemoteLayout | undefined;
  /**
   * Write (or remove) `~/.sremote/.location` so that clients find a non-default layout by
   * themselves (default: true, false when `layout` is given).
   */
  writeLocation?: boolean | undefined;
  /** Python to use: a name on the remote PATH or an absolute path (default `python3`, else `python`). */
  python?: string | undefined;
  /**
   * Shell lines written to `<endpoint>/preamble.sh`, which interpreter.sh sources before
   * starting Python (`module load python`, `source /opt/conda/bin/activate base`). `[]` removes it.
   */
  preamble?: readonly string[] | undefined;
  /** Create a venv in `<endpoint>/env` (default true). Without one, no packages can be installed. */
  venv?: boolean | undefined;
  /** Create the venv with `--system-site-packages` (default false). */
  systemSitePackages?: boolean | undefined;
  /** Packages to install, in order: pip specs (strings), git repositories, local folders or wheels. */
  packages?: readonly PackageInput[] | undefined;
  /**
   * Package index use. Default: pip's configured index for spec packages only; git and local
   * sources are built with `--no-index --no-build-isolation`. `true`: the index for every
   * package (pip may then fetch build dependencies); a URL: that index (`--index-url`);
   * `false`: never (specs resolve from `findLinks` only).
   */
  index?: boolean | string | undefined;
  /** Folders or URLs **on the remote** where pip also looks for distributions (`--find-links`). */
  findLinks?: readonly string[] | undefined;
  /** Reinstall packages even when their source has not changed (pip `--upgrade` for specs). */
  upgrade?: boolean | undefined;
  /** Redo every step: upload every agent file, recreate the venv, reinstall packages. */
  force?: boolean | undefined;
  /**
   * A shared endpoint: readable by everyone who can reach the folder, writable by this account
   * only (folders 0755, files 0644, umask 022); the installing user's temp folder stays private.
   */
  shared?: boolean | undefined;
  /** Run the commands in a login environment (profile and site modules loaded). */
  loginEnv?: boolean | undefined;
  /** Time limit of one long command (venv creation, pip, git clone), default 30 minutes. */
  commandTimeoutMs?: number | undefined;
  /** Receives progress events. */
  onProgress?: InstallEventListener | undefined;
}

/** What {@link install} did. */
export interface InstallResult {
  layout: RemoteLayout;
  homeDir: string;
  /** Where the `.location` file is, and what the install did to it. */
  location: { path: string; action: "written" | "removed" | "unchanged" | "none" };
  /** False when the install found everything up to date and modified nothing. */
  changed: boolean;
  steps: StepReport[];
  /** Connector operations used (a second, unchanged install has `uploads: 0`, `deletes: 0`). */
  operations: OperationCounts;
  python: PythonRecord;
  venv: VenvRecord | null;
  /** Every package the endpoint's state records (this install's and earlier ones). */
  packages: PackageRecord[];
  agentVersion: string;
  shared: boolean;
  durationMs: number;
}
