export { type LocalConnector, type LocalConnectorOptions, localConnector } from "./local-connector.js";
