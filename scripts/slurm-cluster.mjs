#!/usr/bin/env node
// A real single-host Slurm cluster on 127.0.0.1 (munged, slurmctld, slurmd c1..cN), as root,
// for trying the Slurm launcher by hand and for CI. The tests start their own clusters with
// @sremote/testkit/slurm (startSlurmCluster); this script runs the same code.
//
//   node scripts/slurm-cluster.mjs up [--nodes N] [--cpus N] [--partition NAME]
//       starts one and prints `export SLURM_CONF=…` on stdout (eval "$(… up)"); it keeps
//       running after the script exits. Its folder is remembered in /run/sremote-slurm/current.
//   node scripts/slurm-cluster.mjs down [DIR]
//       stops it (or the cluster in DIR): kills its own daemons, steps and jobs, in parallel.
//   node scripts/slurm-cluster.mjs status
//       prints the remembered cluster's folder, nodes (sinfo) and queue (squeue).
//
// Needs Debian's slurm-wlm, slurm-client and munge (scripts/test-prereqs.mjs installs them).
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tsImport } from "tsx/esm/api";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    nodes: { type: "string", default: "3" },
    cpus: { type: "string", default: "4" },
    partition: { type: "string", default: "debug" },
  },
});
const [command = "", target] = positionals;
const kit = await tsImport("../packages/testkit/src/slurm/cluster.ts", import.meta.url);
const current = join(kit.SLURM_STATE_DIR, "current");
const remembered = () => {
  try {
    return readFileSync(current, "utf8").trim();
  } catch {
    return "";
  }
};

if (command === "up") {
  const missing = kit.slurmMissing();
  if (missing) {
    console.error(`slurm-cluster: ${missing}`);
    process.exit(1);
  }
  const started = Date.now();
  const cluster = await kit.startSlurmCluster({
    nodes: Number(values.nodes),
    cpusPerNode: Number(values.cpus),
    partition: values.partition,
    keep: true,
  });
  writeFileSync(current, `${cluster.dir}\n`);
  console.error(
    `slurm-cluster: up in ${Date.now() - started} ms: nodes ${cluster.nodes.join(",")}, partition ${cluster.partition}, folder ${cluster.dir}`,
  );
  process.stdout.write(`export SLURM_CONF='${cluster.slurmConf}'\n`);
} else if (command === "down") {
  const dir = target ?? remembered();
  if (!dir) {
    console.error("slurm-cluster: no cluster to stop (none remembered; pass its folder)");
    process.exit(0);
  }
  if (!dir.startsWith(`${kit.SLURM_STATE_DIR}/cluster-`)) {
    console.error(`slurm-cluster: ${dir} is not a cluster folder of this script`);
    process.exit(2);
  }
  const started = Date.now();
  await kit.stopSlurmClusterAt(dir);
  if (remembered() === dir) rmSync(current, { force: true });
  console.error(`slurm-cluster: ${dir} stopped in ${Date.now() - started} ms`);
} else if (command === "status") {
  const dir = remembered();
  if (!dir) {
    console.error("slurm-cluster: no cluster remembered");
    process.exit(1);
  }
  const env = { ...process.env, SLURM_CONF: join(dir, "slurm.conf") };
  console.log(`folder ${dir}\nexport SLURM_CONF='${env.SLURM_CONF}'`);
  for (const argv of [
    ["sinfo", "-N"],
    ["squeue", "-a"],
  ]) {
    console.log(execFileSync(argv[0], argv.slice(1), { env, encoding: "utf8" }));
  }
} else {
  console.error(
    "usage: node scripts/slurm-cluster.mjs up [--nodes N] [--cpus N] [--partition NAME] | down [DIR] | status",
  );
  process.exit(2);
}
