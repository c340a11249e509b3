import { chmod, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { discover, doctor, InstallError, install, MARKER_FILE, STATE_FILE } from "../src/index.js";
import { buildWheel, eventLog, git, pyprojectPackage, run, SYSTEM_PYTHON, seedStyleRepo } from "./helpers.js";
import { type SshAccount, sshAccount, sshReady } from "./ssh-accounts.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// A real OpenSSH sshd on loopback, a dedicated account with an empty home, Debian's Python.

/** Lists a remote folder (names, sorted); `[]` when it does not exist. */
async function ls(account: SshAccount, dir: string): Promise<string[]> {
  const r = await account.connector.exec(["ls", "-A", "--", dir]);
  return r.exitCode === 0 ? r.stdout.split("\n").filter(Boolean).sort() : [];
}

describe.skipIf(!sshReady)("install over SSH into a fresh account", () => {
  let a: SshAccount;

  beforeAll(async () => {
    a = await sshAccount("sremote-inst-ssh");
  }, 60_000);
  afterAll(async () => {
    await a?.close();
  });

  it("installs from an empty home; calls work; a second install uploads nothing, changes nothing and is ≥5× faster", async () => {
    expect(await ls(a, a.home)).toEqual([]);
    const first = await install(a.connector, { python: SYSTEM_PYTHON });
    expect(first.changed).toBe(true);
    expect(first.homeDir).toBe(a.home);
    expect(first.layout).toEqual({
      endpointDir: `${a.home}/.sremote`,
      tmpDir: `${a.home}/.sremote/tmp`,
      workDir: a.home,
    });
    expect(first.operations.uploads).toBeGreaterThan(10);
    expect(await ls(a, `${a.home}/.sremote`)).toEqual(expect.arrayContaining(["env", MARKER_FILE, STATE_FILE]));

    expect(await a.call("math", "sqrt", [2])).toBeCloseTo(Math.SQRT2, 12);
    expect(await a.call("math", "sqrt", [2], { mode: "file" })).toBeCloseTo(Math.SQRT2, 12);
    expect(await a.call("sys", "executable.__str__")).toBe(`${a.home}/.sremote/env/bin/python`);
    expect(await a.call("getpass", "getuser")).toBe(a.user);

    const second = await install(a.connector, {});
    expect(second.changed).toBe(false);
    expect(second.operations.uploads).toBe(0);
    expect(second.operations.deletes).toBe(0);
    expect(second.steps.filter((s) => s.changed)).toEqual([]);
    // Same process, same connection kind: a ratio, never an absolute duration.
    expect(first.durationMs / second.durationMs).toBeGreaterThanOrEqual(5);
    expect(await a.call("math", "sqrt", [2])).toBeCloseTo(Math.SQRT2, 12);
    expect(await discover(a.connector)).toMatchObject({ source: "default", complete: true });
    const report = await doctor(a.connector, { target: "ssh://a" });
    expect(report.problems).toEqual([]);
    expect(report.codec).not.toBeNull();
    expect(report.permissions).toEqual({ groupOrWorldWritable: [], tmpPrivate: true });
  }, 120_000);

  it("installs a git repository (file:// URL, branch, py/ subfolder), a local folder and a wheel built here", async () => {
    const repo = await seedStyleRepo(join(a.shared, "repo"), "sshgitpkg");
    const folder = join(a.shared, "folderpkg");
    await pyprojectPackage(folder, "sshfolderpkg", "1.0", "folder");
    await pyprojectPackage(join(a.shared, "wheelsrc"), "sshwheelpkg", "3.0", "wheel");
    const wheel = await buildWheel(join(a.shared, "wheelsrc"), join(a.shared, "dist"));
    // Readable by the SSH account: git makes 0644/0755 files under root's umask 022.
    await run("chmod", ["-R", "go+rX", a.shared]);
    const packages = [
      { kind: "git" as const, url: `file://${repo}@release` },
      { kind: "local" as const, path: folder },
      { kind: "local" as const, path: wheel },
    ];
    // git refuses a repository another account owns; the error says so and how to trust it.
    const refused = await install(a.connector, { packages }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InstallError);
    expect(refused).toMatchObject({ code: "PERMISSION_DENIED", step: "sources" });
    expect((refused as Error).message).toContain("belongs to another account");
    const fix = /run on the remote as this account: (git config [^;]+);/.exec((refused as InstallError).fix ?? "");
    expect(fix?.[1]).toBe(`git config --global --add safe.directory ${repo}/.git`);
    // Nothing was changed by the refused install.
    expect((await discover(a.connector)).state?.packages).toEqual([]);
    // The fix, run as the account, is all it takes.
    expect((await a.connector.exec(["sh", "-c", fix?.[1] as string])).exitCode).toBe(0);

    const log = eventLog();
    const r = await install(a.connector, { packages, onProgress: log.listener });
    expect(r.packages.map((p) => [p.kind, p.distributions])).toEqual([
      ["git", [{ name: "sshgitpkg", version: "1.0" }]],
      ["local", [{ name: "sshfolderpkg", version: "1.0" }]],
      ["local", [{ name: "sshwheelpkg", version: "3.0" }]],
    ]);
    expect(r.packages[0]?.resolved).toBe(await git(repo, "rev-parse", "release"));
    const lines = log.lines();
    expect(lines).toContain("sremote-install: using the subfolder py/ (the repository root is not a Python project)");
    expect(await a.call("sshgitpkg", "VALUE.__str__")).toBe("release");
    expect(await a.call("sshfolderpkg", "hello", ["ssh"])).toBe("sshfolderpkg says hello to ssh");
    expect(await a.call("sshwheelpkg", "VALUE.__str__")).toBe("wheel");
    expect(await ls(a, `${a.home}/.sremote/tmp`)).toEqual([]);

    const again = await install(a.connector, { packages });
    expect(again.changed).toBe(false);
    expect(again.operations).toMatchObject({ uploads: 0, deletes: 0 });
    expect(again.steps.filter((s) => s.step === "package").map((s) => s.outcome)).toEqual([
      "skipped",
      "skipped",
      "skipped",
    ]);
  }, 120_000);

  it("a read-only parent folder: PERMISSION_DENIED with a fix, nothing created", async () => {
    const parent = `${a.home}/readonly`;
    expect((await a.connector.exec(["mkdir", "-m", "0555", parent])).exitCode).toBe(0);
    const before = await ls(a, a.home);
    const err = await install(a.connector, { dir: `${parent}/sremote` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect(err).toMatchObject({ code: "PERMISSION_DENIED", step: "folders" });
    expect((err as Error).message).toContain(
      `preparing ${parent}/sremote failed: this account may not write in ${parent}`,
    );
    expect((err as InstallError).fix).toContain(`ls -ld ${parent})`);
    expect((err as InstallError).log).toContain("Permission denied");
    expect(await ls(a, parent)).toEqual([]);
    expect(await ls(a, a.home)).toEqual(before);
    // No .location pointing at the folder that could not be made.
    expect(await ls(a, `${a.home}/.sremote`)).not.toContain(".location");
  }, 60_000);

  it("a full file system: REMOTE_IO with a fix, no completion marker, no half-made venv or build folder", async (ctx) => {
    // A small tmpfs the account owns: room for the folders and the agent, not for a venv.
    const mount = await mkdtemp("/tmp/sremote-inst-full-");
    await chmod(mount, 0o755);
    try {
      await run("mount", ["-t", "tmpfs", "-o", "size=3m,mode=0755", "sremote-inst-full", mount]);
    } catch (err) {
      await rm(mount, { recursive: true, force: true });
      // Containers without CAP_SYS_ADMIN cannot mount: the only case this test may be skipped.
      ctx.skip(`cannot mount a small tmpfs to fill up (${(err as Error).message.split("\n")[0]})`);
    }
    try {
      await run("chown", [`${a.user}:${a.user}`, mount]);
      const dir = `${mount}/sremote`;
      const log = eventLog();
      const err = await install(a.connector, { dir, writeLocation: false, onProgress: log.listener }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InstallError);
      // venv only says "exit status 1": the installer asks df and says what is wrong.
      expect(err).toMatchObject({ code: "REMOTE_IO", step: "venv" });
      expect((err as Error).message).toContain(`creating the venv ${dir}/env failed`);
      expect((err as Error).message).toContain(`the remote file system holding ${dir} is full`);
      expect((err as InstallError).fix).toContain(`df -h ${dir}`);
      expect(log.outcomes()).toContain("venv:failed");
      const left = await ls(a, dir);
      expect(left).not.toContain(MARKER_FILE);
      expect(left).not.toContain("env");
      expect(await ls(a, `${dir}/tmp`)).toEqual([]);
      expect(
        (await discover(a.connector, { layout: { endpointDir: dir, tmpDir: `${dir}/tmp`, workDir: a.home } })).complete,
      ).toBe(false);

      // Full to the last byte: SFTP says only "Failure"; the installer still says why.
      await run("sh", ["-c", 'cat /dev/zero > "$1"/filler', "sh", mount]).catch(() => undefined);
      const agentOnly = `${mount}/agent-only`;
      const upload = await install(a.connector, { dir: agentOnly, venv: false, writeLocation: false }).catch(
        (e: unknown) => e,
      );
      expect(upload).toBeInstanceOf(InstallError);
      expect(upload).toMatchObject({ code: "REMOTE_IO" });
      expect((upload as Error).message).toMatch(
        /^(writing the endpoint's configuration|uploading the agent) failed \(/,
      );
      expect((upload as Error).message).toContain(`the remote file system holding ${agentOnly} is full (0 bytes free)`);
      expect(await ls(a, agentOnly)).not.toContain(MARKER_FILE);
      await rm(`${mount}/filler`);

      // With room again, the next install finishes the job.
      await run("mount", ["-o", "remount,size=64m", mount]);
      const fixed = await install(a.connector, { dir, writeLocation: false });
      expect(fixed.steps.find((s) => s.step === "venv")?.outcome).toBe("done");
      expect(fixed.steps.find((s) => s.step === "complete")?.outcome).toBe("done");
      expect(await ls(a, dir)).toContain(MARKER_FILE);
      expect(fixed.venv).toMatchObject({ base: SYSTEM_PYTHON, systemSitePackages: false });
    } finally {
      await run("umount", [mount]).catch(() => undefined);
      await rm(mount, { recursive: true, force: true });
    }
  }, 60_000);
});
