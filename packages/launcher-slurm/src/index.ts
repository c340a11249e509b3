export {
  expandHostlist,
  neverStarts,
  parseJobId,
  sallocArgv,
  slurmMessage,
  srunArgv,
  stepEnd,
} from "./commands.js";
export {
  clientHost,
  isDeadClientJob,
  JOB_NAME_PREFIX,
  type JobNameFacts,
  makeJobName,
  parseJobName,
} from "./job-name.js";
export { type SlurmJob, type SlurmLauncher, slurm } from "./launcher.js";
export {
  DEFAULT_SLURM_TIME,
  parseSlurmSpec,
  SLURM_SPEC_KEYS,
  type SlurmOptions,
  slurmTime,
  validateSlurmOptions,
} from "./options.js";
