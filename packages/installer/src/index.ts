export { type AttachOptions, type AttachResult, attach } from "./attach.js";
export { type DiscoverOptions, type DiscoverResult, discover } from "./discover.js";
export {
  type DoctorOptions,
  type DoctorProblem,
  type DoctorReport,
  doctor,
  type RecordedPackage,
} from "./doctor.js";
export { LOCK_FILE, MARKER_FILE, PREAMBLE_FILE, PYTHON_FILE, STATE_FILE, VENV_DIR } from "./endpoint-files.js";
export { InstallError, type InstallErrorCode, type InstallErrorOptions, type InstallStep } from "./errors.js";
export type { InstallEvent, InstallEventListener, StepOutcome, StepReport } from "./events.js";
export { install } from "./install.js";
export type { InstallOptions, InstallResult } from "./install-options.js";
export { countingConnector, type OperationCounts } from "./operation-counts.js";
export {
  type Distribution,
  type GitPackage,
  type LocalPackage,
  type PackageInput,
  type PackageSource,
  parseGitSource,
  type SpecPackage,
} from "./sources.js";
export type {
  CompletionMarker,
  InstallState,
  PackageRecord,
  PythonRecord,
  VenvRecord,
} from "./state.js";
export { type PackedFolder, packFolder } from "./tar.js";
export { type UninstallOptions, type UninstallResult, uninstall } from "./uninstall.js";
