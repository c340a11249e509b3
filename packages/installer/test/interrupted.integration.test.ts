import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { discover, install, MARKER_FILE } from "../src/index.js";
import type { ChildConfig } from "./fixtures/install-over-ssh.js";
import { eventLog, run, SYSTEM_PYTHON, seedStyleRepo } from "./helpers.js";
import { type SshAccount, sshAccount, sshReady } from "./ssh-accounts.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// An install killed (SIGKILL, no cleanup) mid-way over SSH, then run again to completion.

const CHILD = fileURLToPath(new URL("./fixtures/install-over-ssh.ts", import.meta.url));
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));

interface Child {
  process: ChildProcess;
  /** Progress events (and the final `result`/`error` line) printed so far. */
  events: { type: string; step?: string }[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts an install in its own Node process (running from source, like the other tests). */
function startChild(config: ChildConfig): Child {
  const child = spawn(
    process.execPath,
    ["--conditions=@sremote/source", "--import", "tsx", CHILD, JSON.stringify(config)],
    {
      cwd: PACKAGE_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const events: Child["events"] = [];
  let partial = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as Child["events"][number]);
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  void exited.then(({ signal }) => {
    if (signal === null && stderr.trim()) process.stderr.write(`install child: ${stderr}\n`);
  });
  return { process: child, events, exited };
}

/** Waits until `ready()` holds; fails with `what` after 60 s or when the child ends first. */
async function until(child: Child, what: string, ready: () => boolean): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    if (ready()) return;
    if (child.process.exitCode !== null) {
      throw new Error(`the install ended before ${what}: ${JSON.stringify(child.events.slice(-3))}`);
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Files and folders the account owns directly in /tmp and /var/tmp. */
async function tempFilesOf(user: string): Promise<string[]> {
  const { stdout } = await run("find", ["/tmp", "/var/tmp", "-maxdepth", "1", "-user", user]);
  return stdout.split("\n").filter(Boolean);
}

describe.skipIf(!sshReady)("an install killed mid-way is finished by the next one", () => {
  let a: SshAccount;

  beforeAll(async () => {
    a = await sshAccount("sremote-inst-kill");
  }, 60_000);
  afterAll(async () => {
    await a?.close();
  });

  it("SIGKILL while the venv is created, then while a package builds; the third install completes cleanly", async () => {
    const repo = await seedStyleRepo(join(a.shared, "repo"), "killpkg");
    await run("chmod", ["-R", "go+rX", a.shared]);
    // The repository is root's: the account trusts it, as git's own error tells it to.
    await a.connector.exec(["git", "config", "--global", "--add", "safe.directory", `${repo}/.git`]);
    const endpoint = `${a.home}/.sremote`;
    const tmp = `${endpoint}/tmp`;
    const packages = [{ kind: "git" as const, url: `file://${repo}@release` }];
    const config: ChildConfig = {
      ssh: {
        host: a.sshd.host,
        port: a.sshd.port,
        username: a.user,
        privateKeyPath: a.sshd.privateKeyPath,
        knownHostsPath: a.sshd.knownHostsPath,
      },
      options: { python: SYSTEM_PYTHON, packages },
    };
    const started = (child: Child, step: string) => () =>
      child.events.some((e) => e.type === "step-start" && e.step === step);

    // 1. Killed while `python -m venv` runs: the venv is half made.
    const first = startChild(config);
    await until(first, "the venv step", started(first, "venv"));
    await until(first, "the venv's python", () => existsSync(`${endpoint}/env/bin/python`));
    first.process.kill("SIGKILL");
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(first.events.some((e) => e.type === "result")).toBe(false);
    expect(first.events.some((e) => e.type === "step-end" && e.step === "venv")).toBe(false);
    expect(existsSync(`${endpoint}/${MARKER_FILE}`)).toBe(false);

    // 2. Killed while the package builds: its build folder is in the temp folder.
    const second = startChild(config);
    await until(second, "the package step", started(second, "package"));
    await until(second, "a build folder", () => readdirSync(tmp).some((n) => n.startsWith("install-")));
    second.process.kill("SIGKILL");
    expect(await second.exited).toEqual({ code: null, signal: "SIGKILL" });
    expect(second.events.some((e) => e.type === "result")).toBe(false);
    expect(second.events.some((e) => e.type === "step-end" && e.step === "package")).toBe(false);
    expect((await discover(a.connector)).complete).toBe(false);

    // 3. The next install repairs everything and completes.
    const third = await install(a.connector, { packages });
    expect(third.changed).toBe(true);
    expect(third.steps.find((s) => s.step === "complete")?.outcome).toBe("done");
    expect(third.packages.map((p) => p.distributions)).toEqual([[{ name: "killpkg", version: "1.0" }]]);
    expect(existsSync(`${endpoint}/${MARKER_FILE}`)).toBe(true);
    expect(await discover(a.connector)).toMatchObject({ complete: true });
    expect(await a.call("killpkg", "VALUE.__str__")).toBe("release");
    expect(await a.call("math", "sqrt", [2])).toBeCloseTo(Math.SQRT2, 12);
    // Nothing of the killed runs is left in the temp folder, nor in the machine's.
    expect(readdirSync(tmp)).toEqual([]);
    expect(await tempFilesOf(a.user)).toEqual([]);

    // And the endpoint is now steady: a fourth install changes nothing.
    const fourth = await install(a.connector, { packages });
    expect(fourth.changed).toBe(false);
    expect(fourth.operations).toMatchObject({ uploads: 0, deletes: 0 });
  }, 120_000);

  it("an install aborted (signal) while ensurepip unpacks leaves nothing in any temp folder", async () => {
    const dir = `${a.home}/aborted`;
    const tmp = `${dir}/tmp`;
    const controller = new AbortController();
    const log = eventLog();
    const running = install(a.connector, {
      dir,
      writeLocation: false,
      signal: controller.signal,
      onProgress: log.listener,
    }).catch((e: unknown) => e);
    // ensurepip unpacks pip into TMPDIR, which the installer points into its temp folder.
    const scratch = () => {
      const build = existsSync(tmp) ? readdirSync(tmp).find((n) => n.startsWith("install-")) : undefined;
      return build ? readdirSync(`${tmp}/${build}`).length > 0 : false;
    };
    // One look decides: ensurepip may empty the folder again between two looks.
    const end = Date.now() + 60_000;
    let unpacking = scratch();
    while (!unpacking && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 5));
      unpacking = scratch();
    }
    expect(unpacking).toBe(true);
    controller.abort();
    const err = await running;
    expect(err).toMatchObject({ code: "ABORTED" });
    expect(log.outcomes()).toContain("venv:failed");
    expect(readdirSync(dir)).not.toContain("env");
    expect(readdirSync(dir)).not.toContain(MARKER_FILE);
    expect(readdirSync(tmp)).toEqual([]);
    expect(await tempFilesOf(a.user)).toEqual([]);

    const again = await install(a.connector, { dir, writeLocation: false });
    expect(again.steps.find((s) => s.step === "venv")?.outcome).toBe("done");
    expect(readdirSync(dir)).toContain(MARKER_FILE);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);
});
