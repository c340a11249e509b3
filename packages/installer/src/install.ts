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
  UsageError,
} from "@sremote/core";
import { InstallError, logTail } from "./errors.js";
import { type InstallEventListener, StepRecorder, type StepReport } from "./events.js";
import { countingConnector, type OperationCounts, zeroCounts } from "./operations.js";
import { currentLayout, isInside, locationDir, readCurrentLocation, remotePath, sameLayout } from "./paths.js";
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
import { commandFailure, describeExit, RemoteRunner, wrap } from "./remote.js";
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

interface Survey {
  changed: string[];
  has: Set<string>;
  stale: string[];
  git: string | null;
  owner: boolean;
}

function parseSurvey(stdout: string): Survey {
  const s: Survey = { changed: [], has: new Set(), stale: [], git: null, owner: true };
  for (const line of stdout.split("\n")) {
    const space = line.indexOf(" ");
    const word = line.slice(0, space);
    const rest = line.slice(space + 1);
    if (word === "changed") s.changed.push(rest);
    else if (word === "has") s.has.add(rest);
    else if (word === "stale") s.stale.push(rest);
    else if (word === "git") s.git = rest;
    else if (word === "owner") s.owner = rest === "yes";
  }
  return s;
}

function checkPreamble(lines: readonly string[]): string[] {
  if (!Array.isArray(lines)) throw new UsageError("preamble must be an array of shell lines");
  return lines.map((line, i) => {
    if (typeof line !== "string") throw new UsageError(`preamble line ${i + 1} must be a string`);
    if (/[\0\r\n]/.test(line)) throw new UsageError(`preamble line ${i + 1} must be one line without NUL bytes`);
    return line;
  });
}

function checkPython(python: string): string {
  if (typeof python !== "string" || python.trim() === "" || /[\0\r\n]/.test(python) || python.startsWith("-")) {
    throw new UsageError(`python must be an interpreter name or an absolute path, got ${JSON.stringify(python)}`);
  }
  return python;
}

function preambleText(lines: readonly string[]): string {
  return `# Written by sremote install; interpreter.sh sources it before starting Python.\n${lines.join("\n")}\n`;
}

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex");
const encode = (text: string) => new TextEncoder().encode(text);

/** The Python-version-specific Debian/Ubuntu package that provides venv. */
function venvPackageHint(version: string): string {
  return `python${minorVersion(version)}-venv`;
}

/** A local package, read and hashed on the client before anything changes remotely. */
interface PreparedLocal {
  kind: LocalKind;
  data: Uint8Array;
  sha256: string;
  /** File name to upload as (wheels must keep their name). */
  uploadName: string;
}

/**
 * Installs (or repairs, or updates) an SRemote endpoint through any connector: folders, the
 * agent, Python and its venv, packages, `.location`, shared-endpoint modes. Safe to run
 * again at any time: steps whose inputs did not change are skipped, and an interrupted
 * install is repaired by the next one (`install-complete` is written last).
 *
 * @throws UsageError (`INVALID_ARGUMENT`, `INVALID_LOCATION`) for bad options, before anything
 *   changes remotely; {@link InstallError} for a failed step (with `fix` and `log`);
 *   ConnectorError for transport failures; TimeoutError / AbortError per `timeoutMs`/`signal`.
 */
export async function install(connector: Connector, options: InstallOptions = {}): Promise<InstallResult> {
  const t0 = performance.now();
  // Everything that can be checked on the client is checked before the first remote change.
  const sources = (options.packages ?? []).map(normalizePackage);
  const preambleOption = options.preamble === undefined ? undefined : checkPreamble(options.preamble);
  const pythonOption = options.python === undefined ? undefined : checkPython(options.python);
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

  const d = deadline(options);
  const counts = zeroCounts();
  const c = countingConnector(connector, counts);
  const recorder = new StepRecorder(options.onProgress);
  const remote = new RemoteRunner(c, recorder, d.signal, options.loginEnv ?? false);
  const op = remote.op;
  const longTimeout = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT;
  let pendingBuild: string | undefined;

  try {
    // ---- layout -------------------------------------------------------------------------
    const placed = await recorder.run("layout", "finding the endpoint", async () => {
      await c.connect(op);
      const homeDir = await c.homeDir(op);
      const current = await readCurrentLocation(c, homeDir, op);
      let layout: RemoteLayout;
      if (options.layout) {
        layout = {
          endpointDir: remotePath(homeDir, options.layout.endpointDir, "layout.endpointDir"),
          tmpDir: remotePath(homeDir, options.layout.tmpDir, "layout.tmpDir"),
          workDir: remotePath(homeDir, options.layout.workDir, "layout.workDir"),
        };
      } else if (options.dir !== undefined) {
        const endpointDir = remotePath(homeDir, options.dir, "dir");
        layout = { endpointDir, tmpDir: "", workDir: posixJoin(homeDir) };
      } else {
        if (current.error) {
          throw new InstallError("INVALID_ARGUMENT", current.error.message, {
            step: "layout",
            fix: `fix or delete ${current.path}, or give the endpoint folder with --dir`,
            cause: current.error,
          });
        }
        layout = currentLayout(homeDir, current);
      }
      return { changed: false, message: `endpoint ${layout.endpointDir}`, homeDir, current, layout };
    });
    const { homeDir, current } = placed;
    const layout = placed.layout;
    const endpoint = layout.endpointDir;
    const path = (name: string) => posixJoin(endpoint, name);

    let state = await readState(c, endpoint, op);
    const previous = state;
    state ??= emptyState(AGENT_VERSION);
    const shared = options.shared ?? previous?.shared ?? false;
    const preamble = preambleOption ?? previous?.preamble ?? [];
    const wantVenv = options.venv ?? (previous ? previous.venv !== null : true);
    const systemSitePackages = options.systemSitePackages ?? previous?.venv?.systemSitePackages ?? false;
    const requestedPython = pythonOption ?? previous?.python?.requested ?? null;

    // The temp folder: given, from .location, or the default for the mode.
    if (options.tmpDir !== undefined) layout.tmpDir = remotePath(homeDir, options.tmpDir, "tmpDir");
    else if (layout.tmpDir === "") {
      layout.tmpDir = shared ? posixJoin(locationDir(homeDir), "tmp") : path("tmp");
    }
    if (options.workDir !== undefined) layout.workDir = remotePath(homeDir, options.workDir, "workDir");
    if (shared && isInside(layout.tmpDir, endpoint)) {
      throw new UsageError(
        `a shared endpoint cannot hold the installing user's private temp folder (${layout.tmpDir}): put the endpoint outside ~/.sremote (--dir /group/folder/sremote) or give --tmp-dir outside it`,
      );
    }
    if (endpoint === "/" || isInside(homeDir, endpoint)) {
      throw new UsageError(`the endpoint folder ${endpoint} would contain the home folder: choose a folder of its own`);
    }
    const writeLocation = options.writeLocation ?? options.layout === undefined;
    const wantLocation = writeLocation && !sameLayout(layout, defaultLayout(homeDir));
    const locationText = wantLocation ? formatLocationFile(locationFromLayout(layout, homeDir)) : null;
    const umask = shared ? "022" : "077";
    const endpointMode = shared ? "755" : "700";

    // ---- folders ------------------------------------------------------------------------
    const survey = await recorder
      .run("folders", `checking ${endpoint}`, async () => {
        const needLocDir = locationText !== null && !isInside(locationDir(homeDir), endpoint);
        const r = await remote.run(
          [
            "sh",
            "-c",
            SURVEY_SH,
            "sh",
            endpoint,
            layout.tmpDir,
            layout.workDir,
            needLocDir ? locationDir(homeDir) : "",
            endpointMode,
            umask,
            STATE_FILE,
            MARKER_FILE,
          ],
          { step: "folders", timeoutMs: SHORT_TIMEOUT },
        );
        if (r.exitCode === SURVEY_FOREIGN) {
          throw new InstallError("INVALID_ARGUMENT", r.stderr.replace(/^sremote-install: /, "").trim(), {
            step: "folders",
            fix: "install into a new or empty folder (--dir <folder>), or uninstall what is there first",
          });
        }
        if (r.exitCode !== 0) throw commandFailure("folders", `preparing ${endpoint}`, r, endpoint);
        const s = parseSurvey(r.stdout);
        if (!s.owner) {
          throw new InstallError("PERMISSION_DENIED", `${endpoint} belongs to another account`, {
            step: "folders",
            fix: `ask its owner to run sremote install; to use it as a shared endpoint, run sremote install <target> --attach ${endpoint}`,
          });
        }
        return {
          changed: s.changed.length > 0,
          skipped: s.changed.length === 0,
          message: s.changed.length > 0 ? s.changed.join("; ") : "folders in place",
          survey: s,
        };
      })
      .then((r) => r.survey);

    // The completion marker goes before the first change of anything that matters.
    let dirty = false;
    const markDirty = async () => {
      if (dirty) return;
      dirty = true;
      if (survey.has.has(MARKER_FILE)) await c.deleteFile(path(MARKER_FILE), op);
      survey.has.delete(MARKER_FILE);
    };
    const saveState = async () => {
      state.updatedAt = new Date().toISOString();
      state.agentVersion = AGENT_VERSION;
      state.shared = shared;
      await c.putFile(path(STATE_FILE), encode(formatState(state)), { ...op, mode: shared ? 0o644 : 0o600 });
    };
    const fileMode = shared ? 0o644 : 0o600;

    // ---- python -------------------------------------------------------------------------
    const preambleFile = preamble.length > 0 ? path(PREAMBLE_FILE) : "";
    const venvPython = path(`${VENV_DIR}/bin/python`);
    const python = await recorder.run("python", "finding Python", async () => {
      const changes: string[] = [];
      const samePreamble =
        !options.force &&
        previous !== null &&
        JSON.stringify(previous.preamble) === JSON.stringify(preamble) &&
        survey.has.has(PREAMBLE_FILE) === preamble.length > 0;
      if (!samePreamble) {
        await markDirty();
        if (preamble.length > 0) {
          await c.putFile(path(PREAMBLE_FILE), encode(preambleText(preamble)), { ...op, mode: fileMode });
          changes.push(`wrote ${PREAMBLE_FILE}`);
        } else if (survey.has.has(PREAMBLE_FILE)) {
          await c.deleteFile(path(PREAMBLE_FILE), op);
          changes.push(`removed ${PREAMBLE_FILE}`);
        }
        state.preamble = [...preamble];
      }
      const candidates = requestedPython ? [requestedPython] : ["python3", "python"];
      const r = await remote.run(
        wrap(
          [
            "sh",
            "-c",
            PROBE_SH,
            "sh",
            survey.has.has(`${VENV_DIR}/bin/python`) ? venvPython : "",
            PYINFO_PY,
            VENVINFO_PY,
            ...candidates,
          ],
          { preamble: preambleFile, umask },
        ),
        { step: "python", timeoutMs: SHORT_TIMEOUT },
      );
      if (r.exitCode === PREAMBLE_FAILED) {
        throw new InstallError("NOT_SET_UP", "the preamble failed on the remote", {
          step: "python",
          fix: "check the --preamble lines in a shell on the remote (a `module` command may need --login-env)",
          log: logTail(r.stderr),
        });
      }
      if (r.exitCode !== 0) throw commandFailure("python", "looking for Python", r, endpoint);
      const probe = parseProbe(r.stdout);
      const chosen = choosePython(probe.candidates, requestedPython, r.stderr);
      const info = chosen.info as PythonInfo;
      const record: PythonRecord = { requested: requestedPython, executable: info.executable, version: info.version };
      if (options.force || !survey.has.has(PYTHON_FILE) || state.python?.executable !== info.executable) {
        await markDirty();
        await c.putFile(path(PYTHON_FILE), encode(`${info.executable}\n`), { ...op, mode: fileMode });
        changes.push(`wrote ${PYTHON_FILE}`);
      }
      if (JSON.stringify(state.python) !== JSON.stringify(record)) {
        await markDirty();
        state.python = record;
        await saveState();
      }
      return {
        changed: changes.length > 0,
        skipped: changes.length === 0,
        message: `Python ${info.version} (${info.implementation}) at ${info.executable}${changes.length > 0 ? `; ${changes.join(", ")}` : ""}`,
        info,
        venvInfo: probe.venvFailed === null ? probe.venv : null,
      };
    });
    const base = python.info;
    let venvInfo = python.venvInfo;

    // Leftovers of an interrupted install (its build folders), removed under the lock.
    if (survey.stale.length > 0) {
      await markDirty();
      const r = await remote.run(
        wrap(["rm", "-rf", "--", ...survey.stale], { preamble: preambleFile, umask, lock: lockOf(base, endpoint) }),
        { step: "folders", timeoutMs: SHORT_TIMEOUT },
      );
      if (r.exitCode !== 0)
        throw commandFailure("folders", "removing an interrupted install's build folders", r, endpoint);
      recorder.emit({
        type: "warning",
        step: "folders",
        message: `removed ${survey.stale.length} leftover build folder(s) of an interrupted install`,
      });
    }

    // ---- venv ---------------------------------------------------------------------------
    let venvRecreated = false;
    await recorder.run("venv", wantVenv ? `checking the venv ${path(VENV_DIR)}` : "no venv", async () => {
      if (!wantVenv) {
        if (!survey.has.has(`${VENV_DIR}/bin/python`) && state.venv === null) {
          return { changed: false, skipped: true, message: "no venv (venv: false)" };
        }
        await markDirty();
        const r = await remote.run(["rm", "-rf", "--", path(VENV_DIR)], { step: "venv", timeoutMs: SHORT_TIMEOUT });
        if (r.exitCode !== 0) throw commandFailure("venv", `removing ${path(VENV_DIR)}`, r, endpoint);
        state.venv = null;
        state.packages = [];
        await saveState();
        venvInfo = null;
        return { changed: true, message: `removed the venv ${path(VENV_DIR)} (venv: false)` };
      }
      const record: VenvRecord = { systemSitePackages, base: base.executable, version: base.version };
      const reasons: string[] = [];
      if (options.force) reasons.push("forced");
      if (!state.venv) reasons.push("no venv yet");
      else {
        if (state.venv.base !== record.base || state.venv.version !== record.version)
          reasons.push(
            `Python changed (${state.venv.version} at ${state.venv.base} → ${record.version} at ${record.base})`,
          );
        if (state.venv.systemSitePackages !== systemSitePackages)
          reasons.push(`--system-site-packages ${systemSitePackages ? "added" : "removed"}`);
      }
      if (!venvInfo)
        reasons.push(survey.has.has(`${VENV_DIR}/bin/python`) ? "its Python does not run" : "its Python is missing");
      else if (venvInfo.version !== base.version) reasons.push(`its Python is ${venvInfo.version}`);
      if (reasons.length === 0) {
        return { changed: false, skipped: true, message: `venv up to date (Python ${base.version})` };
      }
      if (!base.venv || !base.ensurepip) {
        const missing = base.venv ? "ensurepip" : "the venv module";
        throw new InstallError(
          "NOT_SET_UP",
          `Python ${base.version} at ${base.executable} cannot create virtual environments: ${missing} is missing`,
          {
            step: "venv",
            fix: `install venv support on the remote (Debian/Ubuntu: apt-get install ${venvPackageHint(base.version)}; RHEL/Fedora: dnf install python3), pass another interpreter with --python, or install without a venv (--no-venv, no packages)`,
          },
        );
      }
      await markDirty();
      state.venv = null;
      state.packages = [];
      await saveState();
      const argv = [base.executable, "-m", "venv", "--clear"];
      if (systemSitePackages) argv.push("--system-site-packages");
      argv.push(path(VENV_DIR));
      const r = await remote.run(wrap(argv, { preamble: preambleFile, umask, lock: lockOf(base, endpoint) }), {
        step: "venv",
        timeoutMs: longTimeout,
        stream: true,
      });
      if (r.exitCode !== 0) {
        const text = `${r.stdout}\n${r.stderr}`;
        if (/ensurepip is not\s+available|No module named ensurepip/.test(text)) {
          throw new InstallError(
            "NOT_SET_UP",
            `Python ${base.version} cannot create virtual environments: ensurepip is missing`,
            {
              step: "venv",
              fix: `apt-get install ${venvPackageHint(base.version)} on the remote (Debian/Ubuntu), or pass another interpreter with --python`,
              log: logTail(text),
            },
          );
        }
        throw commandFailure("venv", `creating the venv ${path(VENV_DIR)}`, r, endpoint);
      }
      venvInfo = await probeVenv(remote, venvPython, preambleFile, umask);
      state.venv = record;
      await saveState();
      venvRecreated = true;
      return { changed: true, message: `created ${path(VENV_DIR)} (${reasons.join("; ")})` };
    });

    // ---- agent --------------------------------------------------------------------------
    await recorder.run("agent", "checking the agent files", async () => {
      const [remoteManifest, local] = await Promise.all([readRemoteManifest(c, endpoint, op), agentManifest()]);
      const same =
        remoteManifest !== null &&
        remoteManifest.version === local.version &&
        Object.keys(local.files).length === Object.keys(remoteManifest.files).length &&
        Object.entries(local.files).every(([k, v]) => remoteManifest.files[k] === v);
      if (same && !options.force && survey.has.has("interpreter.sh")) {
        return { changed: false, skipped: true, message: `agent ${local.version} up to date` };
      }
      await markDirty();
      const sizes = new Map((await agentFiles()).map((f) => [f.path, f.size]));
      const result = await syncAgent(c, endpoint, {
        force: options.force || !survey.has.has("interpreter.sh"),
        shared,
        signal: d.signal,
        onProgress: (e) => {
          if (e.action === "upload") {
            recorder.emit({ type: "upload", step: "agent", path: path(e.file), bytes: sizes.get(e.file) ?? 0 });
          }
        },
      });
      return {
        changed: true,
        message: `agent ${AGENT_VERSION}: ${result.uploaded.length} file(s) uploaded${
          result.previousVersion && result.previousVersion !== AGENT_VERSION ? ` (was ${result.previousVersion})` : ""
        }`,
      };
    });

    // ---- packages -----------------------------------------------------------------------
    for (const source of sources) {
      const subject = describeSource(source);
      await recorder.run(
        "package",
        `installing ${subject}`,
        async () => {
          if (!venvInfo) throw new InstallError("NOT_SET_UP", "the venv's Python does not run", { step: "package" });
          const key = sourceKey(source);
          const local = locals.get(source);
          let resolved: string;
          let commit = "";
          if (source.kind === "spec") resolved = source.spec;
          else if (source.kind === "git") {
            commit = await resolveGitRef(remote, source, survey.git);
            resolved = commit;
          } else resolved = (local as PreparedLocal).sha256;
          const recorded = state.packages.find((p) => p.key === key);
          const installed = venvInfo.distributions;
          const present = (dists: Distribution[]) =>
            dists.every((dist) =>
              Object.entries(installed).some(
                ([name, version]) => normalizeName(name) === normalizeName(dist.name) && version === dist.version,
              ),
            );
          if (
            recorded &&
            recorded.resolved === resolved &&
            !options.upgrade &&
            !options.force &&
            !venvRecreated &&
            present(recorded.distributions)
          ) {
            return {
              changed: false,
              skipped: true,
              message: `${subject} up to date (${shortResolved(source, resolved)})`,
            };
          }
          await markDirty();
          const output = await installPackage({
            remote,
            source,
            local,
            commit,
            base,
            venvInfo,
            venvPython,
            endpoint,
            tmpDir: layout.tmpDir,
            preambleFile,
            umask,
            options,
            longTimeout,
            setPending: (p) => {
              pendingBuild = p;
            },
            op,
          });
          pendingBuild = undefined;
          venvInfo = await probeVenv(remote, venvPython, preambleFile, umask);
          let distributions = parseInstalled(output);
          if (distributions.length === 0 && source.kind === "spec") {
            const name = specName(source.spec);
            const found = Object.entries(venvInfo.distributions).find(([n]) => normalizeName(n) === name);
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
          state.packages = [...state.packages.filter((p) => p.key !== key), record];
          await saveState();
          const names = distributions.map((x) => `${x.name} ${x.version}`).join(", ");
          return {
            changed: true,
            message: `installed ${subject} (${shortResolved(source, resolved)})${names ? `: ${names}` : ""}`,
          };
        },
        subject,
      );
    }

    // ---- location -----------------------------------------------------------------------
    const locationAction = await recorder
      .run("location", "checking .location", async () => {
        if (!writeLocation)
          return { changed: false, skipped: true, message: "layout given by the target", action: "none" as const };
        if (locationText !== null) {
          if (current.text === locationText) {
            return {
              changed: false,
              skipped: true,
              message: `${current.path} up to date`,
              action: "unchanged" as const,
            };
          }
          await c.putFile(current.path, encode(locationText), { ...op, mode: 0o600 });
          return { changed: true, message: `wrote ${current.path} → ${endpoint}`, action: "written" as const };
        }
        if (current.text !== null) {
          await c.deleteFile(current.path, op);
          return {
            changed: true,
            message: `removed ${current.path} (it pointed elsewhere; this endpoint is the default)`,
            action: "removed" as const,
          };
        }
        return {
          changed: false,
          skipped: true,
          message: "default layout, no .location needed",
          action: "none" as const,
        };
      })
      .then((r) => r.action);

    // ---- permissions (shared) -----------------------------------------------------------
    if (shared) {
      await recorder.run("permissions", "checking that nothing is writable by group or others", async () => {
        const r = await remote.run(["sh", "-c", SHARE_SH, "sh", endpoint], {
          step: "permissions",
          timeoutMs: SHORT_TIMEOUT,
        });
        if (r.exitCode !== 0) throw commandFailure("permissions", `setting the modes in ${endpoint}`, r, endpoint);
        const bad = r.stdout
          .split("\n")
          .filter((l) => l.startsWith("bad "))
          .map((l) => l.slice(4));
        if (bad.length > 0) {
          throw new InstallError(
            "PERMISSION_DENIED",
            `files in the shared endpoint stay writable by group or others: ${bad.join(", ")}`,
            {
              step: "permissions",
              fix: `as their owner: chmod -R go-w ${endpoint}`,
            },
          );
        }
        const changed = r.stdout.split("\n").includes("changed");
        return {
          changed,
          skipped: !changed,
          message: changed ? "made everything readable, nothing writable by group or others" : "modes already right",
        };
      });
    }

    // ---- completion marker --------------------------------------------------------------
    const anyChange = recorder.steps.some((s) => s.changed) || dirty;
    await recorder.run("complete", "recording the install", async () => {
      if (!dirty && survey.has.has(MARKER_FILE) && previous !== null && !options.force) {
        return { changed: false, skipped: true, message: "nothing changed" };
      }
      await markDirty();
      await saveState();
      const marker: CompletionMarker = { completedAt: new Date().toISOString(), agentVersion: AGENT_VERSION };
      await c.putFile(path(MARKER_FILE), encode(`${JSON.stringify(marker)}\n`), { ...op, mode: fileMode });
      return { changed: true, message: `install complete in ${endpoint}` };
    });

    return {
      layout: { ...layout },
      homeDir,
      location: { path: current.path, action: locationAction },
      changed: anyChange || recorder.steps.some((s) => s.changed),
      steps: recorder.steps,
      operations: { ...counts },
      python: state.python as PythonRecord,
      venv: state.venv,
      packages: state.packages,
      agentVersion: AGENT_VERSION,
      shared,
      durationMs: performance.now() - t0,
    };
  } catch (err) {
    if (pendingBuild) {
      // Best effort: the next install also removes build folders left behind.
      await connector.exec(["rm", "-rf", "--", pendingBuild], { timeoutMs: 30_000 }).catch(() => {});
    }
    if (d.signal.aborted && !(isSremoteError(err) && (err.code === "TIMEOUT" || err.code === "ABORTED"))) {
      throw d.error("install");
    }
    throw err;
  } finally {
    d.dispose();
  }
}

function lockOf(base: PythonInfo, endpointDir: string) {
  return { python: base.executable, endpointDir };
}

function shortResolved(source: PackageSource, resolved: string): string {
  if (source.kind === "git") return `commit ${resolved.slice(0, 12)}`;
  if (source.kind === "local") return `sha256 ${resolved.slice(0, 12)}`;
  return resolved;
}

async function readState(c: Connector, endpoint: string, op: OperationOptions): Promise<InstallState | null> {
  try {
    return parseState(new TextDecoder().decode(await c.getFile(posixJoin(endpoint, STATE_FILE), op)));
  } catch (err) {
    if (hasErrorCode(err, "FILE_NOT_FOUND")) return null;
    throw err;
  }
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
        ? `check the path given with --python (${requested}), or leave it out to use python3`
        : "install Python 3.8+ there (apt-get install python3), load it with --preamble 'module load python', or pass --python /path/to/python3",
      log: err ? logTail(err, 10) : undefined,
    },
  );
}

async function probeVenv(remote: RemoteRunner, venvPython: string, preamble: string, umask: string): Promise<VenvInfo> {
  const r = await remote.run(wrap([venvPython, "-c", VENVINFO_PY], { preamble, umask }), {
    step: "venv",
    timeoutMs: SHORT_TIMEOUT,
  });
  const parsed = parseProbe(r.stdout);
  if (r.exitCode !== 0 || !parsed.venv) {
    throw new InstallError("COMMAND_FAILED", `the venv's Python ${venvPython} does not run (${describeExit(r)})`, {
      step: "venv",
      fix: "run the install again with --force to recreate the venv",
      log: logTail(`${r.stdout}\n${r.stderr}`),
    });
  }
  return parsed.venv;
}

/** `git ls-remote` on the remote: the commit a branch, tag or HEAD names. */
async function resolveGitRef(remote: RemoteRunner, source: GitPackage, git: string | null): Promise<string> {
  const subject = describeSource(source);
  if (!git) {
    throw new InstallError("NOT_SET_UP", `git is not installed on the remote; it is needed to clone ${source.url}`, {
      step: "package",
      fix: "install git there (apt-get install git, or --preamble 'module load git'), or clone the repository on this machine and pass the folder with --local",
    });
  }
  const r = await remote.run(["git", "ls-remote", source.url], { step: "package", subject, timeoutMs: SHORT_TIMEOUT });
  if (r.exitCode !== 0) {
    throw new InstallError(
      "COMMAND_FAILED",
      `git cannot read the repository ${source.url} from the remote (${describeExit(r)})`,
      {
        step: "package",
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
      step: "package",
    });
  }
  for (const name of [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref]) {
    const sha = refs.get(name);
    if (sha) return sha;
  }
  if (/^[0-9a-f]{40}$/i.test(ref)) return ref.toLowerCase();
  const branches = [...refs.keys()]
    .filter((n) => n.startsWith("refs/heads/") || (n.startsWith("refs/tags/") && !n.endsWith("^{}")))
    .map((n) => n.replace(/^refs\/(heads|tags)\//, ""))
    .slice(0, 20);
  throw new InstallError("INVALID_ARGUMENT", `${source.url} has no branch or tag ${JSON.stringify(ref)}`, {
    step: "package",
    fix: `use one of: ${branches.join(", ") || "(none)"}; or a full 40-character commit id`,
  });
}

interface PackageJob {
  remote: RemoteRunner;
  source: PackageSource;
  local: PreparedLocal | undefined;
  commit: string;
  base: PythonInfo;
  venvInfo: VenvInfo;
  venvPython: string;
  endpoint: string;
  tmpDir: string;
  preambleFile: string;
  umask: string;
  options: InstallOptions;
  longTimeout: number;
  setPending(path: string | undefined): void;
  op: OperationOptions;
}

const BUILD_HELP =
  "give the venv wheel-building tools: --system-site-packages (uses the system's setuptools and wheel, e.g. Debian's python3-wheel), --local /path/to/wheel-*.whl before this package, or --index to let pip fetch them; or build a wheel on this machine and pass it with --local";

/** Runs pip for one package; returns pip's output. */
async function installPackage(job: PackageJob): Promise<string> {
  const { remote, source, options, base, venvInfo } = job;
  const subject = describeSource(source);
  const localKind = job.local?.kind;
  const isSource = source.kind === "git" || localKind === "folder" || localKind === "sdist";
  const useIndex = options.index ?? source.kind === "spec";
  const pip = [
    job.venvPython,
    "-m",
    "pip",
    "install",
    "--disable-pip-version-check",
    "--no-input",
    "--progress-bar",
    "off",
  ];
  if (useIndex === false) pip.push("--no-index");
  else if (typeof useIndex === "string") pip.push("--index-url", useIndex);
  for (const f of options.findLinks ?? []) pip.push("--find-links", f);
  let builder: "direct" | "base" = "direct";
  if (isSource && useIndex === false) {
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
  const lock = { python: base.executable, endpointDir: job.endpoint };
  const wrapOpts = { preamble: job.preambleFile, umask: job.umask, lock };
  const run = (argv: string[]) =>
    remote.run(wrap(argv, wrapOpts), { step: "package", subject, timeoutMs: job.longTimeout, stream: true });

  if (source.kind === "spec") {
    const r = await run([...pip, source.spec]);
    if (r.exitCode !== 0) throw pipFailure(subject, r, job.endpoint, useIndex);
    return r.stdout;
  }
  const build = posixJoin(job.tmpDir, `${BUILD_PREFIX}${randomBytes(8).toString("hex")}`);
  job.setPending(build);
  let kind: "git" | "tar" | "file" = "git";
  let target = source.kind === "git" ? source.url : "";
  if (job.local) {
    const mk = await remote.connector.exec(["mkdir", "-p", "--", build], { ...job.op, timeoutMs: SHORT_TIMEOUT });
    if (mk.exitCode !== 0) throw commandFailure("package", `creating ${build}`, mk, job.tmpDir);
    target = posixJoin(build, job.local.uploadName);
    try {
      await remote.connector.putFile(target, job.local.data, { ...job.op, mode: 0o600 });
    } catch (err) {
      if (isSremoteError(err) && (err.code === "REMOTE_IO" || err.code === "PERMISSION_DENIED")) {
        throw new InstallError(err.code, `uploading ${subject} to ${target} failed: ${err.message}`, {
          step: "package",
          fix: `free some space (df -h ${job.tmpDir}) or use another temp folder with --tmp-dir`,
          cause: err,
        });
      }
      throw err;
    }
    kind = job.local.kind === "folder" ? "tar" : "file";
  }
  const subdir = source.kind === "git" ? (source.subdir ?? "") : "";
  const r = await run([
    "sh",
    "-c",
    BUILD_SH,
    "sh",
    kind,
    build,
    builder,
    base.executable,
    job.venvPython,
    target,
    job.commit,
    subdir,
    EXTRACT_PY,
    ...pip,
  ]);
  job.setPending(undefined);
  if (r.exitCode === 0) return r.stdout;
  const said = r.stderr
    .split("\n")
    .filter((l) => l.startsWith("sremote-install: "))
    .map((l) => l.slice("sremote-install: ".length))
    .pop();
  switch (r.exitCode) {
    case BUILD_EXIT.clone:
      throw new InstallError(
        "COMMAND_FAILED",
        `${said ?? `cloning ${source.kind === "git" ? source.url : subject} failed`}`,
        {
          step: "package",
          fix: "check the URL, the ref and that the remote account can read the repository",
          log: logTail(r.stderr, 15),
        },
      );
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
      throw pipFailure(subject, r, job.endpoint, useIndex);
  }
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
  return commandFailure("package", `pip could not install ${subject}`, { ...r }, endpoint, { fix });
}
