import { execFile } from "node:child_process";
import { accessSync, closeSync, constants, openSync, readdirSync, readSync, realpathSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { promisify } from "node:util";
import { UsageError } from "@sremote/core";

/**
 * The real executable behind the first `python3` on PATH. pyenv and similar shims cost
 * ~100–400 ms per start; resolving once keeps per-call costs honest.
 *
 * A compiled interpreter is its own `sys.executable`, and a pyenv shim's choice is read from
 * pyenv's files the way `pyenv exec` makes it ({@link pyenvShimChoice}): neither starts a
 * process (CLI start-up, issue 16). Anything else — another kind of shim, or a pyenv setup
 * that choice is not sure about — is started and asked for `sys.executable`.
 */
export async function resolvePython(command = "python3"): Promise<string> {
  const first = firstExecutable(command, (process.env.PATH ?? "").split(":"));
  if (first !== undefined) {
    if (isElf(first)) return first;
    const choice = pyenvShimChoice(first, command);
    if ("path" in choice) return choice.path;
  }
  try {
    const { stdout } = await promisify(execFile)(command, ["-c", "import sys; print(sys.executable)"], {
      timeout: 30_000,
    });
    const path = stdout.trim();
    if (path.startsWith("/")) return path;
  } catch {
    // Fall through to the clear error below.
  }
  throw new UsageError(`no usable ${command} found on PATH: install Python 3.8+ or pass --python /path/to/python3`);
}

/** The first executable file `command` in the absolute folders of `dirs`, as the shell's lookup finds it. */
function firstExecutable(command: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    if (!dir.startsWith("/")) continue;
    const path = `${dir}/${command}`;
    if (isExecutableFile(path)) return path;
  }
  return undefined;
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when `path` (symlinks followed) starts with the ELF magic: a compiled program, not a script. */
function isElf(path: string): boolean {
  return readHead(path, 4) === "\x7fELF";
}

/** Up to `max` bytes from the start of `path` (latin1), or undefined when unreadable. */
function readHead(path: string, max: number): string | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n).toString("latin1");
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** What {@link pyenvShimChoice} found: the interpreter the shim would run, or why it is not sure. */
export type PyenvShimChoice = { path: string } | { unsure: string };

/** Where and how a pyenv shim would be started (defaults: this process's). */
export interface PyenvShimContext {
  /** The environment the shim would get (`PATH`, `PYENV_VERSION`, `PYENV_DIR`, `HOME`, …). */
  env?: NodeJS.ProcessEnv;
  /** The shell's (logical) working folder; default `$PWD` when it names this process's folder. */
  cwd?: string;
}

class Unsure extends Error {}

function unsure(why: string): never {
  throw new Unsure(why);
}

/** pyenv releases whose version choice this file reproduces: prefixes, `python-` names (2.4.13+). */
const PYENV_MIN = [2, 4, 13] as const;

/** Hooks that cannot change the choice for a `python3` started with `-c`: they act only when
 * no executable was found (pyenv-virtualenv's `which` hooks) or for pip (pyenv's `exec` hook). */
const HARMLESS_HOOKS = new Set([
  "which/conda.bash",
  "which/python-config.bash",
  "which/system-site-packages.bash",
  "exec/pip-rehash.bash",
]);

/** The text pyenv-rehash writes into every shim (pyenv 2.x), with and without the shim-path check. */
const SHIM_TEXT =
  /^#!\/usr\/bin\/env bash\nset -e\n\[ -n "\$PYENV_DEBUG" \] && set -x\n\nprogram="\$\{0##\*\/\}"\n\nexport PYENV_ROOT="([^"$`\\]+)"\n(?:SHIM_PATH=\$\{0%\/\*\}\nif \[\[ \$SHIM_PATH != "([^"$`\\]+)" \]\]; then\n {2}export _PYENV_SHIM_PATH="\$SHIM_PATH"\nfi\n)?exec "([^"$`\\]+)" exec "\$program" "\$@"\n$/;

/**
 * The interpreter the pyenv shim `shim` would run for `command`, found the way `pyenv exec`
 * finds it (`PYENV_VERSION`, else the nearest `.python-version` from `PYENV_DIR`/the working
 * folder upward, else `$PYENV_ROOT/version`, else `system`; each name an installed version,
 * a `python-` name or a version prefix; `system` the next `command` on PATH after the shims)
 * without starting a process. Returns `{ unsure }` whenever the answer could differ from the
 * shim's — not a pyenv shim, pyenv older than 2.4.13, unknown hooks, a name not installed, a
 * script where an interpreter was expected — so the caller asks the shim instead.
 */
export function pyenvShimChoice(shim: string, command: string, context: PyenvShimContext = {}): PyenvShimChoice {
  const env = context.env ?? process.env;
  try {
    const cwd = context.cwd ?? logicalCwd(env);
    return { path: choose(shim, command, env, cwd) };
  } catch (error) {
    return { unsure: error instanceof Unsure ? error.message : String(error) };
  }
}

function choose(shim: string, command: string, env: NodeJS.ProcessEnv, cwd: string): string {
  const text = readHead(shim, 4096);
  const m = text === undefined ? null : SHIM_TEXT.exec(text);
  if (!m) unsure("not a pyenv shim");
  const root = (m[1] as string).replace(/\/+$/, "");
  const shimDir = shim.slice(0, shim.lastIndexOf("/"));
  if (shimDir !== `${root}/shims` || (m[2] !== undefined && m[2] !== `${root}/shims`)) {
    unsure(`the shim is not in ${root}/shims`);
  }
  if (!/^[A-Za-z0-9._+-]+$/.test(command)) unsure("an unusual command name");
  // pyenv's install (where its libexec and plugins live) is the folder above its real `pyenv`.
  const prefix = dirname(dirname(realpathSync(m[3] as string)));
  const version = /^version="(\d+)\.(\d+)\.(\d+)/m.exec(readHead(`${prefix}/libexec/pyenv---version`, 4096) ?? "");
  if (!version || compareVersions(version.slice(1).map(Number), PYENV_MIN) < 0) unsure("pyenv older than 2.4.13");
  checkHooks(env, root, prefix);

  let spec = env.PYENV_VERSION ?? "";
  if (spec === "") spec = readVersionFile(versionFile(env, root, cwd));
  const names = spec === "" || spec === "system" ? ["system"] : splitNames(spec).map((n) => installedName(root, n));
  for (const name of [...names, "system"]) {
    const path =
      name === "system" ? systemCommand(command, env, root, prefix) : `${root}/versions/${name}/bin/${command}`;
    if (path === undefined || !bashExecutable(path)) continue;
    if (!isElf(path)) unsure(`${path} is not a compiled program`);
    return path;
  }
  return unsure(`no ${command} in the chosen versions`);
}

/** Negative when version `a` is older than `b`. */
function compareVersions(a: readonly number[], b: readonly number[]): number {
  const i = a.findIndex((x, j) => x !== b[j]);
  return i < 0 ? 0 : (a[i] as number) - (b[i] as number);
}

/** bash's `-x`: true for an executable file; a folder (also true to bash) is not for us to guess. */
function bashExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return false;
  }
  if (!statSync(path).isFile()) unsure(`${path} is not a file`);
  return true;
}

/** The shell's logical working folder, as bash sets `PWD` at start-up. */
function logicalCwd(env: NodeJS.ProcessEnv): string {
  const physical = process.cwd();
  const pwd = env.PWD;
  if (!pwd?.startsWith("/")) return physical;
  try {
    const a = statSync(pwd);
    const b = statSync(physical);
    if (a.dev !== b.dev || a.ino !== b.ino) return physical;
  } catch {
    return physical;
  }
  if (pwd !== "/" && (/\/\/|\/$/.test(pwd) || /(^|\/)\.\.?(\/|$)/.test(pwd))) unsure("PWD is not in canonical form");
  return pwd;
}

/** Every hook script pyenv would source for version-name, which and exec must be harmless. */
function checkHooks(env: NodeJS.ProcessEnv, root: string, prefix: string): void {
  // Built as the `pyenv` launcher builds PYENV_HOOK_PATH; an empty entry means "/" to pyenv-hooks.
  const dirs = [env.PYENV_HOOK_PATH ?? "", `${root}/pyenv.d`];
  if (prefix !== root) dirs.push(`${prefix}/pyenv.d`);
  dirs.push("/usr/etc/pyenv.d", "/usr/local/etc/pyenv.d", "/etc/pyenv.d", "/usr/lib/pyenv/hooks");
  for (const plugin of listDir(`${root}/plugins`)) dirs.push(`${root}/plugins/${plugin}/etc/pyenv.d`);
  for (const dir of dirs.join(":").replace(/^:/, "").split(":")) {
    if (dir !== "" && !dir.startsWith("/")) unsure("a relative PYENV_HOOK_PATH entry");
    for (const hook of ["version-name", "which", "exec"]) {
      for (const file of listDir(`${dir}/${hook}`)) {
        if (file.endsWith(".bash") && !HARMLESS_HOOKS.has(`${hook}/${file}`))
          unsure(`pyenv hook ${dir}/${hook}/${file}`);
      }
    }
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** pyenv-version-file: the nearest `.python-version` from PYENV_DIR (then PWD) upward, else the global file. */
function versionFile(env: NodeJS.ProcessEnv, root: string, cwd: string): string {
  const pyenvDir = resolve(cwd, env.PYENV_DIR || cwd);
  if (!isDir(pyenvDir)) unsure("PYENV_DIR is not a folder");
  const nearest = (start: string): string | undefined => {
    for (let dir = start === "/" ? "" : start; ; dir = dir.slice(0, dir.lastIndexOf("/"))) {
      if (isFile(`${dir}/.python-version`)) return `${dir}/.python-version`;
      if (dir === "") return undefined;
    }
  };
  return nearest(pyenvDir) ?? (pyenvDir !== cwd ? nearest(cwd) : undefined) ?? `${root}/version`;
}

/** pyenv-version-file-read: the first word of each line, comments and blank lines skipped, joined by `:`. */
function readVersionFile(file: string): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch {
    return "";
  }
  if (size === 0) return "";
  if (size > 65536) unsure(`${file} is large`);
  const text = readHead(file, size) ?? unsure(`${file} is unreadable`);
  const names: string[] = [];
  for (const line of text.split("\n")) {
    if (line.length >= 1024 || line.includes("\0")) unsure(`${file} has a long or binary line`);
    const word = line.replace(/^[ \t\r]+/, "").split(/[ \t\r]/)[0] as string;
    if (word === "" || word.startsWith("#")) continue;
    if (word === ".." || word.includes("/")) unsure(`${file} names a path`);
    names.push(word);
  }
  return names.join(":");
}

/** bash's split of `$PYENV_VERSION` on `:`; empty names and glob patterns are left to pyenv. */
function splitNames(spec: string): string[] {
  const names = spec.split(":");
  if (names[names.length - 1] === "") names.pop();
  for (const name of names) {
    if (name === "" || name === "." || name === ".." || /[/*?[\\]/.test(name))
      unsure(`version name ${JSON.stringify(name)}`);
  }
  return names;
}

/** pyenv-version-name for one name: installed as is, without `python-`, else the latest match of a prefix. */
function installedName(root: string, name: string): string {
  if (name === "system" || isDir(`${root}/versions/${name}`)) return name;
  const bare = name.startsWith("python-") ? name.slice("python-".length) : name;
  if (isDir(`${root}/versions/${bare}`)) return bare;
  return latest(root, name) ?? latest(root, bare) ?? unsure(`version ${name} is not installed`);
}

/**
 * pyenv-latest for a numeric prefix such as `3` or `3.11`: the highest installed `X.Y[.Z]`
 * starting `<prefix>.` (pre-releases, `-dev` and free-threaded builds never match). Anything
 * pyenv would sort in a way not copied here is left to pyenv.
 */
function latest(root: string, prefix: string): string | undefined {
  if (!/^\d+(\.\d+)*$/.test(prefix)) unsure(`version ${prefix} is not installed`);
  const skipped = /(-dev|-src|-latest|(a|b|rc)[0-9]+|[0-9]t)$/;
  const found = listDir(`${root}/versions`).filter(
    (n) =>
      (n.startsWith(`${prefix}.`) || n.startsWith(`${prefix}-`)) && !skipped.test(n) && isDir(`${root}/versions/${n}`),
  );
  if (found.length === 0) return undefined;
  if (found.some((n) => !/^\d+\.\d+(\.\d+)?$/.test(n))) unsure(`an unusual version name matches ${prefix}`);
  const key = (n: string) => [...n.split(".").map(Number), 0].slice(0, 3);
  const cmp = (a: string, b: string) => compareVersions(key(b), key(a));
  found.sort(cmp);
  if (found.length > 1 && cmp(found[0] as string, found[1] as string) === 0) unsure(`versions tie for ${prefix}`);
  return found[0];
}

/** pyenv-which for `system`: `command` on PATH with pyenv's shims folder(s) left out. */
function systemCommand(command: string, env: NodeJS.ProcessEnv, root: string, prefix: string): string | undefined {
  // pyenv puts its libexec and plugins' bin folders in front of PATH first.
  const front = [`${prefix}/libexec`, ...listDir(`${prefix}/plugins`).map((p) => `${prefix}/plugins/${p}/bin`)];
  if (prefix !== root) front.push(...listDir(`${root}/plugins`).map((p) => `${root}/plugins/${p}/bin`));
  if (front.some((dir) => bashExecutable(`${dir}/${command}`))) unsure(`a ${command} among pyenv's own programs`);
  const program = command
    .toUpperCase()
    .replace(/-/g, "_")
    .replace(/[^A-Z0-9_]/g, "_");
  const removed = new Set([`${root}/shims`]);
  for (const dir of `${env[`_PYENV_SHIM_PATHS_${program}`] ?? ""}:${env._PYENV_SHIM_PATH ?? ""}`.split(":")) {
    if (dir !== "") removed.add(dir);
  }
  const home = env.HOME ?? "";
  for (const dir of (env.PATH ?? "").replaceAll("~", home).split(":")) {
    if (removed.has(dir)) continue;
    if (!dir.startsWith("/")) unsure("a relative PATH entry");
    const path = `${dir}/${command}`;
    if (bashExecutable(path)) return path;
  }
  return undefined;
}
