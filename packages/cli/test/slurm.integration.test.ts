import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeUnless } from "@sremote/testkit";
import { type SlurmCluster, slurmSkipReason, useSlurmCluster } from "@sremote/testkit/slurm";
import { afterAll, expect, it, vi } from "vitest";
import { EXIT, main } from "../src/index.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** Job states that hold or wait for nodes (a cancelled job is `COMPLETING`, then `CANCELLED`). */
const HOLDING = new Set(["PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "RESIZING", "REQUEUED", "COMPLETING"]);

/** Jobs still holding or waiting for nodes: none once the command has exited (bounded wait for COMPLETING). */
async function expectNoJobLeft(c: SlurmCluster): Promise<void> {
  const holding = async () => (await c.jobs()).filter((j) => HOLDING.has(j.state) && j.state !== "COMPLETING");
  expect(await holding()).toEqual([]);
  await vi.waitFor(async () => expect((await c.jobs()).filter((j) => HOLDING.has(j.state))).toEqual([]), {
    timeout: 15_000,
    interval: 100,
  });
}

async function run(argv: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } };
  const status = await main(argv, io);
  return { status, stdout, stderr };
}

// `sremote call|map … --slurm` against a real 3-node Slurm cluster on 127.0.0.1 (local: target:
// the agents run as srun steps of one allocation, on the nodes c1…c3).
describeUnless(slurmSkipReason())("sremote --slurm on a real Slurm cluster", () => {
  const cluster = useSlurmCluster({ nodes: 3 });
  const dir = mkdtempSync(join(tmpdir(), "sremote-cli-slurm-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("call runs on a compute node, reports the allocation on stderr and leaves no job", async (ctx) => {
    const c = cluster(ctx);
    const r = await run(["call", "local:", "os.getenv", "SLURMD_NODENAME", "--slurm", `conf=${c.slurmConf},time=5`]);
    expect(r.status, r.stderr).toBe(EXIT.ok);
    expect(c.nodes).toContain(r.stdout.trim());
    expect(r.stderr).toMatch(/^sremote: slurm: /m);
    await expectNoJobLeft(c);
  });

  it("map spreads inputs over the allocation's 3 nodes, in order, and leaves no job", async (ctx) => {
    const c = cluster(ctx);
    const inputs = join(dir, "nodes.jsonl");
    // Each input takes a moment, so the work outlasts the agents' start on every node.
    const line = JSON.stringify(["sleep 0.2; echo $SLURMD_NODENAME"]);
    writeFileSync(inputs, `${Array.from({ length: 30 }, () => line).join("\n")}\n`);
    const r = await run([
      "map",
      "local:",
      "subprocess.getoutput",
      "--inputs",
      inputs,
      "--concurrency",
      "6",
      "--slurm",
      `conf=${c.slurmConf},nodes=3,time=5`,
    ]);
    expect(r.status, r.stderr).toBe(EXIT.ok);
    const lines = r.stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { ok: boolean; value: string });
    expect(lines).toHaveLength(30);
    const perNode = new Map<string, number>();
    for (const l of lines) perNode.set(l.value, (perNode.get(l.value) ?? 0) + 1);
    console.log(`sremote map --slurm nodes=3: per-node counts ${JSON.stringify(Object.fromEntries(perNode))}`);
    expect([...perNode.keys()].sort()).toEqual([...c.nodes].sort());
    await expectNoJobLeft(c);
  });

  it("a partition Slurm refuses is SCHEDULER (exit 3) with Slurm's message", async (ctx) => {
    const c = cluster(ctx);
    const r = await run([
      "call",
      "local:",
      "math.sqrt",
      "4",
      "--json",
      "--slurm",
      `conf=${c.slurmConf},partition=nosuchpart,time=5`,
    ]);
    expect(r.status).toBe(EXIT.setup);
    const out = JSON.parse(r.stdout);
    expect(out.error).toMatchObject({ code: "SCHEDULER", message: expect.stringMatching(/partition/i) });
    // map stops at the refusal instead of asking Slurm again for each of 200 inputs.
    const inputs = join(dir, "refused.jsonl");
    writeFileSync(inputs, `${Array.from({ length: 200 }, () => "[4]").join("\n")}\n`);
    const m = await run([
      "map",
      "local:",
      "math.sqrt",
      "--inputs",
      inputs,
      "--slurm",
      `conf=${c.slurmConf},partition=nosuchpart`,
    ]);
    expect(m.status).toBe(EXIT.setup);
    expect(m.stdout.trimEnd().split("\n").length).toBeLessThanOrEqual(2);
    expect(m.stderr).toMatch(/map stopped after \d+ results: .*\[SCHEDULER\]/);
    await expectNoJobLeft(c);
  });
});
