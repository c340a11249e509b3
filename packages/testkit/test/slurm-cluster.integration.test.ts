import { existsSync } from "node:fs";
import { expect, it, vi } from "vitest";
import { describeUnless } from "../src/skips.js";
import { slurmSkipReason, startSlurmCluster } from "../src/slurm/index.js";
import { processesUsing } from "../src/slurm/processes.js";
import { isAlive } from "../src/sshd/processes.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describeUnless(slurmSkipReason())("the Slurm cluster fixture", () => {
  it("starts 2 nodes that run steps, and stop() leaves no daemon, step, job or folder", async () => {
    const cluster = await startSlurmCluster({ nodes: 2, partition: "fixture" });
    let stopped = false;
    try {
      expect(cluster.nodes).toEqual(["c1", "c2"]);
      expect(cluster.env).toEqual({ SLURM_CONF: cluster.slurmConf });
      // A job still running at stop() (its step holds a process with the cluster's SLURM_CONF).
      const { stderr } = await cluster.command("salloc", ["--no-shell", "-N2", "--time=5"]);
      const id = /Granted job allocation (\d+)/.exec(stderr)?.[1];
      expect(id).toBeDefined();
      const { stdout } = await cluster.command("srun", [
        `--jobid=${id}`,
        "-N2",
        "-l",
        "--overlap",
        "printenv",
        "SLURMD_NODENAME",
      ]);
      expect(stdout.trim().split("\n").sort()).toEqual(["0: c1", "1: c2"]);
      expect((await cluster.jobs()).map((j) => [j.id, j.state])).toEqual([[id, "RUNNING"]]);
      expect(await Promise.all(cluster.pids.map(isAlive))).toEqual(cluster.pids.map(() => true));
      await cluster.stop();
      stopped = true;
      expect(await Promise.all(cluster.pids.map(isAlive))).toEqual(cluster.pids.map(() => false));
      expect(await processesUsing(cluster.slurmConf)).toEqual([]);
      expect(existsSync(cluster.dir)).toBe(false);
      await cluster.stop(); // idempotent
    } finally {
      if (!stopped) await cluster.stop();
    }
  });

  it("a cluster whose controller cannot start fails at once, with the daemons' logs", async () => {
    // slurmctld refuses a partition MaxTime it cannot parse, and exits.
    const err = await startSlurmCluster({ nodes: 1, maxTimeMinutes: -7 }).then(
      async (unexpected) => {
        await unexpected.stop();
        throw new Error("the cluster started");
      },
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/slurm cluster: did not start: daemon\(s\) .* exited/);
    expect(err.message).toMatch(/--- slurmctld/);
  });
});
