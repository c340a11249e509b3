import { afterAll, beforeAll, type TestContext } from "vitest";
import { type SlurmCluster, type StartSlurmClusterOptions, slurmMissing, startSlurmCluster } from "./cluster.js";

const strict = () => process.env.SREMOTE_TEST_STRICT === "1";

/**
 * Why this machine cannot run a Slurm cluster (not root, programs missing), for
 * `describeUnless(slurmSkipReason())` — or `null`. Under `SREMOTE_TEST_STRICT=1` (CI) a
 * missing prerequisite throws instead: nothing is skipped there silently.
 */
export function slurmSkipReason(): string | null {
  const missing = slurmMissing();
  if (missing && strict()) throw new Error(`Slurm tests cannot run (SREMOTE_TEST_STRICT=1): ${missing}`);
  return missing;
}

/**
 * One cluster for the enclosing suite: started in `beforeAll`, stopped in `afterAll`. Returns
 * a getter for tests: `const cluster = useSlurmCluster(); it("…", async (ctx) => { const c =
 * cluster(ctx); … })`. When the cluster cannot start, the getter skips the test with the
 * reason (under `SREMOTE_TEST_STRICT=1` the `beforeAll` fails instead).
 */
export function useSlurmCluster(options: StartSlurmClusterOptions = {}): (ctx: TestContext) => SlurmCluster {
  let cluster: SlurmCluster | undefined;
  let reason = "the Slurm cluster has not started";
  beforeAll(async () => {
    const missing = slurmSkipReason();
    if (missing) {
      reason = missing;
      return;
    }
    try {
      cluster = await startSlurmCluster(options);
    } catch (err) {
      if (strict()) throw err;
      reason = `the Slurm cluster did not start: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
    }
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);
  return (ctx) => {
    if (!cluster) ctx.skip(reason);
    return cluster as SlurmCluster;
  };
}
