import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { pyenvShimChoice, resolvePython } from "../src/python-path.js";

const SYSTEM_PYTHON = "/usr/bin/python3";
const haveSystemPython = existsSync(SYSTEM_PYTHON);

/** The shim text pyenv 2.6's `pyenv rehash` writes. */
function shimText(root: string, pyenv: string): string {
  return `#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="\${0##*/}"

export PYENV_ROOT="${root}"
SHIM_PATH=\${0%/*}
if [[ $SHIM_PATH != "${root}/shims" ]]; then
  export _PYENV_SHIM_PATH="$SHIM_PATH"
fi
exec "${pyenv}" exec "$program" "$@"
`;
}

function write(path: string, text: string, mode = 0o644): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text, { mode });
}

describe.skipIf(!haveSystemPython)("pyenvShimChoice with a fake pyenv tree", () => {
  let base: string;
  let root: string;
  let shim: string;
  let sysbin: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), "sremote-pyenv-")));
    root = join(base, "pyenv");
    shim = join(root, "shims", "python3");
    write(join(root, "libexec", "pyenv"), "#!/bin/sh\nexit 99\n", 0o755);
    write(join(root, "libexec", "pyenv---version"), 'version="2.6.30"\n');
    write(shim, shimText(root, join(root, "libexec", "pyenv")), 0o755);
    // Installed versions: python3 a link to the real interpreter (2.7.18 has none).
    for (const v of ["3.11.2", "3.11.7", "3.12.1", "3.11-dev", "3.11.9rc1", "myenv"]) {
      mkdirSync(join(root, "versions", v, "bin"), { recursive: true });
      symlinkSync(SYSTEM_PYTHON, join(root, "versions", v, "bin", "python3"));
    }
    mkdirSync(join(root, "versions", "2.7.18", "bin"), { recursive: true });
    write(join(root, "version"), "3.11.7\n");
    sysbin = join(base, "sysbin");
    mkdirSync(sysbin);
    symlinkSync(SYSTEM_PYTHON, join(sysbin, "python3"));
    // Nested project folders: a/ pins 3.12.1; a/b/ lists 2.7.18 (no python3) then 3.11.7.
    write(join(base, "a", ".python-version"), "3.12.1\n");
    write(join(base, "a", "b", ".python-version"), "# pinned\n\n  2.7.18 extra words\r\n3.11.7");
    mkdirSync(join(base, "a", "b", "c"), { recursive: true });
    write(join(base, "empty", ".python-version"), "");
    env = { PATH: `${root}/shims:${sysbin}:/usr/bin:/bin`, HOME: base, PYENV_HOOK_PATH: "" };
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const choose = (over: NodeJS.ProcessEnv = {}, cwd = base) =>
    pyenvShimChoice(shim, "python3", { env: { ...env, ...over }, cwd });
  const version = (v: string) => ({ path: join(root, "versions", v, "bin", "python3") });

  it("takes the global version file when nothing closer is set", () => {
    expect(choose()).toEqual(version("3.11.7"));
  });

  it("takes the nearest .python-version upward, skipping versions without the command", () => {
    expect(choose({}, join(base, "a"))).toEqual(version("3.12.1"));
    expect(choose({}, join(base, "a", "b", "c"))).toEqual(version("3.11.7"));
  });

  it("lets PYENV_VERSION win, first installed entry with the command, and PYENV_DIR move the search", () => {
    expect(choose({ PYENV_VERSION: "3.12.1" }, join(base, "a", "b"))).toEqual(version("3.12.1"));
    expect(choose({ PYENV_VERSION: "2.7.18:3.11.2:3.12.1" })).toEqual(version("3.11.2"));
    expect(choose({ PYENV_VERSION: "myenv" })).toEqual(version("myenv"));
    expect(choose({ PYENV_VERSION: "python-3.12.1" })).toEqual(version("3.12.1"));
    expect(choose({ PYENV_DIR: join(base, "a") }, join(base, "a", "b"))).toEqual(version("3.12.1"));
  });

  it("resolves a prefix to the latest installed release, as pyenv-latest does", () => {
    expect(choose({ PYENV_VERSION: "3.11" })).toEqual(version("3.11.7"));
    expect(choose({ PYENV_VERSION: "3" })).toEqual(version("3.12.1"));
  });

  it("finds system as the next python3 on PATH after the shims", () => {
    const system = { path: join(sysbin, "python3") };
    expect(choose({ PYENV_VERSION: "system" })).toEqual(system);
    expect(choose({ PYENV_VERSION: "2.7.18" })).toEqual(system);
    // An empty nearest file means system, even with a global version set.
    expect(choose({}, join(base, "empty"))).toEqual(system);
  });

  it("is unsure (the shim is asked) whenever pyenv might choose otherwise", () => {
    const unsure = expect.objectContaining({ unsure: expect.any(String) });
    expect(choose({ PYENV_VERSION: "3.9.1" })).toEqual(unsure);
    expect(choose({ PYENV_VERSION: "pypy3.10" })).toEqual(unsure);
    expect(choose({ PYENV_VERSION: "3.11.7::3.12.1" })).toEqual(unsure);
    expect(choose({ PYENV_VERSION: "system", PATH: `${root}/shims:relative:${sysbin}` })).toEqual(unsure);
    expect(pyenvShimChoice(join(sysbin, "python3"), "python3", { env, cwd: base })).toEqual(unsure);
    const hooks = join(base, "hooks");
    write(join(hooks, "exec", "custom.bash"), "PYENV_COMMAND_PATH=/bin/false\n");
    expect(choose({ PYENV_HOOK_PATH: hooks })).toEqual({ unsure: expect.stringContaining("custom.bash") });
    // A script where an interpreter was expected: its sys.executable is not its own path.
    write(join(root, "versions", "3.12.1", "bin", "python9"), "#!/bin/sh\n", 0o755);
    write(join(root, "shims", "python9"), shimText(root, join(root, "libexec", "pyenv")), 0o755);
    const script = pyenvShimChoice(join(root, "shims", "python9"), "python9", {
      env: { ...env, PYENV_VERSION: "3.12.1" },
      cwd: base,
    });
    expect(script).toEqual({ unsure: expect.stringContaining("not a compiled program") });
  });

  it("is unsure with a pyenv older than 2.4.13", () => {
    const old = join(base, "old");
    write(join(old, "libexec", "pyenv"), "#!/bin/sh\n", 0o755);
    write(join(old, "libexec", "pyenv---version"), 'version="2.3.36"\n');
    mkdirSync(join(old, "versions", "3.11.7", "bin"), { recursive: true });
    symlinkSync(SYSTEM_PYTHON, join(old, "versions", "3.11.7", "bin", "python3"));
    write(join(old, "shims", "python3"), shimText(old, join(old, "libexec", "pyenv")), 0o755);
    const choice = pyenvShimChoice(join(old, "shims", "python3"), "python3", {
      env: { ...env, PYENV_VERSION: "3.11.7" },
      cwd: base,
    });
    expect(choice).toEqual({ unsure: "pyenv older than 2.4.13" });
  });

  it("resolvePython reads a pyenv shim first on PATH without starting it", async () => {
    vi.stubEnv("PATH", env.PATH);
    vi.stubEnv("PYENV_VERSION", "3.12.1");
    vi.stubEnv("PYENV_HOOK_PATH", "");
    try {
      // The fake pyenv exits 99: a start of the shim would fail this.
      expect(await resolvePython()).toBe(join(root, "versions", "3.12.1", "bin", "python3"));
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

const realRoot = process.env.PYENV_ROOT || join(homedir(), ".pyenv");
const realShim = join(realRoot, "shims", "python3");
const installed = existsSync(join(realRoot, "versions")) ? readdirSync(join(realRoot, "versions")).sort() : [];

describe.skipIf(!existsSync(realShim))(`pyenvShimChoice against the real shim (${realShim})`, () => {
  let base: string;
  beforeAll(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), "sremote-pyenv-real-")));
    mkdirSync(join(base, "pinned", "deeper"), { recursive: true });
    if (installed[0]) writeFileSync(join(base, "pinned", ".python-version"), `${installed[0]}\n`);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const cases: [string, string | undefined, string][] = [
    ["the default choice", undefined, ""],
    ["system", "system", ""],
    ["a pinned folder", undefined, "pinned/deeper"],
    ...installed.slice(0, 3).map((v): [string, string, string] => [`PYENV_VERSION=${v}`, v, ""]),
    ...[...new Set(installed.map((v) => v.split(".")[0] ?? v))].map((p): [string, string, string] => [
      `prefix ${p}`,
      p,
      "",
    ]),
    ["a list", installed.join(":"), ""],
  ];

  it.each(cases)("%s gives the interpreter the shim runs", async (_name, pyenvVersion, sub) => {
    const cwd = join(base, sub);
    const env: NodeJS.ProcessEnv = { ...process.env, PWD: cwd };
    delete env.PYENV_VERSION;
    if (pyenvVersion !== undefined) env.PYENV_VERSION = pyenvVersion;
    const choice = pyenvShimChoice(realShim, "python3", { env, cwd });
    let shimSays: string;
    try {
      const { stdout } = await promisify(execFile)(realShim, ["-c", "import sys; print(sys.executable)"], { cwd, env });
      shimSays = stdout.trim();
    } catch {
      shimSays = "(the shim failed)";
    }
    // Unsure is always allowed (the shim is then asked); a sure answer must be the shim's.
    if ("path" in choice) expect(choice.path).toBe(shimSays);
    else expect(choice.unsure).toBeTruthy();
  });
});
