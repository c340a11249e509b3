import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { agentDir } from "@sremote/agent";
import { resolvePython } from "@sremote/cli";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { newtConnector } from "@sremote/connector-newt";
import { sfapiConnector } from "@sremote/connector-sfapi";
import { UsageError } from "@sremote/core";
import { DEFAULT_NEWT_USER, startNewtDouble } from "@sremote/testkit/newt-double";
import { startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { bulkReport, bulkRows } from "./bulk.js";
import { cliRows, cliVerdicts } from "./cli.js";
import { peerComparison, peerReport, writePeerSshConfig } from "./peers.js";
import { CALL, clientRows, FULL, floorAndSessionRows, type Plan, QUICK } from "./rows.js";
import { slurmRows } from "./slurm.js";
import { openSshBench, sshRows } from "./ssh.js";
import { type BenchRow, formatTable } from "./stats.js";

/** The MessagePack codec the agent would use with `python` ("c" or "pure"), as the agent itself says. */
async function codecOf(python: string): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)(python, ["-E", join(agentDir(), "sremote_agent"), "--info"], {
      timeout: 30_000,
    });
    return (JSON.parse(stdout) as { codec?: string }).codec;
  } catch {
    return undefined; // no such Python, or not one the agent runs on
  }
}

/**
 * The Python of the local rows when `--python` is not given: the first `python3` on PATH, or
 * `/usr/bin/python3` when that one has the msgpack C codec and the first has not. The
 * benchmark measures the carrier; the agent's pure-Python codec fallback costs ~10 µs more per
 * call, which would be measured instead (pass `--python` to measure a given interpreter).
 */
async function defaultPython(): Promise<{ python: string; codec: string }> {
  const first = await resolvePython();
  const firstCodec = await codecOf(first);
  if (firstCodec !== "c" && first !== "/usr/bin/python3" && (await codecOf("/usr/bin/python3")) === "c") {
    return { python: "/usr/bin/python3", codec: "c" };
  }
  return { python: first, codec: firstCodec ?? "unknown" };
}

/** The floor and both carriers over the local connector. */
async function localRows(python: string, plan: Plan): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const local = localConnector();
  const tmpDir = await mkdtemp(join(tmpdir(), "sremote-bench-"));
  try {
    const client = new RemoteClient({
      connector: local,
      python,
      autoInstallAgent: false,
      closeConnector: false,
      layout: { endpointDir: agentDir(), tmpDir, workDir: tmpDir },
    });
    try {
      rows.push(...(await floorAndSessionRows(local, "local", python, client, plan)));
      rows.push(...(await clientRows(client, "local", "file", plan)));
    } finally {
      await client.close();
    }
  } finally {
    await local.close();
    await rm(tmpDir, { recursive: true, force: true });
  }

  return rows;
}

/** The file carrier over NEWT, against the NEWT double (real HTTP on loopback, real processes). */
async function newtRows(python: string, plan: Plan): Promise<BenchRow[]> {
  process.stderr.write("benchmark: NEWT connector against the NEWT double\n");
  const double = await startNewtDouble();
  const home = double.homeDir(DEFAULT_NEWT_USER.username);
  const client = new RemoteClient({
    connector: newtConnector({
      machine: "cori",
      baseUrl: double.baseUrl,
      credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
    }),
    python,
    mode: "file",
    autoInstallAgent: false,
    layout: { endpointDir: agentDir(), tmpDir: join(home, ".sremote", "tmp"), workDir: home },
  });
  try {
    return await clientRows(client, "newt", "file", plan);
  } finally {
    await client.close();
    await double.close();
  }
}

/**
 * The file carrier over the Superfacility API, against the SFAPI double with no task delay
 * (real HTTP on loopback, real processes), and the HTTP requests one call costs (issue 13's
 * target: at most 5), counted from the double's request log over the 1-in-flight row.
 */
async function sfapiRows(python: string, plan: Plan): Promise<{ rows: BenchRow[]; requestsPerCall: number }> {
  process.stderr.write("benchmark: Superfacility API connector against the SFAPI double\n");
  const double = await startSfapiDouble({ machines: ["perlmutter"], taskDelayMs: 0 });
  const home = double.homeDir();
  const client = new RemoteClient({
    connector: sfapiConnector({
      machine: "perlmutter",
      apiUrl: double.baseUrl,
      tokenUrl: double.tokenUrl,
      keyFile: await double.writeKeyFile(double.clients[0]!.clientId, "pem"),
    }),
    python,
    mode: "file",
    autoInstallAgent: false,
    layout: { endpointDir: agentDir(), tmpDir: join(home, ".sremote", "tmp"), workDir: home },
  });
  try {
    await client.call(CALL.module, CALL.function, CALL.args); // token, temp folder
    const before = double.requestLog.length;
    const calls = 10;
    for (let i = 0; i < calls; i++) await client.call(CALL.module, CALL.function, CALL.args);
    const requestsPerCall = (double.requestLog.length - before) / calls;
    const rows = await clientRows(client, "sfapi", "file", plan);
    return { rows, requestsPerCall };
  } finally {
    await client.close();
    await double.close();
  }
}

/** Ratios against the floor and the targets the project holds itself to. */
function verdicts(rows: BenchRow[], localPinned: boolean): string[] {
  const out: string[] = [];
  for (const connector of new Set(rows.map((r) => r.connector))) {
    const find = (name: string, inFlight: number) =>
      rows.find((r) => r.connector === connector && r.name === name && r.inFlight === inFlight);
    const floor1 = find("floor", 1);
    const session1 = find("session", 1);
    const floor64 = find("floor", 64);
    const session64 = find("session", 64);
    if (floor1 && session1) {
      const ratio = session1.medianMs / floor1.medianMs;
      const limit = connector === "local" ? 2 : 1.5;
      out.push(
        `${connector}: session median / floor median at 1 in flight = ${ratio.toFixed(2)} (target ≤ ${limit}) ${ratio <= limit ? "✓" : "✗"}`,
      );
      if (connector === "local" && !localPinned) {
        out.push(
          "local: unpinned, the scheduler may put floor and session on different CPU placements (docs/performance.md); --pin 0 compares them under the same one",
        );
      }
    }
    if (floor64 && session64) {
      const share = session64.callsPerSec / floor64.callsPerSec;
      out.push(
        `${connector}: session calls/s / floor calls/s at 64 in flight = ${share.toFixed(2)}${connector === "local" ? "" : ` (target ≥ 0.5) ${share >= 0.5 ? "✓" : "✗"}`}`,
      );
    }
    const file1 = find("file", 1);
    const seed1 = find("seed-protocol", 1);
    if (file1 && seed1) {
      const speedup = seed1.medianMs / file1.medianMs;
      out.push(
        `${connector}: file carrier is ${speedup.toFixed(1)}× faster than the seed's protocol (target ≥ 40, issue 16) ${speedup >= 40 ? "✓" : "✗"}`,
      );
    }
    if (file1 && session1) {
      out.push(
        `${connector}: file carrier median / session median = ${(file1.medianMs / session1.medianMs).toFixed(1)}× (the file carrier starts Python per call)`,
      );
    }
  }
  return out;
}

/**
 * `--pin CPU`: runs the benchmark again under `taskset -c CPU`, so that Node, the agents, the
 * floor and a private sshd share one CPU. On a small VM, whether two processes share a CPU
 * or wake each other across CPUs changes a round trip by tens of µs from run to run
 * (docs/performance.md); pinned, floor and session are measured under the same placement.
 */
function pinAndRerun(cpu: string, argv: string[]): number {
  checkCpuList(cpu);
  const script = process.argv[1] as string;
  const r = spawnSync("taskset", ["-c", cpu, process.execPath, ...process.execArgv, script, ...argv], {
    stdio: "inherit",
    env: { ...process.env, SREMOTE_BENCH_PINNED: cpu },
  });
  if (r.error) throw new UsageError(`--pin needs taskset (util-linux): ${r.error.message}`);
  return r.status ?? 1;
}

function checkCpuList(cpu: string): void {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(cpu))
    throw new UsageError(`--pin expects a CPU list like 0 or 0-1, got ${cpu}`);
}

/**
 * The local rows in a child benchmark pinned with `taskset -c CPU` (docs/performance.md:
 * local ratios compare programs only under one CPU placement), while the rest of the run —
 * SSH rows, peers — stays unpinned. Undefined when taskset is missing.
 */
async function pinnedLocalRows(cpu: string, python: string, quick: boolean): Promise<BenchRow[] | undefined> {
  checkCpuList(cpu);
  const dir = await mkdtemp(join(tmpdir(), "sremote-bench-pinned-"));
  try {
    const json = join(dir, "rows.json");
    const script = process.argv[1] as string;
    const args = ["--local-only", "--python", python, "--json", json, ...(quick ? ["--quick"] : [])];
    const r = spawnSync("taskset", ["-c", cpu, process.execPath, ...process.execArgv, script, ...args], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, SREMOTE_BENCH_PINNED: cpu },
    });
    if (r.error) {
      process.stderr.write(`benchmark: no taskset (${r.error.message}): local rows unpinned\n`);
      return undefined;
    }
    if (r.status !== 0) throw new Error(`the pinned local benchmark failed (exit ${r.status})`);
    return JSON.parse(await readFile(json, "utf8")) as BenchRow[];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench -- [--quick] [--json FILE] [--ssh auto|ssh://…] [--pin CPU] [--peers] [--cli] [--bulk] [--slurm] [--all]`.
 *
 * Sections: the local, NEWT and SFAPI rows (by default), the SSH rows (`--ssh`), the peer
 * comparison (`--peers`, over `--ssh` or a private sshd), CLI start-up (`--cli`, with a
 * `call ssh://` row when `--ssh` is given), bulk data (`--bulk`, `--bulk-sizes 8,64` MiB,
 * over SSH too with `--ssh`), compute nodes through a real local Slurm cluster (`--slurm`, root:
 * first result through `srun`, `map` over 1 and 3 nodes). When `--peers`, `--cli`, `--bulk` or
 * `--slurm` is asked for, the default
 * sections run only with `--all`. Local rows run pinned to CPU 0 (`--pin-local CPU`,
 * `--pin-local none` to leave them unpinned); everything else runs unpinned unless `--pin`.
 */
export async function runBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "string" },
      quick: { type: "boolean", default: false },
      python: { type: "string" },
      "no-newt": { type: "boolean", default: false },
      "no-sfapi": { type: "boolean", default: false },
      "no-local": { type: "boolean", default: false },
      "local-only": { type: "boolean", default: false },
      ssh: { type: "string" },
      identity: { type: "string" },
      "known-hosts": { type: "string" },
      "ssh-python": { type: "string", default: "/usr/bin/python3" },
      "peer-python": { type: "string", default: "/usr/bin/python3" },
      pin: { type: "string" },
      "pin-local": { type: "string", default: "0" },
      peers: { type: "boolean", default: false },
      cli: { type: "boolean", default: false },
      bulk: { type: "boolean", default: false },
      slurm: { type: "boolean", default: false },
      "bulk-sizes": { type: "string" },
      "cli-compare": { type: "string" },
      "cli-runs": { type: "string" },
      all: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.pin !== undefined && process.env.SREMOTE_BENCH_PINNED !== values.pin) return pinAndRerun(values.pin, argv);
  const plan = values.quick ? QUICK : FULL;
  const { python, codec } =
    values.python !== undefined
      ? { python: values.python, codec: (await codecOf(values.python)) ?? "unknown" }
      : await defaultPython();
  if (values["local-only"]) {
    const rows = await localRows(python, plan);
    if (values.json) await writeFile(values.json, `${JSON.stringify(rows, null, 2)}\n`);
    process.stdout.write(`${formatTable(rows)}\n`);
    return 0;
  }
  const focused = values.peers || values.cli || values.bulk || values.slurm;
  const cliRuns = Number(values["cli-runs"] ?? (values.quick ? 5 : 15));
  const bulkSizes = (values["bulk-sizes"] ?? (values.quick ? "8,64" : "8,64,255.99")).split(",").map(Number);
  const classic = !focused || values.all;
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const reports: string[] = [];
  const pinned = process.env.SREMOTE_BENCH_PINNED;
  let localPinned = pinned !== undefined;
  if (pinned !== undefined) process.stderr.write(`benchmark: pinned to CPU ${pinned} (with every process it starts)\n`);
  process.stderr.write(`benchmark: local connector, python ${python} (agent codec: ${codec})\n`);

  if (classic && !values["no-local"]) {
    const pinLocal = values["pin-local"];
    const pinnedRows =
      pinned === undefined && pinLocal !== "none" ? await pinnedLocalRows(pinLocal, python, values.quick) : undefined;
    localPinned ||= pinnedRows !== undefined;
    if (pinnedRows) {
      process.stderr.write(`benchmark: local rows ran pinned to CPU ${pinLocal}\n`);
      notes.push(`local: rows measured pinned to CPU ${pinLocal} (--pin-local none: unpinned)`);
    }
    rows.push(...(pinnedRows ?? (await localRows(python, plan))));
  }
  if (classic && !values["no-newt"]) rows.push(...(await newtRows(python, plan)));
  if (classic && !values["no-sfapi"]) {
    const sfapi = await sfapiRows(python, plan);
    rows.push(...sfapi.rows);
    notes.push(
      `sfapi: HTTP requests per file-carrier call = ${sfapi.requestsPerCall.toFixed(1)} (target ≤ 5) ${sfapi.requestsPerCall <= 5 ? "✓" : "✗"}`,
    );
  }
  const sshTarget = values.ssh ?? (values.peers ? "auto" : undefined);
  if (sshTarget !== undefined) {
    const ssh = await openSshBench({ target: sshTarget, identity: values.identity, knownHosts: values["known-hosts"] });
    const scratch = await mkdtemp(join(tmpdir(), "sremote-bench-ssh-"));
    try {
      if (values.ssh !== undefined && classic) rows.push(...(await sshRows(ssh, values["ssh-python"], plan)));
      if (values.cli) {
        const cli = await cliRows({ runs: cliRuns, ssh: ssh.facts, compareBin: values["cli-compare"] });
        rows.push(...cli);
        notes.push(...cliVerdicts(cli));
      }
      if (values.bulk) {
        const bulk = await bulkRows({
          python,
          sizesMiB: bulkSizes,
          runs: values.quick ? 1 : 3,
          ssh: { facts: ssh.facts, layout: ssh.layout, python: values["ssh-python"] },
        });
        rows.push(...bulk.rows);
        reports.push(bulkReport(bulk.results));
      }
      if (values.peers) {
        const peers = await peerComparison({
          facts: ssh.facts,
          layout: ssh.layout,
          remotePython: values["ssh-python"],
          localPython: values["peer-python"],
          sshConfig: await writePeerSshConfig(scratch, ssh.facts),
          plan,
        });
        rows.push(...peers.rows);
        reports.push(peerReport(peers.results));
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
      await ssh.close();
    }
  }

  if (values.bulk && sshTarget === undefined) {
    const bulk = await bulkRows({ python, sizesMiB: bulkSizes, runs: values.quick ? 1 : 3 });
    rows.push(...bulk.rows);
    reports.push(bulkReport(bulk.results));
  }
  if (values.cli && sshTarget === undefined) {
    const cli = await cliRows({ runs: cliRuns, compareBin: values["cli-compare"] });
    rows.push(...cli);
    notes.push(...cliVerdicts(cli));
  }

  if (values.slurm) {
    const slurm = await slurmRows({ python, quick: values.quick });
    if (typeof slurm === "string") notes.push(`slurm: skipped — ${slurm}`);
    else rows.push(...slurm);
  }

  const parts: string[] = [];
  if (rows.length > 0) parts.push(formatTable(rows));
  const lines = [...verdicts(rows, localPinned), ...notes];
  if (lines.length > 0) parts.push(lines.join("\n"));
  parts.push(...reports);
  process.stdout.write(`${parts.join("\n\n")}\n`);
  if (values.json) await writeFile(values.json, `${JSON.stringify(rows, null, 2)}\n`);
  return 0;
}
