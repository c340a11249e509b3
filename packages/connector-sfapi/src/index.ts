export {
  type MarkerResult,
  parseMarker,
  type SideStep,
  type WrappedCommand,
  type WrapperInput,
  wrapCommand,
} from "./command.js";
export { SFAPI_CAPABILITIES, type SfapiConnector, sfapiConnector } from "./connector.js";
export {
  DEFAULT_SFAPI_TOKEN_URL,
  DEFAULT_SFAPI_URL,
  type SfapiConnectorOptions,
  type SfapiRetryOptions,
} from "./options.js";
