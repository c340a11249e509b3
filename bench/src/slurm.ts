import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { agentDir } from "@sremote/agent";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";
import { slurm } from "@sremote/launcher-slurm";
import { slurmMissing, startSlurmCluster } from "@sremote/testkit/slurm";
import { type BenchRow, quantile } from "./stats.js";

/** Inputs of one measured `map` (after a warm-up that holds the allocation and starts the agents). */
const MAP_INPUTS = { full: 6_000, quick: 1_500 };
const MAP_CONCURRENCY = 32;

/**
 * Rows for compute nodes through a real Slurm cluster on 127.0.0.1 (root only): time to first
 * result of a new client through `srun` (allocation + agent start + call) beside the same
 * without a launcher, and `map` throughput over 1 and 3 nodes. Returns a reason instead when
 * Slurm cannot run here.
 */
export async function slurmRows(o: { python: string; quick: boolean }): Promise<BenchRow[] | string> {
  const missing = slurmMissing();
  if (missing) return missing;
  const cluster = await startSlurmCluster({ nodes: 3 });
  const tmp = await mkdtemp(join(tmpdir(), "sremote-bench-slurm-"));
  const rows: BenchRow[] = [];
  const newClient = (nodes: number | undefined) =>
    new RemoteClient({
      connector: localConnector(),
      python: o.python,
      autoInstallAgent: false,
      layout: { endpointDir: agentDir(), tmpDir: tmp, workDir: tmp },
      poolSize: nodes ?? 1,
      ...(nodes === undefined ? {} : { launcher: slurm({ nodes, time: 10, env: cluster.env }) }),
    });
  try {
    // First result after creating a client: login node vs through srun, alternating.
    const firsts: Record<string, number[]> = { login: [], srun: [] };
    const runs = o.quick ? 2 : 5;
    for (let i = 0; i < runs; i++) {
      for (const kind of ["login", "srun"] as const) {
        process.stderr.write(`  slurm: first result (${kind}) ${i + 1}/${runs}…\n`);
        const t0 = performance.now();
        const client = newClient(kind === "srun" ? 1 : undefined);
        try {
          await client.call("math", "sqrt", [2]);
          firsts[kind]?.push(performance.now() - t0);
        } finally {
          await client.close();
        }
      }
    }
    for (const [kind, times] of Object.entries(firsts)) {
      const sorted = [...times].sort((a, b) => a - b);
      const median = quantile(sorted, 0.5);
      rows.push({
        name: "first-result",
        connector: kind === "srun" ? "local+slurm" : "local",
        carrier: "session",
        inFlight: 1,
        medianMs: median,
        p90Ms: quantile(sorted, 0.9),
        callsPerSec: 1000 / median,
      });
    }
    // map throughput over 1 and 3 nodes (one session agent per node).
    const count = o.quick ? MAP_INPUTS.quick : MAP_INPUTS.full;
    for (const nodes of [1, 3]) {
      const client = newClient(nodes);
      try {
        process.stderr.write(`  slurm: map over ${nodes} node(s), ${count} inputs…\n`);
        const warm = Array.from({ length: nodes * 8 }, (_, i) => [i, 1]);
        for await (const r of client.map("operator", "add", warm, { concurrency: nodes * 8 })) {
          if (!r.ok) throw r.error;
        }
        const perNode = new Map<string, number>();
        const t0 = performance.now();
        let n = 0;
        const inputs = (function* () {
          for (let i = 0; i < count; i++) yield [i, 1];
        })();
        for await (const r of client.map("operator", "add", inputs, { concurrency: MAP_CONCURRENCY })) {
          if (!r.ok) throw r.error;
          n++;
        }
        const ms = performance.now() - t0;
        // Which nodes answered (a short probe: one call per session slot).
        const probe = Array.from({ length: nodes * 4 }, () => ["SLURMD_NODENAME", "?"]);
        for await (const r of client.map("os", "getenv", probe, { concurrency: nodes * 4 })) {
          if (r.ok) perNode.set(String(r.value), (perNode.get(String(r.value)) ?? 0) + 1);
        }
        process.stderr.write(`  slurm: ${n} answers; nodes seen: ${[...perNode.keys()].sort().join(",")}\n`);
        rows.push({
          name: `map-${nodes}-node${nodes > 1 ? "s" : ""}`,
          connector: "local+slurm",
          carrier: "session",
          inFlight: MAP_CONCURRENCY,
          medianMs: ms / n,
          p90Ms: Number.NaN,
          callsPerSec: (n * 1000) / ms,
        });
      } finally {
        await client.close();
      }
    }
  } finally {
    await cluster.stop();
    await rm(tmp, { recursive: true, force: true });
  }
  return rows;
}
