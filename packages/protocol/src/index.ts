/**
 * @sremote/protocol — the SRemote wire protocol v1 on the TypeScript side: the MessagePack value
 * codec (docs/protocol.md §1), message types and validation (§2), session framing, and tagged
 * JSON (§6). The shared test vectors in `vectors/` pin the bytes both sides produce.
 */

export { valuesEqual } from "./equal.js";
export {
  DEFAULT_MAX_FRAME_BYTES,
  encodeFrame,
  FrameDecoder,
  MAX_FRAME_HEADER_LENGTH,
  TICK_BATCH_MAX_BYTES,
  TickBatcher,
} from "./framing.js";
export {
  AGENT_MESSAGE_KINDS,
  type AgentInfo,
  type AgentMessage,
  type CallMessage,
  type CancelMessage,
  CLIENT_MESSAGE_KINDS,
  type ClientMessage,
  decodeAgentMessage,
  decodeClientMessage,
  encodeMessage,
  encodeMessageFrame,
  encodeMessageFrameParts,
  type HelloMessage,
  type OutputMessage,
  type PingMessage,
  type PongMessage,
  PROTOCOL_VERSION,
  type ProbeMessage,
  REMOTE_ERROR_KINDS,
  type RemoteErrorInfo,
  type ResultMessage,
  type ShutdownMessage,
  validateMessage,
} from "./messages.js";
export { dtypeItemSize, NDArray } from "./ndarray.js";
export { bytesToBase64, fromTaggedJson, parseIsoDate, TAG_NAMES, toTaggedJson } from "./tagged-json.js";
export {
  decodeValue,
  EXT_NDARRAY,
  EXT_SET,
  EXT_TIMESTAMP,
  encodeValue,
  keySegment,
  MAX_NESTING,
  SerializationError,
} from "./values.js";
