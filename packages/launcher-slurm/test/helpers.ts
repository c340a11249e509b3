import type { Connector } from "@sremote/core";
import type { SlurmCluster } from "@sremote/testkit/slurm";
import type { SlurmLauncher } from "../src/index.js";

/** Job states that hold (or wait for) resources. */
const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "RESIZING", "REQUEUED"]);

/**
 * Jobs that hold nodes or wait for them (any user), optionally only those whose name starts
 * with `prefix`. A cancelled job is `COMPLETING` while slurmd ends its processes: see
 * {@link noJobsLeft}.
 */
export async function activeJobs(cluster: SlurmCluster, prefix = "") {
  return (await cluster.jobs()).filter((j) => ACTIVE.has(j.state) && j.name.startsWith(prefix));
}

/**
 * Waits (bounded) until no job named `prefix…` is left in the queue at all, `COMPLETING`
 * included: what was cancelled really ends, with nobody's help.
 */
export async function noJobsLeft(cluster: SlurmCluster, prefix = "sremote-"): Promise<void> {
  const left = async () =>
    (await cluster.jobs()).filter(
      (j) => (ACTIVE.has(j.state) || j.state === "COMPLETING") && j.name.startsWith(prefix),
    );
  await until(async () => (await left()).length === 0, "no job left in the queue").catch(async (err: unknown) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(await left())}`);
  });
}

/** Polls `check` every 50 ms until it returns true, or throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a Python one-liner as a step of the launcher's allocation for `slot`; its stdout. */
export async function runInSlot(
  connector: Connector,
  launcher: SlurmLauncher,
  slot: number,
  code: string,
  carrier: "session" | "file" = "file",
): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  const wrapped = launcher.wrap({ argv: ["/usr/bin/python3", "-c", code], env: {} }, { carrier, slot });
  return connector.exec(wrapped.argv, { env: wrapped.env, timeoutMs: 30_000 });
}

/** Python printing the node a step runs on and the user it runs as. */
export const WHERE = "import os, pwd; print(os.environ['SLURMD_NODENAME'], pwd.getpwuid(os.getuid()).pw_name)";
