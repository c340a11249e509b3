export { type MarkerResult, parseMarker, type WrappedCommand, type WrapperInput, wrapCommand } from "./command.js";
export { NEWT_CAPABILITIES, type NewtConnector, newtConnector } from "./connector.js";
export type { HttpRetryOptions } from "./http.js";
export { DEFAULT_NEWT_URL, NEWT_ENV, type NewtConnectorOptions, type NewtCredentials } from "./options.js";
