export {
  isCommandNonce,
  isIdempotentCommand,
  MARKER_DIR_NAME,
  MARKER_MAX_AGE_MINUTES,
  type MarkerCleanup,
  MarkerLedger,
  type MarkerState,
  markerCleanupScript,
  markerDir,
  markerQueryScript,
  newCommandNonce,
  parseMarkerQuery,
  type RecordOptions,
  recordedRun,
  TOMBSTONE_MAX_AGE_MINUTES,
} from "./command-marker.js";
export type {
  Connector,
  ConnectorCapabilities,
  ConnectorStatus,
  ExecOptions,
  ExecResult,
  ProcessExit,
  PutFileOptions,
  RemoteProcess,
  StdoutReader,
} from "./connector.js";
export { type Deadline, deadline, type OperationOptions, raceSignal } from "./deadline.js";
export { type ConnectorDefinition, type ConnectorRuntime, defineConnector } from "./define-connector.js";
export { type DiscoveredLayout, discoverLayout } from "./discovery.js";
export {
  AbortError,
  ConnectorError,
  type ConnectorErrorCode,
  ERROR_CODES,
  hasErrorCode,
  isSremoteError,
  type ModuleProblem,
  ProtocolError,
  RemoteExecError,
  type RemoteExecKind,
  RemoteModulesError,
  RemoteNotSetupError,
  SchedulerError,
  SremoteError,
  type SremoteErrorCode,
  type SremoteErrorOptions,
  TimeoutError,
  UsageError,
} from "./errors.js";
export {
  type ExactlyOnceIo,
  isAmbiguousFailure,
  type RequestBudget,
  repeatSafely,
  runExactlyOnce,
} from "./exactly-once.js";
export {
  type AgentCommand,
  type AgentLauncher,
  type LaunchContext,
  type Launcher,
  type LauncherEvent,
  type LauncherFunction,
  type LauncherPrepareOptions,
  toLauncher,
} from "./launcher.js";
export {
  DEFAULT_ENDPOINT_NAME,
  defaultLayout,
  formatLocationFile,
  INTERPRETER_NAME,
  interpreterPath,
  LOCATION_FILE_NAME,
  type LocationFile,
  layoutFromLocation,
  locationFilePath,
  locationFromLayout,
  parseLocationFile,
  posixJoin,
  type RemoteLayout,
} from "./layout.js";
export { NEVER_SENT_CODES, networkErrorCode, neverSent } from "./network-errors.js";
export { PROTOCOL_VERSION } from "./protocol-version.js";
export { assertEnv, isEnvName, shCommand, shJoin, shQuote } from "./quoting.js";
export { type RetryEvent, type RetryPolicy, withRetry } from "./retry.js";
export { openSocketStdout, SocketStdout } from "./socket-stdout.js";
export {
  formatTarget,
  type LocalTarget,
  type NewtTarget,
  parseTarget,
  type SfapiTarget,
  type SshTarget,
  type Target,
} from "./target.js";
export { checkArgv, checkData, checkExecOptions, checkMode, checkPath } from "./validation.js";
