/**
 * A real Slurm cluster on 127.0.0.1 for integration tests: {@link startSlurmCluster} brings
 * up a private munged, slurmctld and one slurmd per node (`c1` … `cN`) as root;
 * {@link useSlurmCluster} gives a vitest suite one, skipping with a reason where it cannot run.
 */
export {
  SLURM_STATE_DIR,
  type SlurmCluster,
  type SlurmClusterFacts,
  type StartSlurmClusterOptions,
  slurmMissing,
  startSlurmCluster,
  stopSlurmClusterAt,
} from "./cluster.js";
export { SLURM_PROGRAMS } from "./config.js";
export { slurmSkipReason, useSlurmCluster } from "./suite.js";
