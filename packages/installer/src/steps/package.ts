import { isSremoteError, posixJoin } from "@sremote/core";
import { commandFailure } from "../command-failures.js";
import { InstallError, logTail } from "../errors.js";
import { canBuildWheels, type VenvInfo } from "../python-probe.js";
import { wrap } from "../remote-commands.js";
import { BUILD_EXIT, remoteScript } from "../remote-scripts.js";
import {
  describeSource,
  distributionsPresent,
  normalizeName,
  type PackageSource,
  parseInstalled,
  sourceKey,
  specName,
} from "../sources.js";
import type { PackageRecord } from "../state.js";
import {
  markDirty,
  newScratch,
  removeScratch,
  SHORT_TIMEOUT,
  saveState,
  type VenvRun,
  type VenvState,
  wrapOptions,
} from "./context.js";
import type { PreparedLocal } from "./inputs.js";
import { BUILD_HELP, indexFor, isSourceBuild } from "./sources.js";
import { probeVenv } from "./venv.js";

/**
 * `package` (one per package): pip install into the venv, skipped when its source (git commit,
 * SHA-256 of the folder or wheel, spec) is unchanged and its distributions are still
 * installed. Returns the venv as it is afterwards.
 */
export async function ensurePackage(r: VenvRun, source: PackageSource): Promise<VenvState> {
  const subject = describeSource(source);
  const step = await r.recorder.run(
    "package",
    `installing ${subject}`,
    async () => {
      const venvInfo = r.venv.info;
      if (!venvInfo) {
        throw new InstallError("NOT_SET_UP", "the venv's Python does not run", {
          step: "package",
          fix: "run the install again with --force",
        });
      }
      const { state } = r.plan;
      const { upgrade, force } = r.options;
      const key = sourceKey(source);
      const local = r.inputs.locals.get(source);
      const resolved =
        source.kind === "spec"
          ? source.spec
          : source.kind === "git"
            ? (r.commits.get(source) as string)
            : (local as PreparedLocal).sha256;
      const recorded = state.packages.find((p) => p.key === key);
      if (
        recorded &&
        recorded.resolved === resolved &&
        !upgrade &&
        !force &&
        !r.venv.recreated &&
        distributionsPresent(recorded.distributions, venvInfo.distributions)
      ) {
        return {
          changed: false,
          skipped: true,
          message: `${subject} up to date (${shortResolved(source, resolved)})`,
          venv: r.venv,
        };
      }
      await markDirty(r);
      const output = await installPackage(r, source, local, venvInfo);
      const info = await probeVenv(r);
      let distributions = parseInstalled(output);
      if (distributions.length === 0 && source.kind === "spec") {
        const name = specName(source.spec);
        const found = Object.entries(info.distributions).find(([n]) => normalizeName(n) === name);
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
      await saveState(r);
      const names = distributions.map((x) => `${x.name} ${x.version}`).join(", ");
      const venv: VenvState = { info, recreated: r.venv.recreated };
      return {
        changed: true,
        message: `installed ${subject} (${shortResolved(source, resolved)})${names ? `: ${names}` : ""}`,
        venv,
      };
    },
    subject,
  );
  return step.venv;
}

/** Runs pip for one package; returns pip's output. */
async function installPackage(
  r: VenvRun,
  source: PackageSource,
  local: PreparedLocal | undefined,
  venvInfo: VenvInfo,
): Promise<string> {
  const subject = describeSource(source);
  const base = r.python.base;
  const { venvPython, layout } = r.plan;
  const useIndex = indexFor(r, source);
  const pip = [venvPython, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"];
  pip.push("--progress-bar", "off");
  if (useIndex === false) pip.push("--no-index");
  else if (typeof useIndex === "string") pip.push("--index-url", useIndex);
  for (const f of r.options.findLinks ?? []) pip.push("--find-links", f);
  let builder: "direct" | "base" = "direct";
  if (isSourceBuild(r, source) && useIndex === false) {
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
  if (r.options.upgrade && source.kind === "spec") pip.push("--upgrade");
  const run = (argv: string[], scratch?: string) =>
    r.remote.run(wrap(argv, { ...wrapOptions(r, true), scratch }), {
      step: "package",
      subject,
      timeoutMs: r.longTimeout,
      stream: true,
    });

  if (source.kind === "spec") {
    const scratch = newScratch(r);
    const res = await run([...pip, source.spec], scratch);
    await removeScratch(r, scratch);
    if (res.exitCode !== 0) throw pipFailure(subject, res, layout.endpointDir, useIndex);
    return res.stdout;
  }
  const build = newScratch(r);
  let kind: "git" | "tar" | "file" = "git";
  let target = source.kind === "git" ? source.url : "";
  if (local) {
    const mk = await r.connector.exec(["mkdir", "-p", "--", build], { ...r.op, timeoutMs: SHORT_TIMEOUT });
    if (mk.exitCode !== 0) throw commandFailure("package", `creating ${build}`, mk, layout.tmpDir);
    target = posixJoin(build, local.uploadName);
    try {
      await r.connector.putFile(target, local.data, { ...r.op, mode: 0o600 });
    } catch (err) {
      if (isSremoteError(err) && (err.code === "REMOTE_IO" || err.code === "PERMISSION_DENIED")) {
        throw new InstallError(err.code, `uploading ${subject} to ${target} failed: ${err.message}`, {
          step: "package",
          fix: `free some space (df -h ${layout.tmpDir}) or use another temp folder with --tmp-dir`,
          cause: err,
        });
      }
      throw err;
    }
    kind = local.kind === "folder" ? "tar" : "file";
  }
  const subdir = source.kind === "git" ? (source.subdir ?? "") : "";
  const commit = source.kind === "git" ? (r.commits.get(source) as string) : "";
  const res = await run([
    "sh",
    "-c",
    remoteScript("build.sh"),
    "sh",
    kind,
    build,
    builder,
    base.executable,
    venvPython,
    target,
    commit,
    subdir,
    remoteScript("extract.py"),
    ...pip,
  ]);
  r.progress.pendingBuild = undefined;
  if (res.exitCode === 0) return res.stdout;
  const said = res.stderr
    .split("\n")
    .filter((l) => l.startsWith("sremote-install: "))
    .map((l) => l.slice("sremote-install: ".length))
    .pop();
  switch (res.exitCode) {
    case BUILD_EXIT.clone:
      throw new InstallError("COMMAND_FAILED", said ?? `cloning ${subject} failed`, {
        step: "package",
        fix: "check the URL, the ref and that the remote account can read the repository",
        log: logTail(res.stderr, 15),
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
        log: logTail(`${res.stdout}\n${res.stderr}`),
      });
    default:
      throw pipFailure(subject, res, layout.endpointDir, useIndex);
  }
}

function shortResolved(source: PackageSource, resolved: string): string {
  if (source.kind === "git") return `commit ${resolved.slice(0, 12)}`;
  if (source.kind === "local") return `sha256 ${resolved.slice(0, 12)}`;
  return resolved;
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
