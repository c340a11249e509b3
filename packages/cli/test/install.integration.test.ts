import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InstallResult } from "@sremote/installer";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EXIT } from "../src/index.js";
import { ESC, requireInStrictMode, runInProcess, SYSTEM_PYTHON, sremote, systemPythonReady } from "./run-cli.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The real CLI as its own process, real Python venvs and pip, through local:<folder>.
requireInStrictMode(systemPythonReady, `${SYSTEM_PYTHON} with venv, ensurepip and pip`);
const haveGit = existsSync("/usr/bin/git");
const canBuild = (() => {
  try {
    execFileSync(SYSTEM_PYTHON, ["-c", "import setuptools, wheel"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
requireInStrictMode(haveGit && canBuild, `git and ${SYSTEM_PYTHON} with setuptools and wheel`);

const folders: string[] = [];
async function endpointFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sremote-cli-install-"));
  folders.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of folders) await rm(dir, { recursive: true, force: true });
});

describe("sremote install: usage errors (exit 2)", () => {
  it("rejects an unknown option, naming it", async () => {
    const r = await runInProcess(["install", "local:/tmp/sremote-cli-x", "--frobnicate"]);
    expect(r.status).toBe(EXIT.usage);
    expect(r.stderr).toContain("unknown option '--frobnicate'");
  });

  it("rejects an empty or malformed --git URL before connecting", async () => {
    const dir = "/tmp/sremote-cli-never-created";
    const empty = await runInProcess(["install", `local:${dir}`, "--git", ""]);
    expect(empty.status).toBe(EXIT.usage);
    expect(empty.stderr).toContain("git URL must be a non-empty string");
    const json = await runInProcess(["install", `local:${dir}`, "--git", "", "--json"]);
    expect(json.status).toBe(EXIT.usage);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    const scheme = await runInProcess(["install", `local:${dir}`, "--git", "ftp://host/repo.git"]);
    expect(scheme.status).toBe(EXIT.usage);
    expect(scheme.stderr).toContain("unsupported scheme ftp");
    expect(existsSync(dir)).toBe(false);
  });

  it("rejects a bad target, --dir with a local: folder, and uninstall without --yes", async () => {
    expect((await runInProcess(["install", "bogus://x"])).status).toBe(EXIT.usage);
    const both = await runInProcess(["install", "local:/tmp/sremote-cli-x", "--dir", "/tmp/y"]);
    expect(both.status).toBe(EXIT.usage);
    expect(both.stderr).toContain("drop --dir");
    const bare = await runInProcess(["install", "local:", "--json"]);
    expect(bare.status).toBe(EXIT.usage);
    expect(JSON.parse(bare.stdout).error.message).toContain("name an endpoint folder");
    const unconfirmed = await runInProcess(["uninstall", "local:/tmp/sremote-cli-x"]);
    expect(unconfirmed.status).toBe(EXIT.usage);
    expect(unconfirmed.stderr).toContain("--yes");
  });
});

describe.skipIf(!systemPythonReady)("sremote install local:<folder>", () => {
  let dir: string;
  let first: InstallResult;

  beforeAll(async () => {
    dir = await endpointFolder();
  });

  it("installs with --json: one JSON object on stdout, plain progress lines on stderr; calls then work", async () => {
    const r = await sremote(["install", `local:${dir}`, "--python", SYSTEM_PYTHON, "--json"]);
    expect(r.stderr).not.toContain(ESC);
    expect(r.status).toBe(EXIT.ok);
    first = JSON.parse(r.stdout);
    expect(first).toMatchObject({
      ok: true,
      changed: true,
      layout: { endpointDir: dir, tmpDir: `${dir}/tmp` },
      python: { executable: SYSTEM_PYTHON },
      location: { action: "none" },
    });
    expect(first.operations.uploads).toBeGreaterThan(10);
    // Progress: one plain line per event, the step in brackets; uploads relative to the endpoint.
    const lines = r.stderr.trimEnd().split("\n");
    for (const line of lines)
      expect(line).toMatch(/^\[(connect|layout|python|folders|config|venv|agent|location|complete)\] /);
    expect(lines).toContain("[connect] connecting to local:" + dir + " …");
    expect(r.stderr).toMatch(/^\[agent\] uploaded interpreter\.sh \(\d+ B\)$/m);
    expect(r.stderr).toMatch(/^\[venv\] done: created .*\(\d/m);

    const call = await sremote(["call", `local:${dir}`, "math.sqrt", "2"]);
    expect(call).toMatchObject({ status: EXIT.ok, stdout: "1.4142135623730951\n" });
    // Calls run in the endpoint's venv, not in the first python3 on PATH.
    const exe = await sremote(["call", `local:${dir}`, "sys:executable.__str__"]);
    expect(exe.stdout).toBe(`${dir}/env/bin/python\n`);
  }, 120_000);

  it("a second install changes nothing and uploads nothing", async () => {
    const r = await sremote(["install", `local:${dir}`, "--json"]);
    expect(r.status).toBe(EXIT.ok);
    const second = JSON.parse(r.stdout);
    expect(second.changed).toBe(false);
    expect(second.operations).toMatchObject({ uploads: 0, uploadBytes: 0, deletes: 0 });
    expect(second.steps.filter((s: { changed: boolean }) => s.changed)).toEqual([]);
    expect(second.python).toEqual(first.python);
  }, 60_000);

  it("without --json: the summary on stdout, one plain line per event on stderr (no terminal)", async () => {
    const r = await sremote(["install", `local:${dir}`]);
    expect(r.status).toBe(EXIT.ok);
    expect(r.stdout).toMatch(new RegExp(`^up to date: local:${dir} → ${dir} \\(nothing changed\\)`));
    expect(r.stdout).toContain(`python    ${first.python.version} at ${SYSTEM_PYTHON}, venv ${dir}/env`);
    expect(r.stdout).toContain("0 upload(s)");
    expect(r.stderr).not.toContain(ESC);
    expect(r.stderr).toContain("[venv] skipped: venv up to date");
    expect(r.stderr).toContain("[complete] skipped: nothing changed");
  }, 60_000);

  it("on a terminal: a live display with a mark and a duration per step", async () => {
    const r = await runInProcess(["install", `local:${dir}`], { tty: true });
    expect(r.status).toBe(EXIT.ok);
    expect(r.stderr).toContain(`${ESC}[`);
    // A duration is "NNN ms" or, on a loaded machine, "1.2 s" (formatDuration).
    const took = String.raw`(\d+ ms|[\d.]+ s)`;
    expect(r.stderr).toMatch(new RegExp(String.raw`–.*venv {8}skipped: venv up to date \(Python [\d.]+\) {2}` + took));
    expect(r.stderr).toMatch(
      new RegExp(String.raw`✔.*python {6}Python [\d.]+ \(CPython\) at /usr/bin/python3 {2}` + took),
    );
    // stdout stays plain text for scripts even then.
    expect(r.stdout).not.toContain(ESC);
  }, 60_000);

  it("doctor reports python, agent and codec with --json, and as text", async () => {
    const r = await sremote(["doctor", `local:${dir}`, "--json"]);
    expect(r.status).toBe(EXIT.ok);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      target: `local:${dir}`,
      layout: { endpointDir: dir, source: "given" },
      agent: { upToDate: true, installedVersion: first.agentVersion, clientVersion: first.agentVersion },
      python: { python: first.python.version, executable: `${dir}/env/bin/python` },
      install: { complete: true, venv: true, owner: true },
      problems: [],
    });
    expect(report.codec).toMatch(/^(c|pure)$/);
    expect(report.packages.map((p: { name: string }) => p.name)).toContain("pip");
    const text = await sremote(["doctor", `local:${dir}`]);
    expect(text.status).toBe(EXIT.ok);
    expect(text.stdout).toContain(`agent      ${first.agentVersion} (client ${first.agentVersion})`);
    expect(text.stdout).toContain(`python     ${first.python.version} cpython at ${dir}/env/bin/python`);
    expect(text.stdout).toMatch(/^codec {6}(c|pure)/m);
    expect(text.stdout.trimEnd().endsWith("ok")).toBe(true);
  }, 60_000);

  it("a package pip cannot find: exit 1, pip's reason, and the failed step in the JSON error", async () => {
    const args = ["install", `local:${dir}`, "--package", "sremote-no-such-pkg-xyz", "--no-index"];
    const json = await sremote([...args, "--json"]);
    expect(json.status).toBe(EXIT.remoteFailed);
    const out = JSON.parse(json.stdout);
    expect(out).toMatchObject({ ok: false, error: { code: "COMMAND_FAILED", step: "package" } });
    // The installer's headline, read as one sentence: no "could not install … failed".
    expect(out.error.message).toBe("pip could not install sremote-no-such-pkg-xyz (exit status 1)");
    expect(out.error.reason).toMatch(
      /^ERROR: (No matching distribution found|Could not find a version).*sremote-no-such-pkg-xyz/,
    );
    expect(out.error.log).toContain("No matching distribution found for sremote-no-such-pkg-xyz");
    expect(out.error.fix).toMatch(/find-links/);
    expect(json.stderr).toMatch(/^\[package\] failed: /m);

    const text = await sremote(args);
    expect(text.status).toBe(EXIT.remoteFailed);
    expect(text.stdout).toBe("");
    expect(text.stderr).toContain(
      "sremote install: failed at the package step: pip could not install sremote-no-such-pkg-xyz",
    );
    expect(text.stderr).toContain("reason: ERROR: No matching distribution found for sremote-no-such-pkg-xyz");
    expect(text.stderr).toMatch(/^ {2}fix: /m);
    // The endpoint still works.
    expect((await sremote(["call", `local:${dir}`, "math.sqrt", "4"])).stdout).toBe("2\n");
  }, 120_000);

  it("uninstall --yes removes the endpoint; doctor then names the fix", async () => {
    const r = await sremote(["uninstall", `local:${dir}`, "--yes", "--json"]);
    expect(r.status).toBe(EXIT.ok);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, detached: false, layout: { endpointDir: dir } });
    expect(out.removed).toContain(dir);
    expect(await readdir(dir).catch(() => "gone")).toBe("gone");
    const doctor = await sremote(["doctor", `local:${dir}`, "--json"]);
    expect(doctor.status).toBe(EXIT.setup);
    expect(JSON.parse(doctor.stdout).problems).toEqual([
      { problem: `no endpoint at ${dir}`, fix: `sremote install local:${dir}` },
    ]);
  }, 60_000);
});

describe.skipIf(!systemPythonReady)("sremote install --timeout", () => {
  it("exits 124 with TIMEOUT, names the step it stopped in, and leaves no half-made venv", async () => {
    const dir = await endpointFolder();
    const r = await sremote(["install", `local:${dir}`, "--python", SYSTEM_PYTHON, "--timeout", "400", "--json"]);
    expect(r.status, r.stdout + r.stderr).toBe(EXIT.timeout);
    const error = JSON.parse(r.stdout).error;
    expect(error).toMatchObject({ code: "TIMEOUT", message: "install timed out after 400 ms" });
    expect(typeof error.step).toBe("string");
    expect(r.stderr).toMatch(new RegExp(`^\\[${error.step}\\] failed: `, "m"));
    expect(existsSync(`${dir}/env`)).toBe(false);
  }, 60_000);
});

describe.skipIf(!systemPythonReady)("sremote uninstall on a terminal", () => {
  it("asks first: no keeps everything, yes removes the endpoint", async () => {
    const dir = await endpointFolder();
    const installed = await sremote(["install", `local:${dir}`, "--python", SYSTEM_PYTHON, "--no-venv", "--json"]);
    expect(installed.status, installed.stdout + installed.stderr).toBe(EXIT.ok);
    expect(JSON.parse(installed.stdout).venv).toBeNull();

    const no = await runInProcess(["uninstall", `local:${dir}`], { tty: true, answer: "n" });
    expect(no.stderr).toContain(`Remove the SRemote endpoint ${dir} on local:${dir} (the agent and its files)? [y/N] `);
    expect(no.status).toBe(EXIT.usage);
    expect(no.stderr).toContain("not confirmed: nothing was removed");
    expect(existsSync(`${dir}/interpreter.sh`)).toBe(true);

    const yes = await runInProcess(["uninstall", `local:${dir}`], { tty: true, answer: "y" });
    expect(yes.status, yes.stderr).toBe(EXIT.ok);
    expect(yes.stdout).toContain(`uninstalled local:${dir}: ${dir}`);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});

/** A setup.py project with one module `name` whose VALUE is `value`, under `root/sub`. */
async function pythonProject(root: string, sub: string, name: string, value: string): Promise<void> {
  const dir = join(root, sub);
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, "setup.py"),
    `from setuptools import setup\nsetup(name="${name}", version="1.0", py_modules=["${name}"])\n`,
  );
  await writeFile(join(dir, `${name}.py`), `VALUE = ${JSON.stringify(value)}\n`);
}

describe.skipIf(!systemPythonReady || !haveGit || !canBuild)("sremote install --git and --local", () => {
  it("installs both, in command-line order, built offline; a second run skips them", async () => {
    const dir = await endpointFolder();
    const work = await endpointFolder();
    const repo = join(work, "repo");
    await pythonProject(repo, "py", "cligitpkg", "main");
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args], { cwd: repo });
    git("init", "--quiet", "-b", "main");
    git("add", "-A");
    git("commit", "--quiet", "-m", "first");
    git("checkout", "--quiet", "-b", "release");
    await writeFile(join(repo, "py", "cligitpkg.py"), 'VALUE = "release"\n');
    git("commit", "--quiet", "-am", "release");
    await pythonProject(work, "folder", "clilocalpkg", "local");

    const args = ["install", `local:${dir}`, "--python", SYSTEM_PYTHON];
    const packages = ["--local", join(work, "folder"), "--git", `file://${repo}@release#py`];
    const r = await sremote([...args, ...packages, "--json"]);
    expect(r.status, r.stdout + r.stderr).toBe(EXIT.ok);
    const result: InstallResult = JSON.parse(r.stdout);
    expect(result.packages.map((p) => [p.kind, p.source, p.distributions])).toEqual([
      ["local", join(work, "folder"), [{ name: "clilocalpkg", version: "1.0" }]],
      ["git", `file://${repo}@release#py`, [{ name: "cligitpkg", version: "1.0" }]],
    ]);
    // pip's output reached the progress lines of its step.
    expect(r.stderr).toMatch(/^\[package\] {3}Successfully installed cligitpkg-1\.0$/m);
    expect((await sremote(["call", `local:${dir}`, "cligitpkg:VALUE.__str__"])).stdout).toBe("release\n");
    expect((await sremote(["call", `local:${dir}`, "clilocalpkg:VALUE.__str__"])).stdout).toBe("local\n");

    const again = await sremote([...args, ...packages, "--json"]);
    const second: InstallResult = JSON.parse(again.stdout);
    expect(second).toMatchObject({ changed: false, operations: { uploads: 0, deletes: 0 } });
    expect(second.steps.filter((s) => s.step === "package").map((s) => s.outcome)).toEqual(["skipped", "skipped"]);
  }, 180_000);
});
