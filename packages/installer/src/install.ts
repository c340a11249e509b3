import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { AGENT_VERSION, agentFiles, agentManifest, readRemoteManifest, syncAgent } from "@sremote/agent";
import {
  type Connector,
  deadline,
  defaultLayout,
  formatLocationFile,
  hasErrorCode,
  isSremoteError,
  locationFromLayout,
  type OperationOptions,
  posixJoin,
  type RemoteLayout,
  shQuote,
  UsageError,
} from "@sremote/core";
import { InstallError, type InstallStep, logTail } from "./errors.js";
import { type InstallEventListener, StepRecorder, type StepReport } from "./events.js";
import { countingConnector, type OperationCounts, zeroCounts } from "./operations.js";
import {
  type CurrentLocation,
  currentLayout,
  isInside,
  locationDir,
  readCurrentLocation,
  remotePath,
  sameLayout,
} from "./paths.js";
import {
  type Candidate,
  canBuildWheels,
  MIN_PYTHON,
  minorVersion,
  type PythonInfo,
  parseProbe,
  type VenvInfo,
  versionAtLeast,
} from "./python.js";
import {
  commandFailure,
  describeExit,
  formatBytes,
  freeBytes,
  LOW_SPACE_BYTES,
  operationError,
  RemoteRunner,
  type WrapOptions,
  wrap,
} from "./remote.js";
import {
  BUILD_EXIT,
  BUILD_PREFIX,
  BUILD_SH,
  EXTRACT_PY,
  MARKER_FILE,
  PREAMBLE_FAILED,
  PREAMBLE_FILE,
  PROBE_SH,
  PYINFO_PY,
  PYTHON_FILE,
  SHARE_SH,
  STATE_FILE,
  SURVEY_FOREIGN,
  SURVEY_SH,
  VENV_DIR,
  VENVINFO_PY,
} from "./scripts.js";
import {
  classifyLocal,
  type Distribution,
  describeSource,
  type GitPackage,
  type LocalKind,
  normalizeName,
  normalizePackage,
  type PackageInput,
  type PackageSource,
  parseInstalled,
  sourceKey,
  specName,
} from "./sources.js";
import {
  type CompletionMarker,
  emptyState,
  formatState,
  type InstallState,
  type PackageRecord,
  type PythonRecord,
  parseState,
  type VenvRecord,
} from "./state.js";
import { packFolder } from "./tar.js";

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

const DEFAULT_COMMAND_TIMEOUT = 30 * 60_000;
const SHORT_TIMEOUT = 120_000;

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
const encode = (text: string) => new TextEncoder().encode(text);

const BUILD_HELP =
  "give the venv wheel-building tools: --system-site-packages (uses the system's setuptools and wheel, e.g. Debian's python3-wheel), --local /path/to/wheel-*.whl before this package, or --index to let pip fetch them; or build a wheel on this machine and pass it with --local";

/** A local package, read and hashed on the client before anything changes remotely. */
interface PreparedLocal {
  kind: LocalKind;
  data: Uint8Array;
  sha256: string;
  /** File name to upload as (wheels must keep their name). */
  uploadName: string;
}

/** Options checked on the client, local packages read and hashed. */
interface Prepared {
  sources: PackageSource[];
  locals: Map<PackageSource, PreparedLocal>;
  preamble: string[] | undefined;
  python: string | undefined;
}

async function prepare(options: InstallOptions): Promise<Prepared> {
  const sources = (options.packages ?? []).map(normalizePackage);
  let preamble: string[] | undefined;
  if (options.preamble !== undefined) {
    if (!Array.isArray(options.preamble)) throw new UsageError("preamble must be an array of shell lines");
    preamble = options.preamble.map((line, i) => {
      if (typeof line !== "string" || /[\0\r\n]/.test(line)) {
        throw new UsageError(`preamble line ${i + 1} must be one line of text without NUL bytes`);
      }
      return line;
    });
  }
  const python = options.python;
  if (
    python !== undefined &&
    (typeof python !== "string" || python.trim() === "" || /[\0\r\n]/.test(python) || python.startsWith("-"))
  ) {
    throw new UsageError(`python must be an interpreter name or an absolute path, got ${JSON.stringify(python)}`);
  }
  if (options.findLinks?.some((f) => typeof f !== "string" || f === "" || /[\0\r\n]/.test(f) || f.startsWith("-"))) {
    throw new UsageError("findLinks entries must be non-empty paths or URLs");
  }
  if (typeof options.index === "string" && !/^(https?|file):\/\/\S+$/.test(options.index)) {
    throw new UsageError(`index must be an http(s):// or file:// URL, got ${JSON.stringify(options.index)}`);
  }
  if (options.venv === false && sources.length > 0) {
    throw new UsageError("packages need the venv: drop venv: false (--no-venv) or the packages");
  }
  const locals = new Map<PackageSource, PreparedLocal>();
  for (const source of sources) {
    if (source.kind !== "local") continue;
    const kind = await classifyLocal(source.path);
    if (kind === "folder") {
      const packed = await packFolder(source.path);
      locals.set(source, { kind, data: packed.data, sha256: packed.sha256, uploadName: "src.tar" });
    } else {
      const data = await readFile(source.path);
      locals.set(source, { kind, data, sha256: sha256(data), uploadName: basename(source.path) });
    }
  }
  return { sources, locals, preamble, python };
}

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
  const prepared = await prepare(options);
  const d = deadline(options);
  const counts = zeroCounts();
  const c = countingConnector(connector, counts);
  const recorder = new StepRecorder(options.onProgress);
  const remote = new RemoteRunner(c, recorder, d.signal, options.loginEnv ?? false);
  const job = new Installation(c, remote, recorder, options, prepared);
  recorder.explainFailure = (step, err) => job.explainFailure(step, err);
  try {
    const result = await job.run();
    return { ...result, operations: { ...counts }, durationMs: performance.now() - t0 };
  } catch (err) {
    const fired = d.signal.aborted;
    await job.cleanUpAfterFailure(connector);
    throw operationError(d, fired, "install", err);
  } finally {
    d.dispose();
  }
}

interface Survey {
  changed: string[];
  has: Set<string>;
  stale: string[];
  owner: boolean;
}

function parseSurvey(stdout: string): Survey {
  const s: Survey = { changed: [], has: new Set(), stale: [], owner: true };
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    const word = line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === "changed") s.changed.push(rest);
    else if (word === "has") s.has.add(rest);
    else if (word === "stale") s.stale.push(rest);
    else if (word === "owner") s.owner = rest === "yes";
  }
  return s;
}

/** One install run: the steps, in order, sharing what earlier steps learnt. */
class Installation {
  readonly #c: Connector;
  readonly #remote: RemoteRunner;
  readonly #recorder: StepRecorder;
  readonly #options: InstallOptions;
  readonly #prepared: Prepared;
  readonly #op: OperationOptions;
  readonly #longTimeout: number;

  // Learnt along the way.
  #homeDir = "";
  #current!: CurrentLocation;
  #layout!: RemoteLayout;
  #previous: InstallState | null = null;
  #state!: InstallState;
  #shared = false;
  #preamble: string[] = [];
  #wantVenv = true;
  #systemSitePackages = false;
  #requestedPython: string | null = null;
  #locationText: string | null = null;
  #writeLocation = true;
  #base!: PythonInfo;
  #venvInfo: VenvInfo | null = null;
  #venvReasons: string[] = [];
  #git: string | null = null;
  #commits = new Map<PackageSource, string>();
  #survey!: Survey;
  #dirty = false;
  #venvRecreated = false;
  #pendingBuild: string | undefined;
  #venvCreating = false;

  constructor(c: Connector, remote: RemoteRunner, recorder: StepRecorder, options: InstallOptions, prepared: Prepared) {
    this.#c = c;
    this.#remote = remote;
    this.#recorder = recorder;
    this.#options = options;
    this.#prepared = prepared;
    this.#op = remote.op;
    this.#longTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT;
  }

  get #endpoint(): string {
    return this.#layout.endpointDir;
  }
  #path(name: string): string {
    return posixJoin(this.#endpoint, name);
  }
  get #umask(): string {
    return this.#shared ? "022" : "077";
  }
  get #fileMode(): number {
    return this.#shared ? 0o644 : 0o600;
  }
  get #venvPython(): string {
    return this.#path(`${VENV_DIR}/bin/python`);
  }
  /** How commands that need Python run: preamble file once written, else the lines themselves. */
  #wrapOptions(lock: boolean): WrapOptions {
    const written = this.#survey?.has.has(PREAMBLE_FILE);
    return {
      preamble: written && this.#preamble.length > 0 ? this.#path(PREAMBLE_FILE) : "",
      preambleText: this.#preamble.join("\n"),
      umask: this.#umask,
      lock: lock ? { python: this.#base.executable, endpointDir: this.#endpoint } : undefined,
    };
  }

  async run(): Promise<Omit<InstallResult, "operations" | "durationMs">> {
    await this.#locate();
    await this.#checkPython();
    await this.#checkSources();
    await this.#prepareFolders();
    await this.#writeConfig();
    await this.#ensureVenv();
    await this.#ensureAgent();
    for (const source of this.#prepared.sources) await this.#ensurePackage(source);
    const location = await this.#ensureLocation();
    if (this.#shared) await this.#ensureModes();
    await this.#finish();
    const steps = this.#recorder.steps;
    return {
      layout: { ...this.#layout },
      homeDir: this.#homeDir,
      location: { path: this.#current.path, action: location },
      changed: this.#dirty || steps.some((s) => s.changed),
      steps,
      python: this.#state.python as PythonRecord,
      venv: this.#state.venv,
      packages: this.#state.packages,
      agentVersion: AGENT_VERSION,
      shared: this.#shared,
    };
  }

  /**
   * A clearer error for a step that failed writing: a full file system (or quota) hides
   * behind venv's "exit status 1" and SFTP's "Failure", so df is asked; a connector's file
   * error becomes an {@link InstallError} that names the step and a fix.
   */
  async explainFailure(step: InstallStep, err: unknown): Promise<unknown> {
    if (!WRITING_STEPS.has(step) || !isSremoteError(err) || !this.#layout) return err;
    const isInstallError = err instanceof InstallError;
    if (isInstallError ? err.code !== "COMMAND_FAILED" : err.code !== "REMOTE_IO" && err.code !== "PERMISSION_DENIED") {
      return err;
    }
    const what = isInstallError ? err.headline : `${WRITING_STEPS.get(step)} failed (${err.message})`;
    const folders = [
      ...new Set(
        step === "location"
          ? [locationDir(this.#homeDir)]
          : step === "package"
            ? [this.#layout.tmpDir, this.#endpoint]
            : [this.#endpoint],
      ),
    ];
    for (const folder of folders) {
      const free = await freeBytes(this.#c, folder);
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
  async cleanUpAfterFailure(connector: Connector): Promise<void> {
    const leftovers: string[] = [];
    if (this.#pendingBuild) leftovers.push(this.#pendingBuild);
    if (this.#venvCreating) leftovers.push(this.#venvPython.replace(/\/bin\/python$/, ""));
    if (leftovers.length === 0) return;
    // Its own time limit: the operation's deadline may be what ended it.
    await connector.exec(["rm", "-rf", "--", ...leftovers], { timeoutMs: 60_000 }).catch(() => {});
  }

  /**
   * A new `install-*` folder in the temp folder for one command's files (a build, TMPDIR),
   * removed after a failure too; one a killed install left is removed by the next install.
   */
  #scratch(): string {
    const path = posixJoin(this.#layout.tmpDir, `${BUILD_PREFIX}${randomBytes(8).toString("hex")}`);
    this.#pendingBuild = path;
    return path;
  }

  async #removeScratch(path: string): Promise<void> {
    // Best effort: a folder left here is removed by the next install.
    await this.#c.exec(["rm", "-rf", "--", path], { ...this.#op, timeoutMs: SHORT_TIMEOUT }).catch(() => undefined);
    if (this.#pendingBuild === path) this.#pendingBuild = undefined;
  }

  /** Deletes the completion marker before the first change that matters. */
  async #markDirty(): Promise<void> {
    if (this.#dirty) return;
    this.#dirty = true;
    if (this.#survey.has.has(MARKER_FILE)) await this.#c.deleteFile(this.#path(MARKER_FILE), this.#op);
    this.#survey.has.delete(MARKER_FILE);
  }

  async #saveState(): Promise<void> {
    const s = this.#state;
    s.updatedAt = new Date().toISOString();
    s.agentVersion = AGENT_VERSION;
    s.shared = this.#shared;
    await this.#c.putFile(this.#path(STATE_FILE), encode(formatState(s)), { ...this.#op, mode: this.#fileMode });
  }

  // ---- layout ---------------------------------------------------------------------------

  async #locate(): Promise<void> {
    const o = this.#options;
    await this.#recorder.run("layout", "finding the endpoint", async () => {
      await this.#c.connect(this.#op);
      const home = await this.#c.homeDir(this.#op);
      this.#homeDir = home;
      const current = await readCurrentLocation(this.#c, home, this.#op);
      this.#current = current;
      let layout: RemoteLayout;
      if (o.layout) {
        layout = {
          endpointDir: remotePath(home, o.layout.endpointDir, "layout.endpointDir"),
          tmpDir: remotePath(home, o.layout.tmpDir, "layout.tmpDir"),
          workDir: remotePath(home, o.layout.workDir, "layout.workDir"),
        };
      } else if (o.dir !== undefined) {
        layout = { endpointDir: remotePath(home, o.dir, "dir"), tmpDir: "", workDir: posixJoin(home) };
      } else {
        if (current.error) {
          throw new InstallError("INVALID_ARGUMENT", current.error.message, {
            step: "layout",
            fix: `fix or delete ${current.path}, or give the endpoint folder with --dir`,
            cause: current.error,
          });
        }
        layout = currentLayout(home, current);
      }
      const endpoint = layout.endpointDir;
      if (endpoint === "/" || isInside(home, endpoint)) {
        throw new UsageError(
          `the endpoint folder ${endpoint} would contain the home folder: choose a folder of its own`,
        );
      }
      const previous = await this.#readState(endpoint);
      this.#previous = previous;
      this.#state = previous ? structuredClone(previous) : emptyState(AGENT_VERSION);
      this.#shared = o.shared ?? previous?.shared ?? false;
      this.#preamble = this.#prepared.preamble ?? previous?.preamble ?? [];
      this.#wantVenv = o.venv ?? (previous ? previous.wantVenv !== null : true);
      this.#systemSitePackages = o.systemSitePackages ?? previous?.wantVenv?.systemSitePackages ?? false;
      this.#state.wantVenv = this.#wantVenv ? { systemSitePackages: this.#systemSitePackages } : null;
      this.#requestedPython = this.#prepared.python ?? previous?.python?.requested ?? null;

      if (o.tmpDir !== undefined) layout.tmpDir = remotePath(home, o.tmpDir, "tmpDir");
      else if (layout.tmpDir === "") {
        layout.tmpDir = this.#shared ? posixJoin(locationDir(home), "tmp") : posixJoin(endpoint, "tmp");
      }
      if (o.workDir !== undefined) layout.workDir = remotePath(home, o.workDir, "workDir");
      if (this.#shared && isInside(layout.tmpDir, endpoint)) {
        throw new UsageError(
          `a shared endpoint cannot hold the installing user's private temp folder (${layout.tmpDir}): put the endpoint outside ~/.sremote (--dir /group/folder/sremote) or give --tmp-dir outside it`,
        );
      }
      this.#layout = layout;
      this.#writeLocation = o.writeLocation ?? o.layout === undefined;
      const wantLocation = this.#writeLocation && !sameLayout(layout, defaultLayout(home));
      this.#locationText = wantLocation ? formatLocationFile(locationFromLayout(layout, home)) : null;
      return { changed: false, message: `endpoint ${endpoint}${this.#shared ? " (shared)" : ""}` };
    });
  }

  async #readState(endpoint: string): Promise<InstallState | null> {
    try {
      return parseState(new TextDecoder().decode(await this.#c.getFile(posixJoin(endpoint, STATE_FILE), this.#op)));
    } catch (err) {
      if (hasErrorCode(err, "FILE_NOT_FOUND")) return null;
      throw err;
    }
  }

  // ---- python (changes nothing) -------------------------------------------------------------

  async #checkPython(): Promise<void> {
    await this.#recorder.run("python", "finding Python", async () => {
      const candidates = this.#requestedPython ? [this.#requestedPython] : ["python3", "python"];
      const r = await this.#remote.run(
        wrap(["sh", "-c", PROBE_SH, "sh", this.#venvPython, PYINFO_PY, VENVINFO_PY, ...candidates], {
          preamble: "",
          preambleText: this.#preamble.join("\n"),
          umask: this.#umask,
        }),
        { step: "python", timeoutMs: SHORT_TIMEOUT },
      );
      if (r.exitCode === PREAMBLE_FAILED) {
        throw new InstallError("NOT_SET_UP", "the preamble failed on the remote", {
          step: "python",
          fix: "check the --preamble lines in a shell on the remote (a `module` command may need --login-env)",
          log: logTail(r.stderr),
        });
      }
      if (r.exitCode !== 0) throw commandFailure("python", "looking for Python", r, this.#endpoint);
      const probe = parseProbe(r.stdout);
      this.#git = probe.git;
      const chosen = choosePython(probe.candidates, this.#requestedPython, r.stderr);
      const base = chosen.info as PythonInfo;
      this.#base = base;
      this.#venvInfo = probe.venvFailed === null ? probe.venv : null;

      // Will the venv be (re)created, and can it be?
      const reasons: string[] = [];
      if (this.#wantVenv) {
        const recorded = this.#state.venv;
        if (this.#options.force) reasons.push("forced");
        if (!recorded) reasons.push("no venv yet");
        else {
          if (recorded.base !== base.executable || recorded.version !== base.version) {
            reasons.push(
              `Python changed (${recorded.version} at ${recorded.base} → ${base.version} at ${base.executable})`,
            );
          }
          if (recorded.systemSitePackages !== this.#systemSitePackages) {
            reasons.push(`--system-site-packages ${this.#systemSitePackages ? "added" : "removed"}`);
          }
        }
        if (!this.#venvInfo) {
          reasons.push(probe.venvFailed === null ? "its Python is missing" : "its Python does not run");
        } else if (this.#venvInfo.version !== base.version) reasons.push(`its Python is ${this.#venvInfo.version}`);
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
      this.#venvReasons = reasons;
      return {
        changed: false,
        skipped: false,
        message: `Python ${base.version} (${base.implementation}) at ${base.executable}`,
      };
    });
  }

  // ---- package sources (changes nothing) -----------------------------------------------------

  async #checkSources(): Promise<void> {
    const sources = this.#prepared.sources;
    if (sources.length === 0) return;
    await this.#recorder.run("sources", "checking the package sources", async () => {
      const found: string[] = [];
      for (const source of sources) {
        if (source.kind !== "git") continue;
        let commit: string;
        try {
          commit = await this.#resolveGitRef(source);
        } catch (err) {
          const kept = this.#installedCommit(source, err);
          if (kept === null) throw err;
          commit = kept;
          this.#recorder.emit({
            type: "warning",
            step: "sources",
            message: `cannot reach ${source.url} (${(err as InstallError).headline}); keeping the installed commit ${commit.slice(0, 12)} — the ref was not re-checked`,
          });
        }
        this.#commits.set(source, commit);
        found.push(`${describeSource(source)} → ${commit.slice(0, 12)}`);
      }
      // Sources built offline need setuptools and wheel somewhere: fail now rather than half-way.
      const offlineBuilds = sources.filter((s) => this.#isSourceBuild(s) && this.#indexFor(s) === false);
      if (offlineBuilds.length > 0) {
        const base = this.#base;
        const baseCan = base.pip && canBuildWheels(base.setuptools, base.wheel);
        const venvCan =
          this.#venvReasons.length > 0 || !this.#venvInfo
            ? this.#systemSitePackages && canBuildWheels(base.setuptools, base.wheel)
            : canBuildWheels(this.#venvInfo.setuptools, this.#venvInfo.wheel);
        const bringsTools = sources.some(
          (s) => s.kind === "local" && /^(wheel|setuptools)-[^/]*\.whl$/.test(basename(s.path)),
        );
        if (!venvCan && !baseCan && !bringsTools) {
          throw new InstallError(
            "NOT_SET_UP",
            `cannot build ${offlineBuilds.map(describeSource).join(", ")} offline: neither the venv nor ${base.executable} (setuptools ${base.setuptools ?? "missing"}, wheel ${base.wheel ? "present" : "missing"}) can build wheels`,
            { step: "sources", fix: BUILD_HELP },
          );
        }
      }
      return { changed: false, message: found.length > 0 ? found.join("; ") : `${sources.length} package(s) to check` };
    });
  }

  /**
   * The commit to keep when `git ls-remote` could not reach a git package's repository:
   * the recorded one, when the same URL, ref and subfolder are installed and their
   * distributions are still in a venv that stays. `null` (fail) when the package is new,
   * would be reinstalled anyway (--upgrade, --force, a new venv) or the error is not about
   * reaching the repository.
   */
  #installedCommit(source: GitPackage, err: unknown): string | null {
    if (!(err instanceof InstallError) || err.code !== "COMMAND_FAILED") return null;
    if (this.#options.upgrade || this.#options.force || this.#venvReasons.length > 0 || !this.#venvInfo) return null;
    const recorded = this.#state.packages.find((p) => p.key === sourceKey(source));
    if (!recorded || recorded.distributions.length === 0 || !/^[0-9a-f]{40,64}$/.test(recorded.resolved)) return null;
    const installed = Object.entries(this.#venvInfo.distributions);
    const present = recorded.distributions.every((dist) =>
      installed.some(([name, version]) => normalizeName(name) === normalizeName(dist.name) && version === dist.version),
    );
    return present ? recorded.resolved : null;
  }

  #isSourceBuild(source: PackageSource): boolean {
    if (source.kind === "git") return true;
    const kind = this.#prepared.locals.get(source)?.kind;
    return kind === "folder" || kind === "sdist";
  }

  #indexFor(source: PackageSource): boolean | string {
    return this.#options.index ?? source.kind === "spec";
  }

  /** `git ls-remote` on the remote: the commit a branch, tag or HEAD names. */
  async #resolveGitRef(source: GitPackage): Promise<string> {
    const subject = describeSource(source);
    if (!this.#git) {
      throw new InstallError("NOT_SET_UP", `git is not installed on the remote; it is needed to clone ${source.url}`, {
        step: "sources",
        fix: "install git there (apt-get install git, or --preamble 'module load git'), or clone the repository on this machine and pass the folder with --local",
      });
    }
    const r = await this.#remote.run(wrap(["git", "ls-remote", source.url], this.#wrapOptions(false)), {
      step: "sources",
      subject,
      timeoutMs: SHORT_TIMEOUT,
    });
    if (r.exitCode !== 0) {
      // git refuses repositories another account owns (CVE-2022-24765): trusting one is the user's call.
      const dubious = /detected dubious ownership in repository at '([^'\n]+)'/.exec(r.stderr);
      if (dubious) {
        throw new InstallError(
          "PERMISSION_DENIED",
          `git on the remote refuses ${source.url}: the repository belongs to another account (git's safe.directory check)`,
          {
            step: "sources",
            fix: `if you trust the repository's owner, run on the remote as this account: git config --global --add safe.directory ${shQuote(dubious[1] as string)}; or clone it on this machine and pass the folder with --local`,
            log: logTail(r.stderr, 10),
          },
        );
      }
      throw new InstallError(
        "COMMAND_FAILED",
        `git cannot read the repository ${source.url} from the remote (${describeExit(r)})`,
        {
          step: "sources",
          fix: "check the URL and that the remote account can reach and read it (git ls-remote <url> there)",
          log: logTail(r.stderr || r.stdout, 10),
        },
      );
    }
    const refs = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
      const [sha, name] = line.trim().split(/\s+/);
      if (sha && name) refs.set(name, sha);
    }
    const ref = source.ref;
    if (ref === undefined) {
      const head = refs.get("HEAD");
      if (head) return head;
      throw new InstallError("INVALID_ARGUMENT", `${source.url} has no HEAD: name a branch or tag (url@branch)`, {
        step: "sources",
      });
    }
    for (const name of [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref]) {
      const sha = refs.get(name);
      if (sha) return sha;
    }
    if (/^[0-9a-f]{40}$/i.test(ref)) return ref.toLowerCase();
    const names = [...refs.keys()]
      .filter((n) => n.startsWith("refs/heads/") || (n.startsWith("refs/tags/") && !n.endsWith("^{}")))
      .map((n) => n.replace(/^refs\/(heads|tags)\//, ""))
      .slice(0, 20);
    throw new InstallError("INVALID_ARGUMENT", `${source.url} has no branch or tag ${JSON.stringify(ref)}`, {
      step: "sources",
      fix: `use one of: ${names.join(", ") || "(none)"}; or a full 40-character commit id`,
    });
  }

  // ---- folders ----------------------------------------------------------------------------

  async #prepareFolders(): Promise<void> {
    const home = this.#homeDir;
    const endpoint = this.#endpoint;
    const r = await this.#recorder.run("folders", `checking ${endpoint}`, async () => {
      const needLocDir = this.#locationText !== null && !isInside(locationDir(home), endpoint);
      const res = await this.#remote.run(
        [
          "sh",
          "-c",
          SURVEY_SH,
          "sh",
          endpoint,
          this.#layout.tmpDir,
          this.#layout.workDir,
          needLocDir ? locationDir(home) : "",
          this.#shared ? "755" : "700",
          this.#umask,
          STATE_FILE,
          MARKER_FILE,
        ],
        { step: "folders", timeoutMs: SHORT_TIMEOUT },
      );
      if (res.exitCode === SURVEY_FOREIGN) {
        throw new InstallError("INVALID_ARGUMENT", res.stderr.replace(/^sremote-install: /, "").trim(), {
          step: "folders",
          fix: "install into a new or empty folder (--dir <folder>), or uninstall what is there first",
        });
      }
      if (res.exitCode !== 0) {
        // The folder that refused: the nearest existing parent of the one that could not be made.
        const blocked = /^blocked (.+)$/m.exec(res.stdout)?.[1] ?? endpoint;
        throw commandFailure("folders", `preparing ${endpoint}`, res, blocked, {
          fix: `check that this account can create and write ${endpoint} (ls -ld ${blocked}), or choose another folder with --dir`,
        });
      }
      const survey = parseSurvey(res.stdout);
      if (!survey.owner) {
        throw new InstallError("PERMISSION_DENIED", `${endpoint} belongs to another account`, {
          step: "folders",
          fix: `ask its owner to run sremote install; to use it as a shared endpoint: sremote attach <target> ${endpoint}`,
        });
      }
      return {
        changed: survey.changed.length > 0,
        skipped: survey.changed.length === 0,
        message: survey.changed.length > 0 ? survey.changed.join("; ") : "folders in place",
        survey,
      };
    });
    this.#survey = r.survey;
  }

  // ---- config files -----------------------------------------------------------------------

  async #writeConfig(): Promise<void> {
    await this.#recorder.run("config", "checking preamble.sh and the python file", async () => {
      const changes: string[] = [];
      const has = this.#survey.has;
      const previous = this.#previous;
      const preamble = this.#preamble;
      const samePreamble =
        !this.#options.force &&
        previous !== null &&
        JSON.stringify(previous.preamble) === JSON.stringify(preamble) &&
        has.has(PREAMBLE_FILE) === preamble.length > 0;
      if (!samePreamble) {
        if (preamble.length > 0) {
          await this.#markDirty();
          const text = `# Written by sremote install; interpreter.sh sources it before starting Python.\n${preamble.join("\n")}\n`;
          await this.#c.putFile(this.#path(PREAMBLE_FILE), encode(text), { ...this.#op, mode: this.#fileMode });
          has.add(PREAMBLE_FILE);
          changes.push(`wrote ${PREAMBLE_FILE}`);
        } else if (has.has(PREAMBLE_FILE)) {
          await this.#markDirty();
          await this.#c.deleteFile(this.#path(PREAMBLE_FILE), this.#op);
          has.delete(PREAMBLE_FILE);
          changes.push(`removed ${PREAMBLE_FILE}`);
        }
        this.#state.preamble = [...preamble];
      }
      const base = this.#base;
      if (this.#options.force || !has.has(PYTHON_FILE) || this.#state.python?.executable !== base.executable) {
        await this.#markDirty();
        await this.#c.putFile(this.#path(PYTHON_FILE), encode(`${base.executable}\n`), {
          ...this.#op,
          mode: this.#fileMode,
        });
        changes.push(`wrote ${PYTHON_FILE} (${base.executable})`);
      }
      const record: PythonRecord = {
        requested: this.#requestedPython,
        executable: base.executable,
        version: base.version,
      };
      if (JSON.stringify(this.#state.python) !== JSON.stringify(record) || changes.length > 0) {
        await this.#markDirty();
        this.#state.python = record;
        await this.#saveState();
      }
      // Build folders an interrupted install left behind, removed once nothing uses them.
      if (this.#survey.stale.length > 0) {
        await this.#markDirty();
        const r = await this.#remote.run(wrap(["rm", "-rf", "--", ...this.#survey.stale], this.#wrapOptions(true)), {
          step: "config",
          timeoutMs: this.#longTimeout,
        });
        if (r.exitCode !== 0)
          throw commandFailure("config", "removing an interrupted install's build folders", r, this.#endpoint);
        changes.push(`removed ${this.#survey.stale.length} build folder(s) of an interrupted install`);
      }
      return {
        changed: changes.length > 0,
        skipped: changes.length === 0,
        message: changes.length > 0 ? changes.join("; ") : "up to date",
      };
    });
  }

  // ---- venv -------------------------------------------------------------------------------

  async #ensureVenv(): Promise<void> {
    const envDir = this.#path(VENV_DIR);
    await this.#recorder.run("venv", this.#wantVenv ? `checking the venv ${envDir}` : "no venv", async () => {
      if (!this.#wantVenv) {
        if (!this.#venvInfo && this.#state.venv === null) {
          return { changed: false, skipped: true, message: "no venv (venv: false)" };
        }
        await this.#markDirty();
        const r = await this.#remote.run(["rm", "-rf", "--", envDir], { step: "venv", timeoutMs: SHORT_TIMEOUT });
        if (r.exitCode !== 0) throw commandFailure("venv", `removing ${envDir}`, r, this.#endpoint);
        this.#state.venv = null;
        this.#state.packages = [];
        this.#venvInfo = null;
        await this.#saveState();
        return { changed: true, message: `removed the venv ${envDir} (venv: false)` };
      }
      if (this.#venvReasons.length === 0) {
        return { changed: false, skipped: true, message: `venv up to date (Python ${this.#base.version})` };
      }
      await this.#markDirty();
      this.#state.venv = null;
      this.#state.packages = [];
      await this.#saveState();
      const argv = [this.#base.executable, "-m", "venv", "--clear"];
      if (this.#systemSitePackages) argv.push("--system-site-packages");
      argv.push(envDir);
      this.#venvCreating = true;
      const scratch = this.#scratch();
      const r = await this.#remote.run(wrap(argv, { ...this.#wrapOptions(true), scratch }), {
        step: "venv",
        timeoutMs: this.#longTimeout,
        stream: true,
      });
      await this.#removeScratch(scratch);
      if (r.exitCode !== 0) {
        const text = `${r.stdout}\n${r.stderr}`;
        if (/ensurepip is not\s+available|No module named ensurepip/.test(text)) {
          throw new InstallError(
            "NOT_SET_UP",
            `Python ${this.#base.version} cannot create virtual environments: ensurepip is missing`,
            {
              step: "venv",
              fix: `apt-get install python${minorVersion(this.#base.version)}-venv on the remote (Debian/Ubuntu), or pass another interpreter with --python`,
              log: logTail(text),
            },
          );
        }
        throw commandFailure("venv", `creating the venv ${envDir}`, r, this.#endpoint);
      }
      this.#venvInfo = await this.#probeVenv();
      this.#venvCreating = false;
      this.#state.venv = {
        systemSitePackages: this.#systemSitePackages,
        base: this.#base.executable,
        version: this.#base.version,
      };
      await this.#saveState();
      this.#venvRecreated = true;
      return { changed: true, message: `created ${envDir} (${this.#venvReasons.join("; ")})` };
    });
  }

  async #probeVenv(): Promise<VenvInfo> {
    const r = await this.#remote.run(wrap([this.#venvPython, "-c", VENVINFO_PY], this.#wrapOptions(false)), {
      step: "venv",
      timeoutMs: SHORT_TIMEOUT,
    });
    const parsed = parseProbe(r.stdout);
    if (r.exitCode !== 0 || !parsed.venv) {
      throw new InstallError(
        "COMMAND_FAILED",
        `the venv's Python ${this.#venvPython} does not run (${describeExit(r)})`,
        {
          step: "venv",
          fix: "run the install again with --force to recreate the venv",
          log: logTail(`${r.stdout}\n${r.stderr}`),
        },
      );
    }
    return parsed.venv;
  }

  // ---- agent ------------------------------------------------------------------------------

  async #ensureAgent(): Promise<void> {
    await this.#recorder.run("agent", "checking the agent files", async () => {
      const endpoint = this.#endpoint;
      const [remoteManifest, local] = await Promise.all([
        readRemoteManifest(this.#c, endpoint, this.#op),
        agentManifest(this.#options.agentDir),
      ]);
      const same =
        remoteManifest !== null &&
        remoteManifest.version === local.version &&
        Object.keys(local.files).length === Object.keys(remoteManifest.files).length &&
        Object.entries(local.files).every(([k, v]) => remoteManifest.files[k] === v);
      const interpreterPresent = this.#survey.has.has("interpreter.sh");
      if (same && !this.#options.force && interpreterPresent) {
        return { changed: false, skipped: true, message: `agent ${local.version} up to date` };
      }
      await this.#markDirty();
      const sizes = new Map((await agentFiles(this.#options.agentDir)).map((f) => [f.path, f.size]));
      const result = await syncAgent(this.#c, endpoint, {
        agentDir: this.#options.agentDir,
        force: this.#options.force || !interpreterPresent,
        shared: this.#shared,
        signal: this.#op.signal,
        onProgress: (e) => {
          if (e.action === "upload") {
            this.#recorder.emit({
              type: "upload",
              step: "agent",
              path: this.#path(e.file),
              bytes: sizes.get(e.file) ?? 0,
            });
          }
        },
      });
      const was =
        result.previousVersion && result.previousVersion !== AGENT_VERSION ? ` (was ${result.previousVersion})` : "";
      return { changed: true, message: `agent ${AGENT_VERSION}: ${result.uploaded.length} file(s) uploaded${was}` };
    });
  }

  // ---- packages ---------------------------------------------------------------------------

  async #ensurePackage(source: PackageSource): Promise<void> {
    const subject = describeSource(source);
    await this.#recorder.run(
      "package",
      `installing ${subject}`,
      async () => {
        const venvInfo = this.#venvInfo;
        if (!venvInfo) {
          throw new InstallError("NOT_SET_UP", "the venv's Python does not run", {
            step: "package",
            fix: "run the install again with --force",
          });
        }
        const key = sourceKey(source);
        const local = this.#prepared.locals.get(source);
        const resolved =
          source.kind === "spec"
            ? source.spec
            : source.kind === "git"
              ? (this.#commits.get(source) as string)
              : (local as PreparedLocal).sha256;
        const recorded = this.#state.packages.find((p) => p.key === key);
        const installed = Object.entries(venvInfo.distributions);
        const present = (dists: Distribution[]) =>
          dists.every((dist) =>
            installed.some(
              ([name, version]) => normalizeName(name) === normalizeName(dist.name) && version === dist.version,
            ),
          );
        if (
          recorded &&
          recorded.resolved === resolved &&
          !this.#options.upgrade &&
          !this.#options.force &&
          !this.#venvRecreated &&
          present(recorded.distributions)
        ) {
          return {
            changed: false,
            skipped: true,
            message: `${subject} up to date (${shortResolved(source, resolved)})`,
          };
        }
        await this.#markDirty();
        const output = await this.#installPackage(source, local, venvInfo);
        this.#venvInfo = await this.#probeVenv();
        let distributions = parseInstalled(output);
        if (distributions.length === 0 && source.kind === "spec") {
          const name = specName(source.spec);
          const found = Object.entries(this.#venvInfo.distributions).find(([n]) => normalizeName(n) === name);
          if (found) distributions = [{ name: found[0], version: found[1] }];
        }
        const record: PackageRecord = {
          key,
          kind: source.kind,
          source: subject,
          resolved,
          distributions,
          installedAt: new Date().toISOString(),
        };
        this.#state.packages = [...this.#state.packages.filter((p) => p.key !== key), record];
        await this.#saveState();
        const names = distributions.map((x) => `${x.name} ${x.version}`).join(", ");
        return {
          changed: true,
          message: `installed ${subject} (${shortResolved(source, resolved)})${names ? `: ${names}` : ""}`,
        };
      },
      subject,
    );
  }

  /** Runs pip for one package; returns pip's output. */
  async #installPackage(source: PackageSource, local: PreparedLocal | undefined, venvInfo: VenvInfo): Promise<string> {
    const subject = describeSource(source);
    const base = this.#base;
    const options = this.#options;
    const useIndex = this.#indexFor(source);
    const pip = [this.#venvPython, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"];
    pip.push("--progress-bar", "off");
    if (useIndex === false) pip.push("--no-index");
    else if (typeof useIndex === "string") pip.push("--index-url", useIndex);
    for (const f of options.findLinks ?? []) pip.push("--find-links", f);
    let builder: "direct" | "base" = "direct";
    if (this.#isSourceBuild(source) && useIndex === false) {
      pip.push("--no-build-isolation");
      if (!canBuildWheels(venvInfo.setuptools, venvInfo.wheel)) {
        if (base.pip && canBuildWheels(base.setuptools, base.wheel)) builder = "base";
        else {
          throw new InstallError(
            "NOT_SET_UP",
            `cannot build ${subject} offline: the venv has ${venvInfo.setuptools ? `setuptools ${venvInfo.setuptools} but not the wheel package` : "no setuptools"}, and ${base.executable} cannot build wheels either`,
            { step: "package", fix: BUILD_HELP },
          );
        }
      }
    }
    if (options.upgrade && source.kind === "spec") pip.push("--upgrade");
    const run = (argv: string[], scratch?: string) =>
      this.#remote.run(wrap(argv, { ...this.#wrapOptions(true), scratch }), {
        step: "package",
        subject,
        timeoutMs: this.#longTimeout,
        stream: true,
      });

    if (source.kind === "spec") {
      const scratch = this.#scratch();
      const r = await run([...pip, source.spec], scratch);
      await this.#removeScratch(scratch);
      if (r.exitCode !== 0) throw pipFailure(subject, r, this.#endpoint, useIndex);
      return r.stdout;
    }
    const build = this.#scratch();
    let kind: "git" | "tar" | "file" = "git";
    let target = source.kind === "git" ? source.url : "";
    if (local) {
      const mk = await this.#c.exec(["mkdir", "-p", "--", build], { ...this.#op, timeoutMs: SHORT_TIMEOUT });
      if (mk.exitCode !== 0) throw commandFailure("package", `creating ${build}`, mk, this.#layout.tmpDir);
      target = posixJoin(build, local.uploadName);
      try {
        await this.#c.putFile(target, local.data, { ...this.#op, mode: 0o600 });
      } catch (err) {
        if (isSremoteError(err) && (err.code === "REMOTE_IO" || err.code === "PERMISSION_DENIED")) {
          throw new InstallError(err.code, `uploading ${subject} to ${target} failed: ${err.message}`, {
            step: "package",
            fix: `free some space (df -h ${this.#layout.tmpDir}) or use another temp folder with --tmp-dir`,
            cause: err,
          });
        }
        throw err;
      }
      kind = local.kind === "folder" ? "tar" : "file";
    }
    const subdir = source.kind === "git" ? (source.subdir ?? "") : "";
    const commit = source.kind === "git" ? (this.#commits.get(source) as string) : "";
    const r = await run([
      "sh",
      "-c",
      BUILD_SH,
      "sh",
      kind,
      build,
      builder,
      base.executable,
      this.#venvPython,
      target,
      commit,
      subdir,
      EXTRACT_PY,
      ...pip,
    ]);
    this.#pendingBuild = undefined;
    if (r.exitCode === 0) return r.stdout;
    const said = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("sremote-install: "))
      .map((l) => l.slice("sremote-install: ".length))
      .pop();
    switch (r.exitCode) {
      case BUILD_EXIT.clone:
        throw new InstallError("COMMAND_FAILED", said ?? `cloning ${subject} failed`, {
          step: "package",
          fix: "check the URL, the ref and that the remote account can read the repository",
          log: logTail(r.stderr, 15),
        });
      case BUILD_EXIT.subdir:
      case BUILD_EXIT.notProject:
        throw new InstallError("INVALID_ARGUMENT", said ?? `${subject} is not a Python project`, {
          step: "package",
          fix: "name the folder holding pyproject.toml or setup.py: url@ref#subdir",
        });
      case BUILD_EXIT.wheel:
        throw new InstallError("COMMAND_FAILED", `building a wheel of ${subject} with ${base.executable} failed`, {
          step: "package",
          fix: BUILD_HELP,
          log: logTail(`${r.stdout}\n${r.stderr}`),
        });
      default:
        throw pipFailure(subject, r, this.#endpoint, useIndex);
    }
  }

  // ---- .location, modes, marker -----------------------------------------------------------

  async #ensureLocation(): Promise<"written" | "removed" | "unchanged" | "none"> {
    const current = this.#current;
    const text = this.#locationText;
    const r = await this.#recorder.run("location", "checking .location", async () => {
      if (!this.#writeLocation) {
        return { changed: false, skipped: true, message: "layout given by the target", action: "none" as const };
      }
      if (text !== null) {
        if (current.text === text) {
          return { changed: false, skipped: true, message: `${current.path} up to date`, action: "unchanged" as const };
        }
        await this.#c.putFile(current.path, encode(text), { ...this.#op, mode: 0o600 });
        return { changed: true, message: `wrote ${current.path} → ${this.#endpoint}`, action: "written" as const };
      }
      if (current.text !== null) {
        await this.#c.deleteFile(current.path, this.#op);
        return {
          changed: true,
          message: `removed ${current.path} (it pointed elsewhere; this endpoint is the default)`,
          action: "removed" as const,
        };
      }
      return { changed: false, skipped: true, message: "default layout, no .location needed", action: "none" as const };
    });
    return r.action;
  }

  async #ensureModes(): Promise<void> {
    const endpoint = this.#endpoint;
    await this.#recorder.run("permissions", "checking that nothing is writable by group or others", async () => {
      // The Python calls run with: the venv's, else the base interpreter.
      const python = this.#wantVenv ? this.#venvPython : this.#base.executable;
      const r = await this.#remote.run(wrap(["sh", "-c", SHARE_SH, "sh", endpoint, python], this.#wrapOptions(false)), {
        step: "permissions",
        timeoutMs: SHORT_TIMEOUT,
      });
      if (r.exitCode !== 0) throw commandFailure("permissions", `setting the modes in ${endpoint}`, r, endpoint);
      const lines = r.stdout.split("\n");
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
          log: logTail(r.stderr, 15),
        });
      }
      const compiled = lines.includes("compiled");
      const changed = compiled || lines.includes("changed");
      if (changed) await this.#markDirty();
      const done = [
        ...(compiled ? ["byte-compiled the agent"] : []),
        ...(lines.includes("changed") ? ["made everything readable, nothing writable by group or others"] : []),
      ];
      return {
        changed,
        skipped: !changed,
        message: changed ? done.join("; ") : "modes already right",
      };
    });
  }

  async #finish(): Promise<void> {
    await this.#recorder.run("complete", "recording the install", async () => {
      // A choice recorded only in the state (e.g. venv: false before any venv was made) counts too.
      const upToDate =
        !this.#dirty &&
        this.#survey.has.has(MARKER_FILE) &&
        this.#previous !== null &&
        JSON.stringify(this.#state) === JSON.stringify(this.#previous) &&
        !this.#options.force;
      if (upToDate) return { changed: false, skipped: true, message: "nothing changed" };
      await this.#markDirty();
      await this.#saveState();
      const marker: CompletionMarker = { completedAt: new Date().toISOString(), agentVersion: AGENT_VERSION };
      await this.#c.putFile(this.#path(MARKER_FILE), encode(`${JSON.stringify(marker)}\n`), {
        ...this.#op,
        mode: this.#fileMode,
      });
      return { changed: true, message: `install complete in ${this.#endpoint}` };
    });
  }
}

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

function shortResolved(source: PackageSource, resolved: string): string {
  if (source.kind === "git") return `commit ${resolved.slice(0, 12)}`;
  if (source.kind === "local") return `sha256 ${resolved.slice(0, 12)}`;
  return resolved;
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

function pipFailure(
  subject: string,
  r: { stdout: string; stderr: string; exitCode: number | null; signal: string | null },
  endpoint: string,
  useIndex: boolean | string,
): InstallError {
  const text = `${r.stdout}\n${r.stderr}`;
  let fix: string | undefined;
  if (/No matching distribution found|Could not find a version that satisfies/.test(text)) {
    fix =
      useIndex === false
        ? "check the name and version; without an index pip only looks in --find-links folders and the pip configuration's find-links"
        : "check the name and version, and that the remote can reach the package index (or use --find-links / --index-url)";
  } else if (
    /BackendUnavailable|build_meta|bdist_wheel|No module named '?(setuptools|wheel|hatchling|flit_core|poetry)/.test(
      text,
    )
  ) {
    fix = BUILD_HELP;
  }
  return commandFailure("package", `pip could not install ${subject}`, { ...r }, endpoint, { fix, saysFailed: true });
}
