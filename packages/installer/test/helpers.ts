import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { pythonHasModules, SYSTEM_PYTHON } from "@sremote/testkit";
import type { InstallEvent } from "../src/index.js";

export const run = promisify(execFile);

export { SYSTEM_PYTHON };

/** True when `/usr/bin/python3` can create venvs and build wheels (CI installs python3-venv, python3-pip). */
export const systemPythonReady = pythonHasModules(SYSTEM_PYTHON, ["setuptools", "wheel", "pip", "ensurepip", "venv"]);

export const haveGit = existsSync("/usr/bin/git");
export const isRoot = process.getuid?.() === 0;

/** A temp folder removed by the returned function (also used in afterAll). */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `sremote-installer-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Writes files (path → content) under `root`. */
export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    await mkdir(join(p, ".."), { recursive: true });
    await writeFile(p, content);
  }
}

/** A pyproject.toml (setuptools) project with one module whose `VALUE` is `value`. */
export async function pyprojectPackage(root: string, name: string, version: string, value: string): Promise<void> {
  await writeTree(root, {
    "pyproject.toml": `[build-system]\nrequires = ["setuptools>=40.8"]\nbuild-backend = "setuptools.build_meta"\n\n[project]\nname = "${name}"\nversion = "${version}"\n\n[tool.setuptools]\npy-modules = ["${name}"]\n`,
    [`${name}.py`]: `VALUE = ${JSON.stringify(value)}\n\ndef hello(who):\n    return "${name} says hello to " + who\n`,
  });
}

/** The seed's layout: a setup.py project under `py/`. */
export async function seedStylePackage(root: string, name: string, version: string, value: string): Promise<void> {
  await writeTree(root, {
    "README.md": `${name}: the Python package lives in py/\n`,
    "py/setup.py": `from setuptools import setup\nsetup(name="${name}", version="${version}", py_modules=["${name}"])\n`,
    [`py/${name}.py`]: `VALUE = ${JSON.stringify(value)}\n`,
  });
}

/** Builds a wheel of `project` into `outDir` with Debian's pip; returns its path. */
export async function buildWheel(project: string, outDir: string): Promise<string> {
  await run(
    SYSTEM_PYTHON,
    [
      "-m",
      "pip",
      "wheel",
      "--no-deps",
      "--no-index",
      "--no-build-isolation",
      "--disable-pip-version-check",
      "-w",
      outDir,
      project,
    ],
    { timeout: 120_000 },
  );
  const wheel = (await readdir(outDir)).find((n) => n.endsWith(".whl"));
  if (!wheel) throw new Error(`no wheel built in ${outDir}`);
  return join(outDir, wheel);
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "sremote test",
  GIT_AUTHOR_EMAIL: "test@example.invalid",
  GIT_COMMITTER_NAME: "sremote test",
  GIT_COMMITTER_EMAIL: "test@example.invalid",
};

/** Runs git in `cwd`. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, { cwd, env: GIT_ENV, timeout: 60_000 });
  return stdout.trim();
}

/**
 * A git repository with the seed's layout (`py/setup.py`) on branch `main`, and a branch
 * `release` one commit ahead (VALUE "release"). Returns the repo folder.
 */
export async function seedStyleRepo(root: string, name: string): Promise<string> {
  await mkdir(root, { recursive: true });
  await git(root, "init", "--quiet", "-b", "main");
  await seedStylePackage(root, name, "1.0", "main");
  await git(root, "add", "-A");
  await git(root, "commit", "--quiet", "-m", "first");
  await git(root, "checkout", "--quiet", "-b", "release");
  await writeTree(root, { [`py/${name}.py`]: `VALUE = "release"\n` });
  await git(root, "commit", "--quiet", "-am", "release");
  await git(root, "checkout", "--quiet", "main");
  return root;
}

/**
 * A real Python without venv support, as on Debian without python3-venv: a copy of the
 * interpreter whose standard library is Debian's minus `ensurepip`.
 */
export async function pythonWithoutEnsurepip(root: string): Promise<string> {
  const version = execFileSync(SYSTEM_PYTHON, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], {
    encoding: "utf8",
  }).trim();
  const lib = join(root, "lib", `python${version}`);
  await mkdir(lib, { recursive: true });
  await mkdir(join(root, "bin"), { recursive: true });
  const stdlib = `/usr/lib/python${version}`;
  for (const name of await readdir(stdlib)) {
    if (name !== "ensurepip") await symlink(join(stdlib, name), join(lib, name));
  }
  const exe = join(root, "bin", "python3");
  await run("cp", [`/usr/bin/python${version}`, exe]);
  await chmod(exe, 0o755);
  return exe;
}

/** Collects events; `steps()` gives `step:outcome` strings. */
export function eventLog(): {
  events: InstallEvent[];
  listener(e: InstallEvent): void;
  outcomes(): string[];
  /** The remote output lines the install reported. */
  lines(): string[];
} {
  const events: InstallEvent[] = [];
  return {
    events,
    listener: (e) => events.push(e),
    lines: () => events.flatMap((e) => (e.type === "output" ? [e.line] : [])),
    outcomes: () =>
      events.flatMap((e) =>
        e.type === "step-end" ? [`${e.step}${e.subject ? `(${e.subject})` : ""}:${e.outcome}`] : [],
      ),
  };
}

/** Paths under `dir` (recursively) that are group- or world-writable, symlinks excluded. */
export async function groupOrWorldWritable(dir: string): Promise<string[]> {
  const { stdout } = await run("find", [dir, "!", "-type", "l", "-perm", "/022"]);
  return stdout.split("\n").filter(Boolean);
}
