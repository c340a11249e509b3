import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { agentDir } from "@sremote/agent";
import { resolvePython } from "@sremote/cli";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { newtConnector } from "@sremote/connector-newt";
import type { Connector } from "@sremote/core";
import { encodeMessage } from "@sremote/protocol";
import { DEFAULT_NEWT_USER, startNewtDouble } from "@sremote/testkit/newt-double";
import { EchoFloor } from "./floor.js";
import { type BenchRow, formatTable, measure } from "./stats.js";

/** Sizes of one benchmark run; `--quick` shrinks them for smoke tests. */
interface Plan {
  sessionCount: number;
  fileCount: number;
  fileInFlight: number;
}

const FULL: Plan = { sessionCount: 3000, fileCount: 60, fileInFlight: 8 };
const QUICK: Plan = { sessionCount: 300, fileCount: 10, fileInFlight: 4 };

/** The request the benchmark sends: `math.sqrt(2)`, the same bytes the floor echoes. */
const CALL = { module: "math", function: "sqrt", args: [2] };

async function floorRows(connector: Connector, connectorName: string, python: string, plan: Plan): Promise<BenchRow[]> {
  const floor = await EchoFloor.start(connector, python);
  const payload = encodeMessage({ v: 1, kind: "call", id: "00000000-1", ...CALL });
  const rows: BenchRow[] = [];
  try {
    for (const inFlight of [1, 64]) {
      const m = await measure(() => floor.roundTrip(payload), { count: plan.sessionCount, inFlight, warmup: 100 });
      rows.push({ name: "floor", connector: connectorName, carrier: "floor", inFlight, ...m });
    }
  } finally {
    await floor.close();
  }
  return rows;
}

async function clientRows(
  client: RemoteClient,
  connectorName: string,
  carrier: "session" | "file",
  plan: Plan,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const op = () => client.call(CALL.module, CALL.function, CALL.args, { mode: carrier });
  const levels = carrier === "session" ? [1, 64] : [1, plan.fileInFlight];
  for (const inFlight of levels) {
    const count = carrier === "session" ? plan.sessionCount : plan.fileCount;
    const m = await measure(op, { count, inFlight, warmup: carrier === "session" ? 100 : 2 });
    rows.push({ name: carrier, connector: connectorName, carrier, inFlight, ...m });
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

/** Ratios against the floor and the targets the project holds itself to. */
function verdicts(rows: BenchRow[]): string[] {
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
    }
    if (floor64 && session64) {
      const share = session64.callsPerSec / floor64.callsPerSec;
      out.push(
        `${connector}: session calls/s / floor calls/s at 64 in flight = ${share.toFixed(2)}${connector === "local" ? "" : ` (target ≥ 0.5) ${share >= 0.5 ? "✓" : "✗"}`}`,
      );
    }
    const file1 = find("file", 1);
    if (file1 && session1) {
      out.push(
        `${connector}: file carrier median / session median = ${(file1.medianMs / session1.medianMs).toFixed(1)}× (the file carrier starts Python per call)`,
      );
    }
  }
  return out;
}

/** `pnpm bench [--quick] [--json FILE]`. */
export async function runBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: "string" },
      quick: { type: "boolean", default: false },
      python: { type: "string" },
      "no-newt": { type: "boolean", default: false },
    },
    strict: true,
  });
  const plan = values.quick ? QUICK : FULL;
  const python = values.python ?? (await resolvePython());
  const rows: BenchRow[] = [];
  process.stderr.write(`benchmark: local connector, python ${python}\n`);

  const local = localConnector();
  const tmpDir = await mkdtemp(join(tmpdir(), "sremote-bench-"));
  try {
    rows.push(...(await floorRows(local, "local", python, plan)));
    const client = new RemoteClient({
      connector: local,
      python,
      autoInstallAgent: false,
      closeConnector: false,
      layout: { endpointDir: agentDir(), tmpDir, workDir: tmpDir },
    });
    try {
      rows.push(...(await clientRows(client, "local", "session", plan)));
      rows.push(...(await clientRows(client, "local", "file", plan)));
    } finally {
      await client.close();
    }
  } finally {
    await local.close();
    await rm(tmpDir, { recursive: true, force: true });
  }

  if (!values["no-newt"]) rows.push(...(await newtRows(python, plan)));

  process.stdout.write(`${formatTable(rows)}\n\n${verdicts(rows).join("\n")}\n`);
  if (values.json) await writeFile(values.json, `${JSON.stringify(rows, null, 2)}\n`);
  return 0;
}
