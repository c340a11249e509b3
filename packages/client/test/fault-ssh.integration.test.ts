import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { sshConnector } from "@sremote/connector-ssh";
import type { Connector } from "@sremote/core";
import { describeUnless, SYSTEM_PYTHON } from "@sremote/testkit";
import {
  type SshdFixture,
  sshCliFlags,
  sshConnectorOptions,
  sshdMissing,
  sshTarget,
  startSshd,
} from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { faultTable, recordFaults } from "./soak-support.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Agents end with their clients (issue 15), over a real sshd: a CLI call whose whole process
// group is SIGKILLed mid-call, and a connection whose sshd process is killed mid-call, leave
// no agent and no process of the call on the server 15 s later, and no temp file once the
// next client has made its first call.

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const CLI = `${ROOT}packages/cli/src/bin.ts`;
/** How long the server may take to end what a dead client left running. */
const END_BOUND_MS = 15_000;
/** Every file name the file carrier (and the connectors' partial uploads) can leave. */
const CARRIER_FILES = ["*.req", "*.resp", "*.part", "*.sremote-tmp", ".*.sremote-*.tmp"];

function cli(args: string[]): ChildProcess {
  return spawn(TSX, ["--conditions=@sremote/source", CLI, ...args], {
    cwd: ROOT,
    detached: true, // a process group of its own, to SIGKILL as a whole
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function finished(child: ChildProcess): Promise<{ status: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** Waits (bounded) until the server runs a process whose command line contains `text`. */
async function waitForRemote(sshd: SshdFixture, text: string): Promise<void> {
  const end = Date.now() + 45_000;
  while (Date.now() < end) {
    if ((await sshd.userProcesses()).some((pid) => cmdline(pid).includes(text))) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no remote process running ${text} after 45 s`);
}

/** The account's processes still there `END_BOUND_MS` after `since` (polled; empty when all ended). */
async function survivors(sshd: SshdFixture, since: number): Promise<string[]> {
  let left: number[] = [];
  for (let i = 0; i < 1000; i++) {
    left = await sshd.userProcesses();
    if (left.length === 0 || Date.now() - since > END_BOUND_MS) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (left.length === 0)
    console.log(`fault-ssh: the server's processes of the call ended ${Date.now() - since} ms after the fault`);
  return left.map((pid) => `${pid} ${cmdline(pid)}`);
}

describeUnless(sshdMissing())("a client that dies mid-call over SSH leaves nothing on the server", () => {
  let sshd: SshdFixture;
  let flags: string[];
  let target: string;
  let files: Connector;

  beforeAll(async () => {
    sshd = await startSshd();
    target = sshTarget(sshd);
    flags = [...sshCliFlags(sshd), "--python", SYSTEM_PYTHON];
    files = sshConnector(sshConnectorOptions(sshd));
    // installs the agent in the account's default endpoint
    const first = await finished(cli(["call", target, "math.sqrt", "4", ...flags]));
    expect(first.stdout.trim()).toBe("2");
  });
  afterAll(async () => {
    await files?.close();
    await sshd?.stop();
  });

  /** Carrier files anywhere in the account's home, after the next client's first call. */
  async function carrierFilesAfterNextClient(mode: "session" | "file"): Promise<string[]> {
    const next = new RemoteClient({ connector: sshConnector(sshConnectorOptions(sshd)), python: SYSTEM_PYTHON, mode });
    try {
      expect((await next.call("math", "sqrt", [9])).value).toBe(3);
    } finally {
      await next.close();
    }
    const patterns = CARRIER_FILES.flatMap((p, i) => [...(i > 0 ? ["-o"] : []), "-name", p]);
    const r = await files.exec(["find", sshd.home, "-type", "f", "(", ...patterns, ")"]);
    return r.stdout.split("\n").filter((l) => l !== "");
  }

  /** Prints and records (for the suite's fault summary) what one fault left behind. */
  function report(fault: string, mode: string, outcome: string, left: string[], leftFiles: string[]): void {
    const row = {
      fault,
      connector: `ssh (${mode} carrier)`,
      injections: 1,
      outcomes: { [outcome]: 1 },
      leftoverProcesses: left.length,
      leftoverFiles: leftFiles.length,
    };
    console.log(faultTable(recordFaults("fault-ssh.integration.test.ts", [row])));
  }

  it.each(["session", "file"] as const)(
    "the CLI's whole process group SIGKILLed mid-call (%s carrier)",
    async (mode) => {
      const marker = `${300 + (mode === "file" ? 1 : 0)}`;
      const child = cli(["call", target, "subprocess.call", `["sleep","${marker}"]`, "--mode", mode, ...flags]);
      const done = finished(child);
      await waitForRemote(sshd, `sleep ${marker}`);
      process.kill(-(child.pid as number), "SIGKILL");
      const killedAt = Date.now();
      await done;
      const left = await survivors(sshd, killedAt);
      const leftFiles = await carrierFilesAfterNextClient(mode);
      report("client process group SIGKILLed", mode, "killed", left, leftFiles);
      expect(left).toEqual([]);
      expect(leftFiles).toEqual([]);
    },
  );

  it.each(["session", "file"] as const)(
    "the connection's sshd processes killed mid-call (%s carrier)",
    async (mode) => {
      const connector = sshConnector(sshConnectorOptions(sshd));
      const client = new RemoteClient({ connector, python: SYSTEM_PYTHON, mode });
      let outcome: { code?: string } | undefined;
      let left: string[] = [];
      try {
        const marker = `${310 + (mode === "file" ? 1 : 0)}`;
        const call = client.call("subprocess", "call", [["sleep", marker]]).catch((e: unknown) => e);
        await waitForRemote(sshd, `sleep ${marker}`);
        await sshd.killConnections();
        const killedAt = Date.now();
        outcome = (await call) as { code?: string };
        left = await survivors(sshd, killedAt);
      } finally {
        await client.close();
      }
      // the killed connection included the test's own file connector: a fresh one
      await files.close();
      files = sshConnector(sshConnectorOptions(sshd));
      const leftFiles = await carrierFilesAfterNextClient(mode);
      report("sshd killed mid-call", mode, outcome?.code ?? String(outcome), left, leftFiles);
      expect(outcome).toMatchObject({ code: expect.stringMatching(/CONNECTION_LOST|CLOSED/) });
      expect(left).toEqual([]);
      expect(leftFiles).toEqual([]);
    },
  );
});
