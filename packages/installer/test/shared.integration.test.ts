import type { Connector, ExecOptions, OperationOptions, PutFileOptions } from "@sremote/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { attach, discover, doctor, InstallError, install, uninstall } from "../src/index.js";
import { groupOrWorldWritable, pyprojectPackage, run, SYSTEM_PYTHON, tempDir } from "./helpers.js";
import { type SshAccount, sshAccount, sshReady } from "./ssh-accounts.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Two real accounts on a real sshd each: A installs a shared endpoint, B attaches to it.

/** Passes everything to `inner` and records the paths of the files written through it. */
function recording(inner: Connector): Connector & { written: string[] } {
  const written: string[] = [];
  const spawn = inner.spawn?.bind(inner);
  return {
    name: inner.name,
    capabilities: inner.capabilities,
    written,
    connect: (o?: OperationOptions) => inner.connect(o),
    close: () => inner.close(),
    status: (o?: OperationOptions) => inner.status(o),
    homeDir: (o?: OperationOptions) => inner.homeDir(o),
    putFile: (path: string, data: Uint8Array, o?: PutFileOptions) => {
      written.push(path);
      return inner.putFile(path, data, o);
    },
    getFile: (path: string, o?: OperationOptions) => inner.getFile(path, o),
    deleteFile: (path: string, o?: OperationOptions) => inner.deleteFile(path, o),
    exec: (argv: readonly string[], o?: ExecOptions) => inner.exec(argv, o),
    ...(spawn ? { spawn } : {}),
    [Symbol.asyncDispose]: () => inner.close(),
  };
}

/** Shell startup files of the two accounts: a banner on stdout (and stderr), A's group umask. */
const BASHRC_A = 'echo "Welcome, A"\necho "module note for A" >&2\numask 002\n';
const BASHRC_B = 'echo "Welcome to the cluster, B"\n';

/** A command's stdout without the banner the account's .bashrc printed first. */
const withoutBanner = (stdout: string) => stdout.replace(/^Welcome[^\n]*\n/, "");

describe.skipIf(!sshReady)("a shared endpoint: A installs it, B attaches and calls through it", () => {
  let a: SshAccount;
  let b: SshAccount;
  let endpoint: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([sshAccount("sremote-inst-a"), sshAccount("sremote-inst-b")]);
    endpoint = `${a.home}/group/sremote`;
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it("A installs it: readable by all, writable by no one else; A's own temp folder stays private", async () => {
    const project = await tempDir("sharedpkg");
    try {
      await pyprojectPackage(project.path, "sharedpkg", "1.0", "shared");
      const r = await install(a.connector, {
        python: SYSTEM_PYTHON,
        dir: endpoint,
        shared: true,
        packages: [{ kind: "local", path: project.path }],
      });
      expect(r.shared).toBe(true);
      expect(r.layout).toEqual({ endpointDir: endpoint, tmpDir: `${a.home}/.sremote/tmp`, workDir: a.home });
      expect(r.packages.map((p) => p.distributions)).toEqual([[{ name: "sharedpkg", version: "1.0" }]]);
    } finally {
      await project.remove();
    }

    // Checked as root on this machine: nothing in the endpoint is group- or world-writable.
    expect(await groupOrWorldWritable(endpoint)).toEqual([]);
    // A group-friendly umask, as many HPC sites set it: A's own calls must not open the
    // endpoint up (Python would create __pycache__ folders 0775 in it). And a chatty
    // .bashrc, which runs for SSH commands too.
    await a.connector.putFile(`${a.home}/.bashrc`, new TextEncoder().encode(BASHRC_A));
    expect((await a.connector.exec(["sh", "-c", "umask"])).stdout).toBe("Welcome, A\n0002\n");
    expect(await a.call("math", "sqrt", [2])).toBeCloseTo(Math.SQRT2, 12);
    expect(await a.call("math", "sqrt", [2], { mode: "file" })).toBeCloseTo(Math.SQRT2, 12);
    expect(await groupOrWorldWritable(endpoint)).toEqual([]);
    const again = await install(a.connector, {});
    expect(again).toMatchObject({ changed: false, shared: true });
    expect(again.operations).toMatchObject({ uploads: 0, deletes: 0 });
    const report = await doctor(a.connector, { target: "ssh://a" });
    expect(report.install).toMatchObject({ complete: true, shared: true, owner: true });
    expect(report.problems).toEqual([]);
  }, 120_000);

  it("B attaches and calls through it with private temp files in B's own folder", async () => {
    const bTmp = `${b.home}/.sremote/tmp`;
    await b.connector.putFile(`${b.home}/.bashrc`, new TextEncoder().encode(BASHRC_B));
    const attached = await attach(b.connector, { dir: endpoint });
    expect(attached.layout).toEqual({ endpointDir: endpoint, tmpDir: bTmp, workDir: b.home });
    expect(attached.warnings).toEqual([]);
    expect(attached.agent.upToDate).toBe(true);
    expect(attached.location.action).toBe("written");
    const mode = await b.connector.exec(["stat", "-c", "%a %U", bTmp]);
    expect(withoutBanner(mode.stdout)).toBe(`700 ${b.user}\n`);

    // File carrier: every request file B's client writes lands in B's temp folder.
    const connector = recording(b.newConnector());
    const value = await b.call("math", "sqrt", [2], { connector, mode: "file" });
    expect(value).toBeCloseTo(Math.SQRT2, 12);
    expect(connector.written.length).toBeGreaterThan(0);
    for (const path of connector.written) expect(path.startsWith(`${bTmp}/`)).toBe(true);
    expect(connector.written.some((p) => p.startsWith(`${endpoint}/`) || p.startsWith(`${a.home}/`))).toBe(false);
    expect(withoutBanner((await b.connector.exec(["ls", "-A", bTmp])).stdout)).toBe("");

    // Session carrier: the agent runs as B, from A's venv, with B's temp and working folders.
    expect(await b.call("getpass", "getuser")).toBe(b.user);
    expect(await b.call("sys", "executable.__str__")).toBe(`${endpoint}/env/bin/python`);
    expect(await b.call("os", "getenv", ["SREMOTE_TMP"])).toBe(bTmp);
    expect(await b.call("os", "getcwd")).toBe(b.home);
    expect(await b.call("sharedpkg", "hello", ["B"])).toBe("sharedpkg says hello to B");

    const report = await doctor(b.connector, { target: "ssh://b" });
    expect(report.install).toMatchObject({ complete: true, shared: true, owner: false });
    expect(report.permissions).toEqual({ groupOrWorldWritable: [], tmpPrivate: true });
    expect(report.problems).toEqual([]);
  }, 120_000);

  it("B cannot write anything in A's endpoint, nor read A's temp folder", async () => {
    const bc = b.connector;
    const denied = { code: "PERMISSION_DENIED" };
    await expect(bc.putFile(`${endpoint}/planted.py`, new TextEncoder().encode("x = 1\n"))).rejects.toMatchObject(
      denied,
    );
    await expect(bc.putFile(`${endpoint}/interpreter.sh`, new TextEncoder().encode("exit 0\n"))).rejects.toMatchObject(
      denied,
    );
    const siteOut = (
      await bc.exec([`${endpoint}/env/bin/python`, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    ).stdout;
    const site = withoutBanner(siteOut).trim();
    expect(site).toMatch(new RegExp(`^${endpoint}/env/lib/python3\\.\\d+/site-packages$`));
    await expect(bc.putFile(`${site}/planted.py`, new TextEncoder().encode("x = 1\n"))).rejects.toMatchObject(denied);
    for (const argv of [
      ["touch", `${endpoint}/planted`],
      ["touch", `${endpoint}/install-complete`],
      ["mkdir", `${endpoint}/planted`],
      ["mkdir", `${endpoint}/env/planted`],
      ["rm", "-f", `${endpoint}/python`],
      ["ls", "-A", `${a.home}/.sremote/tmp`],
    ]) {
      const r = await bc.exec(argv);
      expect({ argv, failed: r.exitCode !== 0, denied: r.stderr.includes("Permission denied") }).toEqual({
        argv,
        failed: true,
        denied: true,
      });
    }
    // Through the deleteFile primitive too.
    await expect(bc.deleteFile(`${endpoint}/agent-manifest.json`)).rejects.toMatchObject(denied);
    // Nor through the installer: B installing into A's endpoint is refused before any change.
    const before = await run("find", [endpoint, "-newer", `${endpoint}/install-complete`]);
    const err = await install(bc, { dir: endpoint, writeLocation: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect(err).toMatchObject({ code: "PERMISSION_DENIED", step: "folders" });
    expect((err as Error).message).toContain(`the endpoint folder ${endpoint} is not writable by ${b.user}`);
    expect((await run("find", [endpoint, "-newer", `${endpoint}/install-complete`])).stdout).toBe(before.stdout);
    expect(await groupOrWorldWritable(endpoint)).toEqual([]);
    // Still intact and usable by both.
    expect(await a.call("math", "sqrt", [16])).toBe(4);
    expect(await b.call("math", "sqrt", [16])).toBe(4);
  }, 60_000);

  it("attaching to an endpoint that is not shared says so", async () => {
    const privateDir = `${a.home}/private/sremote`;
    await install(a.connector, { dir: privateDir, writeLocation: false, venv: false });
    const err = await attach(b.connector, { dir: privateDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstallError);
    expect(err).toMatchObject({ code: "NOT_SET_UP", step: "attach" });
    expect((err as Error).message).toContain(`${privateDir} does not exist or cannot be reached by this account`);
    expect((err as InstallError).fix).toContain(`ls -ld ${privateDir}`);
  }, 60_000);

  it("B's uninstall only detaches B; A's endpoint stays", async () => {
    const r = await uninstall(b.connector, {});
    expect(r.detached).toBe(true);
    expect(r.removed).toEqual(expect.arrayContaining([`${b.home}/.sremote/.location`, `${b.home}/.sremote/tmp`]));
    expect(r.kept).toContain(endpoint);
    expect((await discover(a.connector)).complete).toBe(true);
    expect(await a.call("math", "sqrt", [25])).toBe(5);
  }, 60_000);
});
