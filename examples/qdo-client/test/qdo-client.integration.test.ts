import { execFile, execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describeUnless } from "@sremote/testkit";
import { DEFAULT_NEWT_USER, startNewtDouble } from "@sremote/testkit/newt-double";
import { type SshdFixture, sshCliFlags, sshdMissing, sshTarget, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const exampleDir = fileURLToPath(new URL("..", import.meta.url));

/** Runs the example as users do (tsx, from source) in a child process. */
function runExample(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--conditions=@sremote/source", "src/main.ts", ...args],
      { cwd: exampleDir, env, timeout: 110_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const status = err && typeof err.code === "number" ? err.code : err ? null : 0;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

/** The line of a flow, by its label. */
const lineOf = (stdout: string, label: string) => stdout.split("\n").find((l) => l.includes(` ${label}: `)) ?? "";

/** What every run without QDO must show: the stand-in error kinds and the environment read back. */
function expectNonQdoFlows(stdout: string, remoteHome: string): void {
  expect(lineOf(stdout, "unknown module (stand-in, no QDO)")).toMatch(
    /^ok {3}.*no_such_module_xyz\.valid_queue_name.*RemoteExecError \[REMOTE_EXEC\] kind=import ModuleNotFoundError/,
  );
  expect(lineOf(stdout, "unknown module, required (stand-in, no QDO)")).toMatch(
    /^ok {3}.*RemoteModulesError \[MODULES\].*no_such_module_xyz: not installed/,
  );
  expect(lineOf(stdout, "unknown function (stand-in, no QDO)")).toMatch(
    /^ok {3}.*math\.no_such_function.*RemoteExecError \[REMOTE_EXEC\] kind=attribute AttributeError/,
  );
  expect(lineOf(stdout, "env myVar")).toMatch(/^ok {3}.*myVar="myValue"/);
  expect(lineOf(stdout, "envDefault HOME")).toMatch(/^ok {3}/);
  expect(lineOf(stdout, "envDefault HOME")).toContain(`HOME=${JSON.stringify(remoteHome)} (kept`);
  expect(lineOf(stdout, "envDefault HOME_B")).toMatch(/^ok {3}.*HOME_B="\/sremote\/registered\/home_b" \(set/);
  expect(lineOf(stdout, "PATH addition")).toMatch(/^ok {3}.*PATH=".*:\/opt" \(\/opt present\)/);
  // The QDO flows are skipped, never run against a stand-in QDO.
  for (const label of ["valid_queue_name, list", "valid_queue_name, dict", "remote exception"]) {
    expect(lineOf(stdout, label)).toMatch(/^skip .*needs QDO$/);
  }
  expect(stdout).not.toMatch(/^FAIL/m);
  expect(stdout).toMatch(/^\s*\d+\s+env myVar\s+ok\s+\d+\.\d\s+os\.getenv\("myVar"\)$/m);
  expect(stdout).toMatch(/^10 ok, 0 unexpected, 3 skipped \(need QDO\)$/m);
}

describe("qdo-client example, no QDO source reachable", () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "sremote-qdo-client-"));
  });
  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("says plainly it cannot reach the QDO source, runs every other flow, and exits 0 (local:<dir>)", async () => {
    const missing = `file://${scratch}/no-such-repo/qdo.git`;
    const r = await runExample([`local:${scratch}/endpoint`, "--qdo-url", missing]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const cannot = r.stdout.split("\n").filter((l) => l.includes("cannot reach"));
    expect(cannot).toEqual([
      `QDO: cannot reach ${missing}: fatal: '${scratch}/no-such-repo/qdo.git' does not appear to be a git repository; skipping the QDO flows`,
    ]);
    // The installer's own progress, as plain lines.
    expect(r.stdout).toMatch(/^install {2}sources {5}failed: git cannot read the repository/m);
    expectNonQdoFlows(r.stdout, process.env.HOME ?? homedir());
  });

  it("installs into ~/.sremote for local: without a folder, never into the packaged agent's folder", async () => {
    const home = join(scratch, "home");
    await mkdir(home);
    const missing = `file://${scratch}/no-such-repo/qdo.git`;
    const r = await runExample(["local:", "--qdo-url", missing], { ...process.env, HOME: home });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^install {2}layout {6}done: endpoint ${home}/\\.sremote `, "m"));
    expect(r.stdout).toMatch(/^QDO: cannot reach .*; skipping the QDO flows$/m);
    expectNonQdoFlows(r.stdout, home);
    // The source was checked before anything was created.
    await expect(stat(join(home, ".sremote"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("exits 1 when the source is reachable but the install fails (a ref it lacks), still running the rest", async () => {
    // A real repository that has no Python project and no branch "no-such-ref": nothing is installed.
    const repo = join(scratch, "repo");
    await mkdir(repo);
    await writeFile(join(repo, "README"), "not QDO\n");
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.org", ...args], { cwd: repo });
    git("init", "-q", "-b", "main");
    git("add", "README");
    git("commit", "-q", "-m", "init");
    const r = await runExample([
      `local:${scratch}/endpoint-ref`,
      "--qdo-url",
      `file://${repo}`,
      "--qdo-ref",
      "no-such-ref",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/^QDO: install failed: .*has no branch or tag "no-such-ref"; skipping the QDO flows$/m);
    expect(r.stdout).toMatch(/^ {5}fix: use one of: main/m);
    expect(r.stdout).not.toContain("cannot reach");
    expect(r.stdout).toMatch(/^10 ok, 0 unexpected, 3 skipped \(need QDO\); the QDO install failed$/m);
  });

  it("prints its help and rejects a missing target with status 2", async () => {
    const help = await runExample(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--qdo-url URL");
    expect(help.stdout).toContain("https://bitbucket.org/berkeleylab/qdo.git");
    const bad = await runExample([]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("a target is needed");
  });
});

describeUnless(sshdMissing())("qdo-client example over SSH (private sshd)", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd();
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
  }, 60_000);

  it("runs the non-QDO flows on the remote account: its own HOME is kept", async () => {
    const missing = "file:///nonexistent/sremote-test/qdo.git";
    const r = await runExample([
      sshTarget(sshd),
      ...sshCliFlags(sshd),
      "--python",
      "/usr/bin/python3",
      "--qdo-url",
      missing,
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^QDO: cannot reach ${missing}: .+; skipping the QDO flows$`, "m"));
    expect(r.stdout).toContain("target   ssh://");
    expectNonQdoFlows(r.stdout, sshd.home);
  });
});

describe("qdo-client example over NEWT (the NEWT double: real HTTP, real processes)", () => {
  it("takes the credentials from SREMOTE_NEWT_USER/PASSWORD and runs the non-QDO flows with the file carrier", async () => {
    const double = await startNewtDouble();
    try {
      const missing = "file:///nonexistent/sremote-test/qdo.git";
      const r = await runExample(
        ["newt://cori", "--newt-url", double.baseUrl, "--python", "/usr/bin/python3", "--qdo-url", missing],
        {
          ...process.env,
          SREMOTE_NEWT_USER: DEFAULT_NEWT_USER.username,
          SREMOTE_NEWT_PASSWORD: DEFAULT_NEWT_USER.password,
        },
      );
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^QDO: cannot reach ${missing}: .+; skipping the QDO flows$`, "m"));
      expect(r.stdout).toMatch(/^carrier {2}file /m);
      expectNonQdoFlows(r.stdout, double.homeDir(DEFAULT_NEWT_USER.username));
    } finally {
      await double.close();
    }
  });
});

describe("qdo-client example over the Superfacility API (the SFAPI double: real HTTP, real processes)", () => {
  it("takes the client key from --key-file and runs the non-QDO flows with the file carrier", async () => {
    const { startSfapiDouble } = await import("@sremote/testkit/sfapi-double");
    const double = await startSfapiDouble({ machines: ["perlmutter"] });
    try {
      const keyFile = await double.writeKeyFile(double.clients[0]!.clientId, "pem");
      const missing = "file:///nonexistent/sremote-test/qdo.git";
      const r = await runExample([
        "sfapi://perlmutter",
        ...["--sfapi-url", double.baseUrl, "--token-url", double.tokenUrl, "--key-file", keyFile],
        ...["--python", "/usr/bin/python3", "--qdo-url", missing],
      ]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^QDO: cannot reach ${missing}: .+; skipping the QDO flows$`, "m"));
      expect(r.stdout).toMatch(/^carrier {2}file /m);
      expectNonQdoFlows(r.stdout, double.homeDir());
    } finally {
      await double.close();
    }
  });
});
