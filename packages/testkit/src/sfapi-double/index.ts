export { startSfapiDouble } from "./double.js";
export { SFAPI_ROUTES, type SfapiFault, type SfapiFaultRequest, type SfapiRoute } from "./faults.js";
export {
  generateSfapiKeyPair,
  jwkKeyFileText,
  pemKeyFileText,
  randomClientId,
  type SfapiKeyPair,
} from "./keys.js";
export type {
  SfapiClientColor,
  SfapiClientOptions,
  SfapiDouble,
  SfapiDoubleClient,
  SfapiDoubleClock,
  SfapiDoubleOptions,
  SfapiJobView,
  SfapiRequestLogEntry,
  SfapiRequestOutcome,
  SfapiSystemStatus,
  SfapiTaskPhase,
  SfapiTaskView,
} from "./types.js";
