// The launcher contract and the error hierarchy (from core), so that `@sremote/client` is the
// only import most programs need.
export type {
  AgentCommand,
  AgentLauncher,
  LaunchContext,
  Launcher,
  LauncherEvent,
  LauncherFunction,
  LauncherPrepareOptions,
} from "@sremote/core";
export {
  AbortError,
  ConnectorError,
  hasErrorCode,
  isSremoteError,
  ProtocolError,
  RemoteExecError,
  type RemoteLayout,
  RemoteModulesError,
  RemoteNotSetupError,
  SchedulerError,
  SremoteError,
  type SremoteErrorCode,
  TimeoutError,
  UsageError,
} from "@sremote/core";
export { NDArray } from "@sremote/protocol";
export { RemoteClient } from "./client.js";
export { ClientGroup, type GroupResult } from "./group.js";
export type { Logger } from "./logger.js";
export type { MapOptions, MapProgress, MapResult } from "./map.js";
export type { CallMode, CallOptions, CallResult, RemoteClientOptions } from "./options.js";
export {
  isKwargs,
  type Kwargs,
  kw,
  type ModuleProxy,
  type UntypedModuleProxy,
  type UntypedRemoteAttribute,
} from "./proxy.js";
export { checkRequirements, normalizeName, parseRequirement, type Requirement } from "./requirements.js";
export type { OutputListener } from "./session.js";
