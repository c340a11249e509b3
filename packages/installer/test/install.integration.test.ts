import { existsSync } from "node:fs";
import { chown, mkdir, readdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { attach, discover, doctor, InstallError, install, MARKER_FILE, STATE_FILE, uninstall } from "../src/index.js";
import {
  buildWheel,
  eventLog,
  git,
  haveGit,
  isRoot,
  pyprojectPackage,
  SYSTEM_PYTHON,
  seedStyleRepo,
  systemPythonReady,
  tempDir,
} from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Real Python, real venvs, real pip and git, through the local connector with a private home.
const ready = systemPythonReady && haveGit;
if (!ready && process.env.SREMOTE_TEST_STRICT === "1") {
  throw new Error(
    "installer tests need git and /usr/bin/python3 with venv, pip, setuptools and wheel (SREMOTE_TEST_STRICT=1)",
  );
}
/** A real Python 2 when pyenv has one here (the test that needs it is skipped elsewhere). */
const OLD_PYTHON = "/root/.pyenv/versions/2.7.18/bin/python";
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * A fresh account's environment: the system PATH only (this machine's PATH also has pyenv
 * shims and rustup proxies, which pip would run, writing into the home folder).
 */
const ACCOUNT_ENV = { PATH: "/usr/local/bin:/usr/bin:/bin", LANG: "C.UTF-8" };

async function home(prefix: string) {
  const dir = await tempDir(prefix);
  cleanups.push(dir.remove);
  const connector = localConnector({ homeDir: dir.path, baseEnv: ACCOUNT_ENV });
  cleanups.push(() => connector.close());
  return { home: dir.path, connector };
}

async function call(homeDir: string, module: string, fn: string, args: unknown[] = []): Promise<unknown> {
  const client = new RemoteClient({
    connector: localConnector({ homeDir, baseEnv: ACCOUNT_ENV }),
    autoInstallAgent: false,
  });
  try {
    return (await client.call(module, fn, args)).value;
  } finally {
    await client.close();
  }
}

async function leftoverBuilds(tmp: string): Promise<string[]> {
  return (await readdir(tmp).catch(() => [] as string[])).filter((n) => n.startsWith("install-"));
}

describe.skipIf(!ready)("install through the local connector", () => {
  it("installs into an empty home, calls work, and a second install uploads and changes nothing", async () => {
    const { home: h, connector } = await home("fresh");
    const log = eventLog();
    const first = await install(connector, { python: SYSTEM_PYTHON, onProgress: log.listener });
    expect(first.changed).toBe(true);
    expect(first.layout).toEqual({ endpointDir: `${h}/.sremote`, tmpDir: `${h}/.sremote/tmp`, workDir: h });
    expect(first.python.executable).toBe(SYSTEM_PYTHON);
    expect(first.venv).toMatchObject({ systemSitePackages: false, base: SYSTEM_PYTHON });
    expect(first.operations.uploads).toBeGreaterThan(10);
    expect(log.outcomes()).toEqual(
      expect.arrayContaining(["folders:done", "python:done", "venv:done", "agent:done", "complete:done"]),
    );
    expect((await stat(`${h}/.sremote`)).mode & 0o777).toBe(0o700);
    expect((await stat(`${h}/.sremote/tmp`)).mode & 0o777).toBe(0o700);
    expect((await readFile(`${h}/.sremote/python`, "utf8")).trim()).toBe(SYSTEM_PYTHON);
    expect(await call(h, "math", "sqrt", [2])).toBeCloseTo(Math.SQRT2, 12);
    expect(await call(h, "sys", "executable.__str__")).toBe(`${h}/.sremote/env/bin/python`);

    const before = await readFile(`${h}/.sremote/${STATE_FILE}`, "utf8");
    const markerBefore = await stat(`${h}/.sremote/${MARKER_FILE}`);
    const second = await install(connector, {});
    expect(second.changed).toBe(false);
    expect(second.operations).toMatchObject({ uploads: 0, uploadBytes: 0, deletes: 0 });
    expect(second.steps.filter((s) => s.changed)).toEqual([]);
    expect(second.steps.map((s) => `${s.step}:${s.outcome}`)).toEqual([
      "layout:done",
      "python:done",
      "folders:skipped",
      "config:skipped",
      "venv:skipped",
      "agent:skipped",
      "location:skipped",
      "complete:skipped",
    ]);
    expect(await readFile(`${h}/.sremote/${STATE_FILE}`, "utf8")).toBe(before);
    expect((await stat(`${h}/.sremote/${MARKER_FILE}`)).mtimeMs).toBe(markerBefore.mtimeMs);
    // The recorded Python is kept when --python is left out.
    expect(second.python).toEqual(first.python);

    const found = await discover(connector);
    expect(found).toMatchObject({ source: "default", complete: true });
    expect(found.state?.venv?.base).toBe(SYSTEM_PYTHON);
  });

  describe("packages: a local folder, a wheel built here, a git repository (file://, branch, py/)", () => {
    let h: string;
    let connector: ReturnType<typeof localConnector>;
    let work: string;
    let repo: string;
    let folder: string;
    let wheel: string;

    beforeAll(async () => {
      ({ home: h, connector } = await home("packages"));
      const w = await tempDir("sources");
      cleanups.push(w.remove);
      work = w.path;
      folder = join(work, "folderpkg");
      await pyprojectPackage(folder, "folderpkg", "1.0", "first");
      await pyprojectPackage(join(work, "wheelsrc"), "wheelpkg", "2.0", "from a wheel");
      wheel = await buildWheel(join(work, "wheelsrc"), join(work, "dist"));
      repo = await seedStyleRepo(join(work, "repo"), "gitpkg");
    }, 120_000);

    it("installs all three, skips them when unchanged, and reinstalls only what changed", async () => {
      const packages = [
        { kind: "local" as const, path: folder },
        { kind: "local" as const, path: wheel },
        { kind: "git" as const, url: `file://${repo}@release` },
      ];
      const log = eventLog();
      const first = await install(connector, { python: SYSTEM_PYTHON, packages, onProgress: log.listener });
      expect(first.packages.map((p) => [p.kind, p.distributions])).toEqual([
        ["local", [{ name: "folderpkg", version: "1.0" }]],
        ["local", [{ name: "wheelpkg", version: "2.0" }]],
        ["git", [{ name: "gitpkg", version: "1.0" }]],
      ]);
      // The release branch's commit, found from the py/ subfolder on its own.
      expect(first.packages[2]?.resolved).toBe(await git(repo, "rev-parse", "release"));
      const lines = log.lines();
      expect(lines).toContain("sremote-install: using the subfolder py/ (the repository root is not a Python project)");
      // The venv has no `wheel` package: Debian's own Python builds the wheels.
      expect(lines.some((l) => l.startsWith("sremote-install: building a wheel with /usr/bin/python3"))).toBe(true);
      expect(await call(h, "folderpkg", "hello", ["you"])).toBe("folderpkg says hello to you");
      expect(await call(h, "wheelpkg", "hello", ["me"])).toBe("wheelpkg says hello to me");
      expect(await call(h, "gitpkg", "VALUE.__str__")).toBe("release");
      expect(await leftoverBuilds(`${h}/.sremote/tmp`)).toEqual([]);

      const again = await install(connector, { packages });
      expect(again.changed).toBe(false);
      expect(again.operations).toMatchObject({ uploads: 0, deletes: 0 });
      expect(again.steps.filter((s) => s.step === "package").map((s) => s.outcome)).toEqual([
        "skipped",
        "skipped",
        "skipped",
      ]);

      // Change the folder's content (same version) and move the branch: only those two run.
      await writeFile(join(folder, "folderpkg.py"), 'VALUE = "second"\n');
      await git(repo, "checkout", "--quiet", "release");
      await writeFile(join(repo, "py/gitpkg.py"), 'VALUE = "newer"\n');
      await git(repo, "commit", "--quiet", "-am", "newer");
      await git(repo, "checkout", "--quiet", "main");
      const third = await install(connector, { packages });
      expect(third.steps.filter((s) => s.step === "package").map((s) => `${s.subject}:${s.outcome}`)).toEqual([
        `${folder}:done`,
        `${wheel}:skipped`,
        `file://${repo}@release:done`,
      ]);
      expect(third.operations.uploads).toBeGreaterThan(0);
      expect(await call(h, "folderpkg", "VALUE.__str__")).toBe("second");
      expect(await call(h, "gitpkg", "VALUE.__str__")).toBe("newer");

      // A rebuilt wheel with the same name and version but other content is reinstalled.
      await writeFile(join(work, "wheelsrc", "wheelpkg.py"), 'VALUE = "rebuilt"\n');
      const rebuilt = await buildWheel(join(work, "wheelsrc"), join(work, "dist2"));
      const fourth = await install(connector, { packages: [{ kind: "local", path: rebuilt }] });
      expect(fourth.steps.find((s) => s.step === "package")?.outcome).toBe("done");
      expect(await call(h, "wheelpkg", "VALUE.__str__")).toBe("rebuilt");

      // doctor sees the packages; a package removed behind the installer's back is reported and repaired.
      const report = await doctor(connector, { target: "local:" });
      expect(report.problems).toEqual([]);
      expect(report.packages.map((p) => p.name)).toEqual(expect.arrayContaining(["folderpkg", "wheelpkg", "gitpkg"]));
      expect(report.recorded.every((p) => p.present)).toBe(true);
      await connector.exec([`${h}/.sremote/env/bin/python`, "-m", "pip", "uninstall", "-y", "gitpkg"]);
      const broken = await doctor(connector, { target: "local:" });
      expect(broken.problems).toEqual([
        {
          problem: expect.stringContaining(`file://${repo}@release was installed (gitpkg 1.0) but is missing now`),
          fix: `sremote install local: --git file://${repo}@release`,
        },
      ]);
      const repaired = await install(connector, { packages: [{ kind: "git", url: `file://${repo}@release` }] });
      expect(repaired.steps.find((s) => s.step === "package")?.outcome).toBe("done");
      expect(await call(h, "gitpkg", "VALUE.__str__")).toBe("newer");
    }, 300_000);

    it("with --system-site-packages the venv builds sources itself, from an explicit subfolder", async () => {
      const { home: h2, connector: c2 } = await home("ssp");
      const log = eventLog();
      const r = await install(c2, {
        python: SYSTEM_PYTHON,
        systemSitePackages: true,
        packages: [
          { kind: "git", url: `file://${repo}@main#py` },
          { kind: "local", path: folder },
        ],
        onProgress: log.listener,
      });
      expect(r.venv?.systemSitePackages).toBe(true);
      const lines = log.lines();
      expect(lines.some((l) => l.includes("building a wheel with"))).toBe(false);
      expect(await call(h2, "gitpkg", "VALUE.__str__")).toBe("main");
      // Debian's wheel package from the system site-packages is visible through the venv.
      expect(await call(h2, "importlib.metadata", "version", ["wheel"])).toMatch(/^\d+\./);
    }, 300_000);
  });

  it("keeps --python, --preamble and --system-site-packages from the last install and writes .location for --dir", async () => {
    const { home: h, connector } = await home("options");
    const r = await install(connector, {
      python: SYSTEM_PYTHON,
      dir: "projects/sremote",
      preamble: ["export SREMOTE_PREAMBLE_TEST='set by the preamble'"],
    });
    expect(r.layout).toEqual({
      endpointDir: `${h}/projects/sremote`,
      tmpDir: `${h}/projects/sremote/tmp`,
      workDir: h,
    });
    expect(r.location.action).toBe("written");
    expect(JSON.parse(await readFile(`${h}/.sremote/.location`, "utf8"))).toEqual({
      sremote: `${h}/projects/sremote`,
      relative_tmp: "projects/sremote/tmp",
      relative_pwd: ".",
    });
    expect((await stat(`${h}/.sremote/.location`)).mode & 0o777).toBe(0o600);
    // The client finds the endpoint through .location; the preamble ran before Python.
    expect(await call(h, "os", "getenv", ["SREMOTE_PREAMBLE_TEST"])).toBe("set by the preamble");
    const again = await install(connector, {});
    expect(again.changed).toBe(false);
    expect(again.layout.endpointDir).toBe(`${h}/projects/sremote`);
    // Removing the preamble is a change of its own.
    const cleared = await install(connector, { preamble: [] });
    expect(cleared.steps.find((s) => s.step === "config")?.message).toContain("removed preamble.sh");
    expect(await call(h, "os", "getenv", ["SREMOTE_PREAMBLE_TEST"])).toBeNull();

    const removed = await uninstall(connector, {});
    expect(removed.removed).toEqual(
      expect.arrayContaining([`${h}/projects/sremote`, `${h}/.sremote/.location`, `${h}/.sremote`]),
    );
    expect(await readdir(h)).toEqual(["projects"]);
    expect(await readdir(`${h}/projects`)).toEqual([]);
  }, 300_000);

  it("a shared endpoint has nothing writable by group or others and keeps the installer's temp folder private", async () => {
    const { home: h, connector } = await home("shared");
    const shared = await tempDir("group");
    cleanups.push(shared.remove);
    const dir = join(shared.path, "sremote");
    const r = await install(connector, { python: SYSTEM_PYTHON, dir, shared: true });
    expect(r.shared).toBe(true);
    expect(r.layout.tmpDir).toBe(`${h}/.sremote/tmp`);
    const { stdout } = await connector.exec(["find", dir, "!", "-type", "l", "-perm", "/022"]);
    expect(stdout).toBe("");
    const { stdout: unreadable } = await connector.exec(["find", dir, "!", "-type", "l", "!", "-perm", "-044"]);
    expect(unreadable).toBe("");
    expect((await stat(dir)).mode & 0o777).toBe(0o755);
    expect((await stat(`${h}/.sremote/tmp`)).mode & 0o777).toBe(0o700);
    expect(await call(h, "math", "sqrt", [16])).toBe(4);
    const again = await install(connector, {});
    expect(again).toMatchObject({ changed: false, shared: true });
    expect(again.operations.uploads).toBe(0);
  }, 300_000);
});

describe.skipIf(!ready)("bad input gets a clear error and leaves nothing half-done", () => {
  it("a Python that does not exist: nothing is created", async () => {
    const { home: h, connector } = await home("nopython");
    const err = await install(connector, { python: "/nonexistent/bin/python3" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect(err).toMatchObject({ code: "NOT_SET_UP", step: "python" });
    expect((err as Error).message).toContain("/nonexistent/bin/python3: not found");
    expect((err as InstallError).fix).toContain("--python");
    expect(await readdir(h)).toEqual([]);
  });

  it.skipIf(!existsSync(OLD_PYTHON))("a Python that is too old: nothing is created", async () => {
    const { home: h, connector } = await home("oldpython");
    const err = await install(connector, { python: OLD_PYTHON }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NOT_SET_UP", step: "python" });
    expect((err as Error).message).toMatch(/Python 2\.7\.\d+ is too old/);
    expect(await readdir(h)).toEqual([]);
  });

  it("a Python without venv support (Debian without python3-venv): the fix names the package; nothing is created", async () => {
    const { home: h, connector } = await home("noensurepip");
    const py = await tempDir("pyroot");
    cleanups.push(py.remove);
    const { pythonWithoutEnsurepip } = await import("./helpers.js");
    const exe = await pythonWithoutEnsurepip(py.path);
    const err = await install(connector, { python: exe }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "NOT_SET_UP", step: "python" });
    expect((err as Error).message).toContain("cannot create virtual environments: ensurepip is missing");
    expect((err as InstallError).fix).toMatch(/apt-get install python3\.\d+-venv/);
    expect(await readdir(h)).toEqual([]);
    // Without a venv it works, from the same Python.
    const r = await install(connector, { python: exe, venv: false });
    expect(r.venv).toBeNull();
    expect(await call(h, "sys", "executable.__str__")).toBe(exe);
  }, 120_000);

  it("a git URL that cannot be read, and a branch that does not exist: nothing is created", async () => {
    const { home: h, connector } = await home("badgit");
    const err = await install(connector, {
      python: SYSTEM_PYTHON,
      packages: [{ kind: "git", url: "file:///nonexistent/repo.git@main" }],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "COMMAND_FAILED", step: "sources" });
    expect((err as Error).message).toContain("git cannot read the repository file:///nonexistent/repo.git");
    expect((err as InstallError).log).toMatch(/does not appear to be a git repository|not found|No such/);
    expect(await readdir(h)).toEqual([]);

    const w = await tempDir("repo");
    cleanups.push(w.remove);
    const repo = await seedStyleRepo(join(w.path, "r"), "gitpkg");
    const bad = await install(connector, {
      python: SYSTEM_PYTHON,
      packages: [{ kind: "git", url: `file://${repo}@no-such-branch` }],
    }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: "INVALID_ARGUMENT", step: "sources" });
    expect((bad as InstallError).fix).toContain("main, release");
    expect(await readdir(h)).toEqual([]);
  });

  it("a package that does not exist: pip's reason and log tail, no marker, and the next install completes", async () => {
    const { home: h, connector } = await home("nopackage");
    const links = await tempDir("links");
    cleanups.push(links.remove);
    const err = await install(connector, {
      python: SYSTEM_PYTHON,
      packages: ["sremote-no-such-package==1.0"],
      index: false,
      findLinks: [links.path],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "COMMAND_FAILED", step: "package" });
    // One natural sentence: not "pip could not install … failed (exit status 1)".
    expect((err as InstallError).headline).toBe("pip could not install sremote-no-such-package==1.0 (exit status 1)");
    expect((err as Error).message.split("\n")[0]).toBe((err as InstallError).headline);
    expect((err as InstallError).toJSON().headline).toBe((err as InstallError).headline);
    expect((err as InstallError).log).toContain("No matching distribution found for sremote-no-such-package==1.0");
    expect((err as InstallError).fix).toContain("find-links");
    const found = await discover(connector);
    expect(found.complete).toBe(false);
    expect(found.state?.packages).toEqual([]);
    expect(await leftoverBuilds(`${h}/.sremote/tmp`)).toEqual([]);
    const report = await doctor(connector, { target: "local:" });
    expect(report.problems.map((p) => p.problem)).toContain(`the last install into ${h}/.sremote did not finish`);

    const fixed = await install(connector, {});
    expect(fixed.steps.find((s) => s.step === "venv")?.outcome).toBe("skipped");
    expect(fixed.steps.find((s) => s.step === "complete")?.outcome).toBe("done");
    expect((await discover(connector)).complete).toBe(true);
  }, 120_000);

  it("a local path that is not a Python project: refused on the client, nothing remote", async () => {
    const { home: h, connector } = await home("notproject");
    const w = await tempDir("plain");
    cleanups.push(w.remove);
    await expect(install(connector, { packages: [{ kind: "local", path: w.path }] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("is not a Python project"),
    });
    await expect(install(connector, { packages: [{ kind: "local", path: `${w.path}/missing` }] })).rejects.toThrow(
      /does not exist on this machine/,
    );
    expect(await readdir(h)).toEqual([]);
  });

  it("a non-empty folder that is not an endpoint is refused and left untouched", async () => {
    const { home: h, connector } = await home("foreign");
    await writeFile(join(h, "notes.txt"), "mine\n");
    const dir = join(h, "data");
    await connector.exec(["mkdir", "-m", "751", dir]);
    await writeFile(join(dir, "results.csv"), "1,2\n");
    const err = await install(connector, { python: SYSTEM_PYTHON, dir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "INVALID_ARGUMENT", step: "folders" });
    expect((err as Error).message).toContain(
      `${dir} is not empty and is not an SRemote endpoint (it holds results.csv)`,
    );
    expect(await readdir(dir)).toEqual(["results.csv"]);
    expect((await stat(dir)).mode & 0o777).toBe(0o751);
    await expect(uninstall(connector, { dir })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("is not an SRemote endpoint"),
    });
    expect(await readdir(dir)).toEqual(["results.csv"]);
    await expect(uninstall(connector, { dir: h })).rejects.toThrow(/contains the home folder/);
  });
});

describe.skipIf(!ready)("deadlines: timeoutMs says TIMEOUT, the caller's signal ABORTED", () => {
  it("an install past its timeoutMs rejects with TIMEOUT, leaves nothing half-made, and the next install completes", async () => {
    const { home: h, connector } = await home("timeout");
    const dir = join(h, "ep");
    const layout = { endpointDir: dir, tmpDir: `${dir}/tmp`, workDir: "/tmp" };
    const err = await install(connector, { layout, python: SYSTEM_PYTHON, timeoutMs: 400 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "TimeoutError", code: "TIMEOUT", message: "install timed out after 400 ms" });
    expect(existsSync(join(dir, "env"))).toBe(false);
    expect(existsSync(join(dir, MARKER_FILE))).toBe(false);
    expect(await leftoverBuilds(`${dir}/tmp`)).toEqual([]);
    const r = await install(connector, { layout, python: SYSTEM_PYTHON });
    expect(r.steps.find((s) => s.step === "complete")?.outcome).toBe("done");
    expect(await leftoverBuilds(`${dir}/tmp`)).toEqual([]);
  }, 120_000);

  it("an install ended while it writes its config leaves a folder the next install takes as its own", async () => {
    // The first write of the state fails (as a timeout would end the install there): the
    // folder must already be marked as an endpoint, not hold a lone `python` file.
    const { home: h, connector: inner } = await home("config-interrupted");
    const dir = join(h, "ep");
    const layout = { endpointDir: dir, tmpDir: `${dir}/tmp`, workDir: "/tmp" };
    let failed = false;
    const connector = new Proxy(inner, {
      get(target, key) {
        if (key === "putFile") {
          return (path: string, data: Uint8Array, o?: object) => {
            if (!failed && path.endsWith(`/${STATE_FILE}`) && existsSync(join(dir, "python"))) {
              failed = true;
              return Promise.reject(new Error("interrupted after the python file"));
            }
            return target.putFile(path, data, o);
          };
        }
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await expect(install(connector, { layout, python: SYSTEM_PYTHON })).rejects.toThrow();
    const r = await install(inner, { layout, python: SYSTEM_PYTHON });
    expect(r.steps.find((s) => s.step === "complete")?.outcome).toBe("done");
  }, 120_000);

  it("an install the caller aborts in the venv step rejects with ABORTED for the install, not the command", async () => {
    const { home: h, connector } = await home("aborted");
    const controller = new AbortController();
    const log = eventLog();
    const err = await install(connector, {
      python: SYSTEM_PYTHON,
      signal: controller.signal,
      onProgress: (e) => {
        log.listener(e);
        if (e.type === "step-start" && e.step === "venv") controller.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "AbortError", code: "ABORTED", message: "install aborted" });
    expect(log.outcomes()).toContain("venv:failed");
    expect(existsSync(`${h}/.sremote/env`)).toBe(false);
    expect(await leftoverBuilds(`${h}/.sremote/tmp`)).toEqual([]);
  }, 60_000);

  it("attach, uninstall and doctor past their timeoutMs reject with TIMEOUT too", async () => {
    const { home: h, connector } = await home("timeouts");
    for (const [what, run] of [
      ["uninstall", () => uninstall(connector, { timeoutMs: 0 })],
      ["doctor", () => doctor(connector, { timeoutMs: 0 })],
      ["attach", () => attach(connector, { dir: join(h, "shared"), timeoutMs: 0 })],
    ] as const) {
      await expect(run(), what).rejects.toMatchObject({
        code: "TIMEOUT",
        message: `${what} timed out after 0 ms`,
      });
    }
  });
});

describe.skipIf(!ready)("attach, uninstall and the fixes through the local connector", () => {
  it("attach's step says which private folders it created, without the script's 'changed' prefix", async () => {
    const { connector: owner } = await home("attach-owner");
    const group = await tempDir("attach-group");
    cleanups.push(group.remove);
    const dir = join(group.path, "sremote");
    await install(owner, { python: SYSTEM_PYTHON, dir, shared: true, venv: false });
    const { home: hb, connector: b } = await home("attach-user");
    const log = eventLog();
    const r = await attach(b, { dir, onProgress: log.listener });
    expect(r.changed).toBe(true);
    expect(r.steps.find((s) => s.step === "attach")?.message).toBe(
      `created ${hb}/.sremote; created ${hb}/.sremote/tmp`,
    );
    const again = await attach(b, { dir });
    expect(again.steps.find((s) => s.step === "attach")?.message).toBe("private folders in place");
  }, 120_000);

  it("uninstalling an endpoint the target names leaves an unrelated empty ~/.sremote alone", async () => {
    const { home: h, connector } = await home("keep-dotdir");
    await mkdir(join(h, ".sremote"), { mode: 0o700 });
    const elsewhere = await tempDir("elsewhere");
    cleanups.push(elsewhere.remove);
    const dir = join(elsewhere.path, "ep");
    const layout = { endpointDir: dir, tmpDir: `${dir}/tmp`, workDir: h };
    await install(connector, { layout, python: SYSTEM_PYTHON, venv: false });
    const r = await uninstall(connector, { layout });
    expect(r.removed).toEqual([dir]);
    expect(existsSync(dir)).toBe(false);
    expect(await readdir(h)).toEqual([".sremote"]);
  }, 60_000);

  it.skipIf(!isRoot)(
    "a folder of another account: install's and doctor's fixes name sremote attach",
    async () => {
      const { home: h, connector } = await home("foreign-owner");
      const nobody = 65534;
      const dir = join(h, "theirs");
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, nobody, nobody);
      const err = await install(connector, {
        layout: { endpointDir: dir, tmpDir: join(h, "tmp"), workDir: h },
        python: SYSTEM_PYTHON,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "PERMISSION_DENIED",
        step: "folders",
        headline: `${dir} belongs to another account`,
        fix: `ask its owner to run sremote install; to use it as a shared endpoint: sremote attach <target> ${dir}`,
      });

      const ep = join(h, "mine");
      await mkdir(join(ep, "tmp"), { recursive: true, mode: 0o700 });
      await chown(join(ep, "tmp"), nobody, nobody);
      const report = await doctor(connector, {
        target: "local:",
        layout: { endpointDir: ep, tmpDir: join(ep, "tmp"), workDir: h },
      });
      expect(report.problems).toContainEqual({
        problem: `the temp folder ${ep}/tmp belongs to another account`,
        fix: `use a private one: sremote attach local: ${ep}  (temp folder ~/.sremote/tmp)`,
      });
    },
    60_000,
  );
});

describe.skipIf(!ready)("an installed git package whose repository cannot be reached", () => {
  it("is kept with a warning; --upgrade and a new package still fail clearly and change nothing", async () => {
    const { home: h, connector } = await home("offline-git");
    const w = await tempDir("offline-repo");
    cleanups.push(w.remove);
    const repo = await seedStyleRepo(join(w.path, "repo"), "gitpkg");
    const url = `file://${repo}@release`;
    const first = await install(connector, { python: SYSTEM_PYTHON, packages: [{ kind: "git", url }] });
    const commit = first.packages[0]?.resolved as string;
    expect(commit).toBe(await git(repo, "rev-parse", "release"));

    await rename(repo, join(w.path, "moved"));
    const log = eventLog();
    const offline = await install(connector, { packages: [{ kind: "git", url }], onProgress: log.listener });
    expect(offline.changed).toBe(false);
    expect(offline.steps.find((s) => s.step === "package")?.outcome).toBe("skipped");
    const warnings = log.events.flatMap((e) => (e.type === "warning" ? [e] : []));
    expect(warnings).toEqual([
      {
        type: "warning",
        step: "sources",
        message: expect.stringMatching(
          new RegExp(
            `^cannot reach file://${repo} \\(git cannot read the repository file://${repo} from the remote \\(exit status \\d+\\)\\); keeping the installed commit ${commit.slice(0, 12)} — the ref was not re-checked$`,
          ),
        ),
      },
    ]);

    const marker = await stat(`${h}/.sremote/${MARKER_FILE}`);
    for (const options of [
      { packages: [{ kind: "git" as const, url }], upgrade: true },
      { packages: [{ kind: "git" as const, url: `file://${repo}@main` }] },
    ]) {
      const err = await install(connector, options).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "COMMAND_FAILED", step: "sources" });
      expect((err as InstallError).headline).toContain(`git cannot read the repository file://${repo}`);
      expect((err as InstallError).log).toMatch(/does not appear to be a git repository|not found|No such/);
    }
    // Nothing was touched: the install is still complete and the package still imports.
    expect((await stat(`${h}/.sremote/${MARKER_FILE}`)).mtimeMs).toBe(marker.mtimeMs);
    expect((await discover(connector)).complete).toBe(true);
    expect(await call(h, "gitpkg", "VALUE.__str__")).toBe("release");
  }, 300_000);
});
