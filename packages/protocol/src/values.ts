/**
 * The value codec: TypeScript values ↔ MessagePack bytes, exactly as docs/protocol.md §1 says.
 * The encoder is in encode.ts, the decoder in decode.ts, what they share in value-format.ts.
 *
 * Hand-written rather than delegated to a general MessagePack library because the protocol's
 * rules are stricter than any library's defaults (smallest int format for every integer up to
 * 64 bits, float64 only, errors naming the path of an unencodable value, lone surrogates and
 * invalid UTF-8 rejected, `__proto__` kept as an own key, int-keyed maps decoded as `Map`,
 * canonical fixext headers, a nesting limit); docs/decisions/msgpack-library.md has the
 * measurements behind the choice.
 */
export { Decoder, decodeValue } from "./decode.js";
export {
  Encoder,
  type EncoderHole,
  encodeInto,
  encodeValue,
  HOLE_MIN,
  keySegment,
  SerializationError,
  toSerializationError,
  withEncoder,
} from "./encode.js";
export { EXT_NDARRAY, EXT_SET, EXT_TIMESTAMP, MAX_NESTING } from "./value-format.js";
