import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, rm } from "node:fs/promises";
import type { InstallResult } from "@sremote/installer";
import { SSHD_PATH, type SshdFixture, sshCliFlags, sshTarget, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { EXIT } from "../src/index.js";
import { ESC, requireInStrictMode, SYSTEM_PYTHON, sremote, systemPythonReady } from "./run-cli.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The acceptance test: a freshly created account with an empty home, reached over a
// private OpenSSH sshd on 127.0.0.1, installed with the real `sremote` command.
const isRoot = process.getuid?.() === 0;
const ready = isRoot && existsSync(SSHD_PATH) && systemPythonReady;
requireInStrictMode(
  ready,
  `root (the sshd fixture creates dedicated accounts), ${SSHD_PATH} and ${SYSTEM_PYTHON} with venv, ensurepip and pip`,
);

/** The flags of a password login whose password is in $SREMOTE_CLI_TEST_PW. */
function passwordFlags(sshd: SshdFixture): string[] {
  return ["--known-hosts", sshd.knownHostsPath, "--ssh-config", "/dev/null", "--password-env", "SREMOTE_CLI_TEST_PW"];
}

describe.skipIf(!ready)("sremote install ssh:// into a fresh account", () => {
  let sshd: SshdFixture;
  let target: string;
  let flags: string[];
  let first: InstallResult;

  beforeAll(async () => {
    sshd = await startSshd({ user: "sremote-cli-inst", password: true });
    target = sshTarget(sshd);
    flags = sshCliFlags(sshd);
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
  });

  it("installs from an empty home; calls work; a second install changes nothing, uploads nothing, and is ≥5× faster", async () => {
    expect(await readdir(sshd.home)).toEqual([]);
    const r = await sremote(["install", target, ...flags, "--python", SYSTEM_PYTHON, "--json"]);
    expect(r.status, r.stdout + r.stderr).toBe(EXIT.ok);
    first = JSON.parse(r.stdout);
    expect(first).toMatchObject({
      changed: true,
      homeDir: sshd.home,
      layout: { endpointDir: `${sshd.home}/.sremote`, tmpDir: `${sshd.home}/.sremote/tmp`, workDir: sshd.home },
      python: { executable: SYSTEM_PYTHON },
    });
    expect(first.operations.uploads).toBeGreaterThan(10);
    expect(r.stderr).toMatch(/^\[agent\] uploaded interpreter\.sh \(\d+ B\)$/m);
    expect(r.stderr).not.toContain(ESC);

    // The client finds the endpoint by itself: no --python, the venv's interpreter.
    const call = await sremote(["call", target, "math.sqrt", "2", ...flags]);
    expect(call).toMatchObject({ status: EXIT.ok, stdout: "1.4142135623730951\n" });
    const exe = await sremote(["call", target, "sys:executable.__str__", ...flags]);
    expect(exe.stdout).toBe(`${sshd.home}/.sremote/env/bin/python\n`);

    const again = await sremote(["install", target, ...flags, "--json"]);
    expect(again.status, again.stdout + again.stderr).toBe(EXIT.ok);
    const second: InstallResult = JSON.parse(again.stdout);
    expect(second.changed).toBe(false);
    expect(second.operations.uploads).toBe(0);
    expect(second.operations.deletes).toBe(0);
    expect(second.steps.filter((s) => s.changed)).toEqual([]);
    // Measured in this test, same machine and connection kind: a ratio, never a duration.
    expect(first.durationMs / second.durationMs).toBeGreaterThanOrEqual(5);
    expect((await sremote(["call", target, "math.sqrt", "2", ...flags])).stdout).toBe("1.4142135623730951\n");
  }, 180_000);

  it("doctor over SSH reports the venv's Python, the agent and the codec; the password never shows", async () => {
    const password = sshd.password as string;
    // Password login only: no key, no agent.
    const passwordEnv = { SREMOTE_CLI_TEST_PW: password, SSH_AUTH_SOCK: "" };
    const r = await sremote(["doctor", target, ...passwordFlags(sshd), "--json"], passwordEnv);
    expect(r.status, r.stdout + r.stderr).toBe(EXIT.ok);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      layout: { endpointDir: `${sshd.home}/.sremote`, source: "default" },
      agent: { upToDate: true, installedVersion: first.agentVersion },
      python: { python: first.python.version, executable: `${sshd.home}/.sremote/env/bin/python` },
      install: { complete: true, venv: true, owner: true, shared: false },
      permissions: { groupOrWorldWritable: [], tmpPrivate: true },
      problems: [],
    });
    expect(report.codec).toMatch(/^(c|pure)$/);
    const install = await sremote(["install", target, ...passwordFlags(sshd)], passwordEnv);
    expect(install.status).toBe(EXIT.ok);
    for (const out of [r.stdout, r.stderr, install.stdout, install.stderr]) expect(out).not.toContain(password);
  }, 120_000);

  it("a wrong host key or failed login: exit 3, the connect step named", async () => {
    const r = await sremote(["install", target, "--known-hosts", "/dev/null", "--ssh-config", "/dev/null", "--json"]);
    expect(r.status).toBe(EXIT.setup);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: "HOST_KEY_UNKNOWN", step: "connect" });
    expect(r.stderr).toMatch(/^\[connect\] failed: /m);
  }, 60_000);
});

describe.skipIf(!ready)("sremote install --shared, then sremote attach from another account", () => {
  let owner: SshdFixture;
  let user: SshdFixture;
  let parent: string;

  beforeAll(async () => {
    [owner, user] = await Promise.all([startSshd({ user: "sremote-cli-own" }), startSshd({ user: "sremote-cli-att" })]);
    // A group folder both accounts can reach; the owner creates the endpoint in it.
    parent = await mkdtemp("/tmp/sremote-cli-shared-");
    await chmod(parent, 0o755);
    execFileSync("chown", [`${owner.user}:`, parent]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([owner?.stop(), user?.stop()]);
    if (parent) await rm(parent, { recursive: true, force: true });
  });

  it("attaches the second account to the first one's shared endpoint; calls run there; uninstall only detaches", async () => {
    const endpoint = `${parent}/sremote`;
    const installed = await sremote([
      "install",
      sshTarget(owner),
      ...sshCliFlags(owner),
      "--python",
      SYSTEM_PYTHON,
      "--shared",
      "--dir",
      endpoint,
      "--json",
    ]);
    expect(installed.status, installed.stdout + installed.stderr).toBe(EXIT.ok);
    expect(JSON.parse(installed.stdout)).toMatchObject({ shared: true, layout: { endpointDir: endpoint } });

    const r = await sremote(["attach", sshTarget(user), endpoint, ...sshCliFlags(user), "--json"]);
    expect(r.status, r.stdout + r.stderr).toBe(EXIT.ok);
    const attached = JSON.parse(r.stdout);
    expect(attached).toMatchObject({
      ok: true,
      changed: true,
      layout: { endpointDir: endpoint, tmpDir: `${user.home}/.sremote/tmp` },
      location: { path: `${user.home}/.sremote/.location`, action: "written" },
      agent: { upToDate: true },
      warnings: [],
    });
    const exe = await sremote(["call", sshTarget(user), "sys:executable.__str__", ...sshCliFlags(user)]);
    expect(exe.stdout).toBe(`${endpoint}/env/bin/python\n`);
    const again = await sremote(["attach", sshTarget(user), endpoint, ...sshCliFlags(user)]);
    expect(again.status).toBe(EXIT.ok);
    expect(again.stdout).toMatch(new RegExp(`^already attached: ${sshTarget(user)} → ${endpoint}`));

    // Not the attached account's to remove: only its own .location and temp folder go.
    const gone = await sremote(["uninstall", sshTarget(user), ...sshCliFlags(user), "--yes", "--json"]);
    expect(gone.status, gone.stdout + gone.stderr).toBe(EXIT.ok);
    expect(JSON.parse(gone.stdout)).toMatchObject({ detached: true });
    expect(existsSync(`${endpoint}/env/bin/python`)).toBe(true);
    expect(existsSync(`${user.home}/.sremote/.location`)).toBe(false);
  }, 180_000);

  it("attaching to a folder that is no endpoint fails with exit 3 and a fix", async () => {
    const r = await sremote(["attach", sshTarget(user), `${parent}/nothing-here`, ...sshCliFlags(user), "--json"]);
    expect(r.status).toBe(EXIT.setup);
    const err = JSON.parse(r.stdout).error;
    expect(err).toMatchObject({ code: "NOT_SET_UP", step: "attach" });
    expect(err.fix).toBeTruthy();
  }, 60_000);
});
