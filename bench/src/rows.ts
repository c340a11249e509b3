import type { RemoteClient } from "@sremote/client";
import type { Connector } from "@sremote/core";
import { encodeMessage } from "@sremote/protocol";
import { EchoFloor } from "./floor.js";
import { type BenchRow, measure, measureInterleaved, type Stats } from "./stats.js";

/** Sizes of one benchmark run; `--quick` shrinks them for smoke tests. */
export interface Plan {
  sessionCount: number;
  /** Untimed calls first: V8 and CPython's specializing interpreter need a few thousand to settle. */
  sessionWarmup: number;
  fileCount: number;
  fileInFlight: number;
  /** Calls per row of the peer comparison, and untimed calls before it. */
  peerCount: number;
  peerWarmup: number;
  /** Fresh connections per contender for "first result after connect". */
  peerConnects: number;
}

export const FULL: Plan = {
  sessionCount: 20_000,
  sessionWarmup: 3000,
  fileCount: 60,
  fileInFlight: 8,
  peerCount: 10_000,
  peerWarmup: 1000,
  peerConnects: 7,
};
export const QUICK: Plan = {
  sessionCount: 1000,
  sessionWarmup: 500,
  fileCount: 10,
  fileInFlight: 4,
  peerCount: 500,
  peerWarmup: 100,
  peerConnects: 2,
};

/** The request the benchmark sends: `math.sqrt(2)`, the same bytes the floor echoes. */
export const CALL = { module: "math", function: "sqrt", args: [2] };

/**
 * The floor (a minimal Python echo loop over one spawned process) and the session carrier,
 * measured in alternating rounds at 1 and 64 calls in flight.
 */
export async function floorAndSessionRows(
  connector: Connector,
  connectorName: string,
  python: string,
  client: RemoteClient,
  plan: Plan,
): Promise<BenchRow[]> {
  const floor = await EchoFloor.start(connector, python);
  const payload = encodeMessage({ v: 1, kind: "call", id: "00000000-1", ...CALL });
  const rows: BenchRow[] = [];
  try {
    const ops = {
      floor: () => floor.roundTrip(payload),
      session: () => client.call(CALL.module, CALL.function, CALL.args, { mode: "session" }),
    };
    for (const inFlight of [1, 64]) {
      process.stderr.write(`  ${connectorName}: floor and session, ${inFlight} in flight…\n`);
      const rounds = 10;
      const m = await measureInterleaved(ops, {
        rounds,
        perRound: Math.ceil(plan.sessionCount / rounds),
        inFlight,
        warmup: plan.sessionWarmup,
      });
      rows.push({ name: "floor", connector: connectorName, carrier: "floor", inFlight, ...(m.floor as Stats) });
      rows.push({ name: "session", connector: connectorName, carrier: "session", inFlight, ...(m.session as Stats) });
    }
  } finally {
    await floor.close();
  }
  return rows;
}

export async function clientRows(
  client: RemoteClient,
  connectorName: string,
  carrier: "session" | "file",
  plan: Plan,
): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const op = () => client.call(CALL.module, CALL.function, CALL.args, { mode: carrier });
  const levels = carrier === "session" ? [1, 64] : [1, plan.fileInFlight];
  for (const inFlight of levels) {
    process.stderr.write(`  ${connectorName}: ${carrier}, ${inFlight} in flight…\n`);
    const count = carrier === "session" ? plan.sessionCount : plan.fileCount;
    const m = await measure(op, { count, inFlight, warmup: carrier === "session" ? plan.sessionWarmup : 2 });
    rows.push({ name: carrier, connector: connectorName, carrier, inFlight, ...m });
  }
  return rows;
}
