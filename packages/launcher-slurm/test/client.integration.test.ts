import { randomBytes } from "node:crypto";
import { RemoteClient, type RemoteClientOptions } from "@sremote/client";
import { sshConnector } from "@sremote/connector-ssh";
import { isSremoteError, type LauncherEvent } from "@sremote/core";
import { describeUnless } from "@sremote/testkit";
import { slurmSkipReason, useSlurmCluster } from "@sremote/testkit/slurm";
import { type SshdFixture, sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, expect, it, type TestContext, vi } from "vitest";
import { type SlurmLauncher, slurm } from "../src/index.js";
import { activeJobs, noJobsLeft, until } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The whole client on compute nodes: RemoteClient over SSH to an unprivileged test account,
// agents started by the Slurm launcher as srun steps of one allocation on a real 3-node cluster.
describeUnless(slurmSkipReason() ?? sshdMissing())("RemoteClient through Slurm, over SSH", () => {
  const clusterOf = useSlurmCluster({ nodes: 3 });
  let sshd: SshdFixture;
  let root: string;

  beforeAll(async () => {
    sshd = await startSshd();
    root = `${sshd.home}/slurm-${randomBytes(4).toString("hex")}`;
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  const setUp = (ctx: TestContext, options: Partial<RemoteClientOptions> = {}, nodes = 3) => {
    const cluster = clusterOf(ctx);
    const events: LauncherEvent[] = [];
    const launcher: SlurmLauncher = slurm({ nodes, time: 5, env: cluster.env, pollIntervalMs: 200 });
    const client = new RemoteClient({
      connector: sshConnector(sshConnectorOptions(sshd)),
      python: "/usr/bin/python3",
      layout: { endpointDir: `${root}/endpoint`, tmpDir: `${root}/tmp`, workDir: root },
      launcher,
      onEvent: (e) => events.push(e),
      ...options,
    });
    return { cluster, client, launcher, events };
  };

  it("runs a call on a compute node, as the account, and leaves no job after close", async (ctx) => {
    const { cluster, client, launcher, events } = setUp(ctx, { poolSize: 1 }, 1);
    try {
      const r = await client.call<string>("os", "getenv", ["SLURMD_NODENAME"], { timeoutMs: 30_000 });
      expect(r.value).toBe("c1");
      const job = launcher.job;
      expect((await activeJobs(cluster, "sremote-")).map((j) => [j.id, j.user, j.state])).toEqual([
        [job?.id, sshd.user, "RUNNING"],
      ]);
      expect(events.map((e) => e.kind)).toContain("ready");
      // The file carrier runs as a step of the same allocation.
      const f = await client.call<string>("os.path", "expandvars", ["$SLURMD_NODENAME:$SLURM_JOB_ID"], {
        mode: "file",
        timeoutMs: 30_000,
      });
      expect(f.value).toBe(`c1:${job?.id}`);
    } finally {
      await client.close();
    }
    expect(events.at(-1)).toMatchObject({ kind: "released" });
    expect(await activeJobs(cluster, "sremote-")).toEqual([]);
    await noJobsLeft(cluster);
  });

  it("maps over 3 nodes, using all 3, every input answered once and in order", async (ctx) => {
    const { cluster, client } = setUp(ctx, { poolSize: 3 });
    try {
      const n = 60;
      const inputs = Array.from({ length: n }, (_, i) => [`sleep 0.02; echo ${i} $SLURMD_NODENAME`]);
      const perNode = new Map<string, number>();
      let index = 0;
      for await (const r of client.map<string>("subprocess", "getoutput", inputs, { concurrency: 9 })) {
        expect(r).toMatchObject({ ok: true, index });
        const [i, node] = (r.ok ? r.value : "").split(" ");
        expect(Number(i)).toBe(index);
        perNode.set(node as string, (perNode.get(node as string) ?? 0) + 1);
        index++;
      }
      expect(index).toBe(n);
      expect([...perNode.keys()].sort()).toEqual(cluster.nodes);
      expect([...perNode.values()].reduce((a, b) => a + b, 0)).toBe(n);
    } finally {
      await client.close();
    }
    expect(await activeJobs(cluster, "sremote-")).toEqual([]);
    await noJobsLeft(cluster);
  });

  it("maps 10,000 inputs over 3 nodes: each answered exactly once, in order, on every node", async (ctx) => {
    const { cluster, client } = setUp(ctx, { poolSize: 3 });
    try {
      const n = 10_000;
      // Generated lazily: map pulls inputs as its window frees up.
      const inputs = (function* () {
        for (let i = 0; i < n; i++) yield [`(${i}, __import__("os").environ.get("SLURMD_NODENAME"))`];
      })();
      const perNode = new Map<string, number>();
      let index = 0;
      for await (const r of client.map<[number, string]>("builtins", "eval", inputs, { concurrency: 48 })) {
        if (!r.ok || r.index !== index || r.value[0] !== index) {
          expect(r).toMatchObject({ ok: true, index, value: [index, expect.any(String)] });
        }
        const node = r.ok ? r.value[1] : "?";
        perNode.set(node, (perNode.get(node) ?? 0) + 1);
        index++;
      }
      expect(index).toBe(n);
      console.log(`map over Slurm: ${n} inputs, per node ${JSON.stringify(Object.fromEntries(perNode))}`);
      expect([...perNode.keys()].sort()).toEqual(cluster.nodes);
    } finally {
      await client.close();
    }
    expect(await activeJobs(cluster, "sremote-")).toEqual([]);
    await noJobsLeft(cluster);
  });

  it("a timed-out call leaves no job; the next call gets a new allocation", async (ctx) => {
    const { cluster, client, launcher } = setUp(ctx, { poolSize: 1, cancelGraceMs: 300 }, 1);
    try {
      await client.call("os", "getpid", [], { timeoutMs: 30_000 });
      const first = launcher.job?.id;
      const err = await client.call("time", "sleep", [3600], { timeoutMs: 1_000 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "TIMEOUT" });
      // The release the timeout caused was awaited before the call rejected.
      expect(await activeJobs(cluster, "sremote-")).toEqual([]);
      await noJobsLeft(cluster);
      expect((await client.call<string>("os", "getenv", ["SLURM_JOB_ID"], { timeoutMs: 30_000 })).value).not.toBe(
        first,
      );
    } finally {
      await client.close();
    }
    expect(await activeJobs(cluster, "sremote-")).toEqual([]);
    await noJobsLeft(cluster);
  });

  it("a job cancelled from outside fails its call with a typed error; the next call gets a new allocation", async (ctx) => {
    const { cluster, client, launcher } = setUp(ctx, { poolSize: 1 }, 1);
    try {
      await client.call("os", "getpid", [], { timeoutMs: 30_000 });
      const first = launcher.job?.id as string;
      const inFlight = client.call("time", "sleep", [3600], { timeoutMs: 30_000 }).catch((e: unknown) => e);
      // Cancel once the call is surely running in the agent (its session has one call in flight).
      await until(async () => (await activeJobs(cluster, "sremote-")).length === 1, "the job");
      await new Promise((r) => setTimeout(r, 300));
      await cluster.command("scancel", [first]);
      const err = await inFlight;
      expect(isSremoteError(err)).toBe(true);
      expect((err as { code: string }).code).not.toBe("TIMEOUT");
      const next = await client.call<string>("os", "getenv", ["SLURM_JOB_ID"], { timeoutMs: 30_000 });
      expect(next.value).not.toBe(first);
      expect(next.value).toBe(launcher.job?.id);
    } finally {
      await client.close();
    }
    expect(await activeJobs(cluster, "sremote-")).toEqual([]);
    await noJobsLeft(cluster);
  });
});
