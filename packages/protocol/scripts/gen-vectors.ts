/**
 * Writes the shared test vectors, vectors/values.json and vectors/messages.json
 * (docs/protocol.md §5).
 *
 * values.json: every `hex` below is written by hand from the MessagePack spec (format bytes,
 * big-endian lengths, ext headers) — never taken from the encoder under test. Long payloads are
 * built with `rep()` (a repeated byte), which is still hand construction. The timestamp and
 * float bytes were also checked with Python's `struct` (see docs/decisions/msgpack-library.md).
 * The script then checks every vector against this package (decode → value; encode → hex for
 * canonical ones; errors fail with a ProtocolError) and refuses to write a file that disagrees.
 *
 * messages.json: the message maps are compositions of values already pinned by values.json, so
 * their hex comes from `encodeValue`; the vector test cross-checks it with msgpackr's decoder.
 *
 * Run: `pnpm --filter @sremote/protocol vectors` (or `npx tsx scripts/gen-vectors.ts`).
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ProtocolError } from "@sremote/core";
import {
  decodeAgentMessage,
  decodeClientMessage,
  decodeValue,
  encodeValue,
  fromTaggedJson,
  valuesEqual,
} from "../src/index.js";

export interface Vector {
  name: string;
  hex: string;
  value?: unknown;
  canonical?: boolean;
  error?: "protocol";
  note?: string;
  ts_hex?: string;
  ts_only?: boolean;
  py_only?: boolean;
  message?: boolean;
  direction?: "client" | "agent";
  error_key?: string;
}

const rep = (byteHex: string, n: number): string => byteHex.repeat(n);
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const seqHex = (n: number): string => {
  let s = "";
  for (let i = 0; i < n; i++) s += (i & 0xff).toString(16).padStart(2, "0");
  return s;
};
const seqB64 = (n: number): string => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = i & 0xff;
  return Buffer.from(b).toString("base64");
};
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const letters = (n: number): string[] => range(n).map((i) => String.fromCharCode(0x61 + i));
/** `{"a":0,"b":1,…}` and its hand-written entries (fixstr key, positive fixint value). */
const lettersMap = (n: number): [Record<string, number>, string] => [
  Object.fromEntries(letters(n).map((k, i) => [k, i])),
  letters(n)
    .map((k, i) => `a1${k.charCodeAt(0).toString(16)}${i.toString(16).padStart(2, "0")}`)
    .join(""),
];
const le = (bytes: ArrayBufferView): string => hexOf(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
const b64 = (bytes: ArrayBufferView): string =>
  Buffer.from(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString("base64");

const ok = (name: string, hex: string, value: unknown, extra: Partial<Vector> = {}): Vector => ({
  name,
  hex,
  value,
  canonical: true,
  ...extra,
});
const decodeOnly = (name: string, hex: string, value: unknown, note: string, extra: Partial<Vector> = {}): Vector => ({
  name,
  hex,
  value,
  canonical: false,
  note,
  ...extra,
});
const bad = (name: string, hex: string, note: string, extra: Partial<Vector> = {}): Vector => ({
  name,
  hex,
  error: "protocol",
  note,
  ...extra,
});

const [map15, map15hex] = lettersMap(15);
const [map16, map16hex] = lettersMap(16);

const f8x6 = new Float64Array([1, 2, 3, 4, 5, 6]);
const f8x40 = new Float64Array(range(40).map((i) => i / 2));

export const VALUE_VECTORS: Vector[] = [
  // nil, bool
  ok("nil", "c0", null),
  ok("bool/false", "c2", false),
  ok("bool/true", "c3", true),

  // ints: smallest format, boundaries of every format
  ok("int/fixint-0", "00", 0),
  ok("int/fixint-1", "01", 1),
  ok("int/fixint-max", "7f", 127),
  ok("int/uint8-min", "cc80", 128),
  ok("int/uint8-max", "ccff", 255),
  ok("int/uint16-min", "cd0100", 256),
  ok("int/uint16-max", "cdffff", 65535),
  ok("int/uint32-min", "ce00010000", 65536),
  ok("int/uint32-max", "ceffffffff", 4294967295),
  ok("int/uint64-min", "cf0000000100000000", 4294967296),
  ok("int/2^53-1", "cf001fffffffffffff", 9007199254740991, { note: "largest int TypeScript decodes as a number" }),
  ok("int/2^53", "cf0020000000000000", { $bigint: "9007199254740992" }, { note: "TypeScript decodes a bigint" }),
  ok("int/2^53+1", "cf0020000000000001", { $bigint: "9007199254740993" }),
  ok("int/2^63-1", "cf7fffffffffffffff", { $bigint: "9223372036854775807" }, { note: "non-negative: uint64" }),
  ok("int/2^63", "cf8000000000000000", { $bigint: "9223372036854775808" }),
  ok("int/uint64-max", "cfffffffffffffffff", { $bigint: "18446744073709551615" }),
  ok("int/negfixint-minus-1", "ff", -1),
  ok("int/negfixint-min", "e0", -32),
  ok("int/int8-minus-33", "d0df", -33),
  ok("int/int8-min", "d080", -128),
  ok("int/int16-minus-129", "d1ff7f", -129),
  ok("int/int16-min", "d18000", -32768),
  ok("int/int32-minus-32769", "d2ffff7fff", -32769),
  ok("int/int32-min", "d280000000", -2147483648),
  ok("int/int64-minus-2^31-1", "d3ffffffff7fffffff", -2147483649),
  ok("int/-(2^53-1)", "d3ffe0000000000001", -9007199254740991),
  ok("int/-2^53", "d3ffe0000000000000", { $bigint: "-9007199254740992" }),
  ok("int/-(2^53+1)", "d3ffdfffffffffffff", { $bigint: "-9007199254740993" }),
  ok("int/int64-min", "d38000000000000000", { $bigint: "-9223372036854775808" }),
  decodeOnly("int/uint8-holding-5", "cc05", 5, "non-canonical: 5 fits a positive fixint"),
  decodeOnly("int/uint16-holding-5", "cd0005", 5, "non-canonical"),
  decodeOnly("int/uint32-holding-5", "ce00000005", 5, "non-canonical"),
  decodeOnly("int/uint64-holding-5", "cf0000000000000005", 5, "non-canonical"),
  decodeOnly("int/int8-holding-5", "d005", 5, "non-canonical: signed format for a non-negative value"),
  decodeOnly("int/int8-minus-1", "d0ff", -1, "non-canonical"),
  decodeOnly("int/int16-minus-1", "d1ffff", -1, "non-canonical"),
  decodeOnly("int/int32-minus-1", "d2ffffffff", -1, "non-canonical"),
  decodeOnly("int/int64-minus-1", "d3ffffffffffffffff", -1, "non-canonical"),
  decodeOnly("int/int64-holding-2^32", "d30000000100000000", 4294967296, "non-canonical"),
  decodeOnly("int/int64-max", "d37fffffffffffffff", { $bigint: "9223372036854775807" }, "non-canonical: uint64 is"),

  // floats: always float64 on encode; float32 accepted on decode
  ok("float/0.5", "cb3fe0000000000000", 0.5),
  ok("float/-0.5", "cbbfe0000000000000", -0.5),
  ok("float/0.1", "cb3fb999999999999a", 0.1),
  ok("float/-0.0", "cb8000000000000000", { $float: "-0.0" }),
  ok(
    "float/1.0",
    "cb3ff0000000000000",
    { $float: "1.0" },
    {
      ts_hex: "01",
      note: "TypeScript has one number type: 1.0 decodes as 1 and encodes as the int 1",
    },
  ),
  ok("float/1e300", "cb7e37e43c8800759c", 1e300),
  ok(
    "float/2^60",
    "cb43b0000000000000",
    { $float: "1152921504606846976" },
    {
      note: "an integral float beyond 2^53: TypeScript's number 2**60 encodes as float64",
    },
  ),
  ok("float/max", "cb7fefffffffffffff", 1.7976931348623157e308),
  ok("float/min-subnormal", "cb0000000000000001", 5e-324),
  ok("float/nan", "cb7ff8000000000000", { $float: "NaN" }, { note: "the quiet NaN both languages produce" }),
  ok("float/infinity", "cb7ff0000000000000", { $float: "Infinity" }),
  ok("float/-infinity", "cbfff0000000000000", { $float: "-Infinity" }),
  decodeOnly("float32/1.5", "ca3fc00000", 1.5, "float32 is widened to float64"),
  decodeOnly("float32/1.0", "ca3f800000", { $float: "1.0" }, "float32"),
  decodeOnly("float32/-0.0", "ca80000000", { $float: "-0.0" }, "float32"),
  decodeOnly("float32/0.1", "ca3dcccccd", 0.10000000149011612, "float32 0.1 widened exactly"),
  decodeOnly("float32/infinity", "ca7f800000", { $float: "Infinity" }, "float32"),
  decodeOnly("float32/-infinity", "caff800000", { $float: "-Infinity" }, "float32"),
  decodeOnly("float32/nan", "ca7fc00000", { $float: "NaN" }, "float32"),

  // strings: length in UTF-8 bytes, smallest header
  ok("str/empty", "a0", ""),
  ok("str/a", "a161", "a"),
  ok("str/fixstr-max", `bf${rep("61", 31)}`, "a".repeat(31)),
  ok("str/str8-min", `d920${rep("61", 32)}`, "a".repeat(32)),
  ok("str/str8-max", `d9ff${rep("61", 255)}`, "a".repeat(255)),
  ok("str/str16-min", `da0100${rep("61", 256)}`, "a".repeat(256)),
  ok("str/str16-max", `daffff${rep("61", 65535)}`, "a".repeat(65535)),
  ok("str/str32-min", `db00010000${rep("61", 65536)}`, "a".repeat(65536)),
  ok("str/2-byte", "a2c3a9", "é"),
  ok("str/3-byte", "a3e282ac", "€"),
  ok("str/4-byte-emoji", "a4f09f9880", "😀"),
  ok("str/multibyte-fixstr-max", `bf${rep("e282ac", 10)}61`, `${"€".repeat(10)}a`, {
    note: "11 characters, 31 bytes",
  }),
  ok("str/multibyte-str8", `d921${rep("e282ac", 11)}`, "€".repeat(11), { note: "11 characters, 33 bytes: str8" }),
  ok("str/multibyte-long", `d9c8${rep("c3a9", 100)}`, "é".repeat(100)),
  ok("str/mixed", "b268c3a96c6c6f2077c3b6726c6420f09f9880", "héllo wörld 😀"),
  ok("str/nul", "a100", "\u0000"),
  ok("str/bom", "a3efbbbf", "\ufeff", { note: "a leading U+FEFF is kept, never stripped" }),
  ok("str/bom-long", `d93fefbbbf${rep("61", 60)}`, `\ufeff${"a".repeat(60)}`),
  ok("str/u+ffff", "a3efbfbf", "\uffff"),
  ok("str/u+10000", "a4f0908080", "\u{10000}"),
  ok("str/u+10ffff", "a4f48fbfbf", "\u{10ffff}"),
  decodeOnly("str/str8-holding-a", "d90161", "a", "non-canonical"),
  decodeOnly("str/str16-holding-a", "da000161", "a", "non-canonical"),
  decodeOnly("str/str32-holding-a", "db0000000161", "a", "non-canonical"),

  // bin
  ok("bin/empty", "c400", { $bytes: "" }),
  ok("bin/small", "c403010203", { $bytes: "AQID" }),
  ok("bin/bin8-max", `c4ff${seqHex(255)}`, { $bytes: seqB64(255) }),
  ok("bin/bin16-min", `c50100${seqHex(256)}`, { $bytes: seqB64(256) }),
  ok("bin/bin16-max", `c5ffff${seqHex(65535)}`, { $bytes: seqB64(65535) }),
  ok("bin/bin32-min", `c600010000${seqHex(65536)}`, { $bytes: seqB64(65536) }),
  decodeOnly("bin/bin16-holding-1", "c5000101", { $bytes: "AQ==" }, "non-canonical"),
  decodeOnly("bin/bin32-holding-1", "c60000000101", { $bytes: "AQ==" }, "non-canonical"),

  // arrays
  ok("array/empty", "90", []),
  ok("array/one", "9101", [1]),
  ok("array/fixarray-max", `9f${seqHex(15)}`, range(15)),
  ok("array/array16-min", `dc0010${seqHex(16)}`, range(16)),
  ok("array/array16-max", `dcffff${rep("00", 65535)}`, new Array(65535).fill(0)),
  ok("array/array32-min", `dd00010000${rep("00", 65536)}`, new Array(65536).fill(0)),
  ok("array/mixed", "96c0c301ffa161cb3fe0000000000000", [null, true, 1, -1, "a", 0.5]),
  ok("array/nested", "9401920292039104" + "90c0", [1, [2, [3, [4]]], [], null]),
  decodeOnly("array/array16-holding-1", "dc000101", [1], "non-canonical"),
  decodeOnly("array/array32-holding-1", "dd0000000101", [1], "non-canonical"),

  // maps
  ok("map/empty", "80", {}),
  ok("map/one", "81a16101", { a: 1 }),
  ok("map/fixmap-max", `8f${map15hex}`, map15),
  ok("map/map16-min", `de0010${map16hex}`, map16),
  ok("map/nested", "81a16181a1629201" + "81a163c0", { a: { b: [1, { c: null }] } }),
  ok("map/int-key", "8101a161", { $map: [[1, "a"]] }),
  ok(
    "map/mixed-keys",
    "82a1610102a162",
    {
      $map: [
        ["a", 1],
        [2, "b"],
      ],
    },
    {
      note: "one non-string key makes the whole map a Map in TypeScript",
    },
  ),
  ok("map/nil-key", "81c001", { $map: [[null, 1]] }),
  ok("map/bool-key", "81c3a174", { $map: [[true, "t"]] }),
  ok("map/bin-key", "81c4016101", { $map: [[{ $bytes: "YQ==" }, 1]] }),
  ok(
    "map/array-key",
    "819201" + "02a161",
    { $map: [[[1, 2], "a"]] },
    { note: "Python decodes the key as the tuple (1, 2)" },
  ),
  ok(
    "map/map-key",
    "8181a1610102",
    { $map: [[{ a: 1 }, 2]] },
    {
      ts_only: true,
      note: "a map as a key: a Map with an object key in TypeScript; unhashable in Python (see error/py-map-key)",
    },
  ),
  ok("map/proto-key", "81a95f5f70726f746f5f5f01", JSON.parse('{"__proto__": 1}'), {
    note: "an own property named __proto__, never the prototype",
  }),
  ok("map/proto-key-object", "81a95f5f70726f746f5f5f81a16101", JSON.parse('{"__proto__": {"a": 1}}')),
  ok("map/constructor-key", "81ab636f6e7374727563746f7201", { constructor: 1 }),
  ok("map/integer-like-key", "82a13102a16201", { "1": 2, b: 1 }),
  decodeOnly(
    "map/integer-like-key-late",
    "82a16201a13102",
    { "1": 2, b: 1 },
    "JavaScript objects list integer-like keys first, so TypeScript re-encodes this as 82a13102a16201; Python keeps the order",
  ),
  ok(
    "map/tag-like-key",
    "81a6246279746573a178",
    { $object: { $bytes: "x" } },
    {
      note: "a literal object whose only key is a tag name, wrapped in $object in tagged JSON",
    },
  ),
  ok("map/dollar-key", "81a4246f746801", { $oth: 1 }, { note: "$oth is no tag: taken literally" }),
  decodeOnly("map/duplicate-key", "82a16101a16102", { a: 2 }, "a repeated key: the last value wins"),
  decodeOnly("map/map16-holding-1", "de0001a16101", { a: 1 }, "non-canonical"),
  decodeOnly("map/map32-holding-1", "df00000001a16101", { a: 1 }, "non-canonical"),

  // timestamps (ext -1)
  ok("timestamp/32-epoch", "d6ff00000000", { $date: "1970-01-01T00:00:00Z" }),
  ok("timestamp/32-one-second", "d6ff00000001", { $date: "1970-01-01T00:00:01Z" }),
  ok("timestamp/32-max", "d6ffffffffff", { $date: "2106-02-07T06:28:15Z" }),
  ok("timestamp/64-1ms", "d7ff003d090000000000", { $date: "1970-01-01T00:00:00.001Z" }),
  ok("timestamp/64-ms", "d7ff1d5353005fee6600", { $date: "2021-01-01T00:00:00.123Z" }),
  ok(
    "timestamp/64-2^32-seconds",
    "d7ff0000000100000000",
    { $date: "2106-02-07T06:28:16Z" },
    {
      note: "no nanoseconds but seconds >= 2^32: 64-bit form",
    },
  ),
  ok("timestamp/64-max-seconds", "d7ff00000003ffffffff", { $date: "2514-05-30T01:53:03Z" }),
  ok("timestamp/64-max-seconds-ms", "d7ffee2e1f03ffffffff", { $date: "2514-05-30T01:53:03.999Z" }),
  ok("timestamp/96-2^34-seconds", "c70cff000000000000000400000000", { $date: "2514-05-30T01:53:04Z" }),
  ok("timestamp/96-minus-1s", "c70cff00000000ffffffffffffffff", { $date: "1969-12-31T23:59:59Z" }),
  ok("timestamp/96-minus-1ms", "c70cff3b8b87c0ffffffffffffffff", { $date: "1969-12-31T23:59:59.999Z" }),
  ok("timestamp/96-1900", "c70cff00000000ffffffff7c558180", { $date: "1900-01-01T00:00:00Z" }),
  ok("timestamp/96-1900-half", "c70cff1dcd6500ffffffff7c558180", { $date: "1900-01-01T00:00:00.500Z" }),
  decodeOnly(
    "timestamp/96-small",
    "c70cff000000000000000000000001",
    { $date: "1970-01-01T00:00:01Z" },
    "non-canonical",
  ),
  decodeOnly("timestamp/64-small", "d7ff0000000000000001", { $date: "1970-01-01T00:00:01Z" }, "non-canonical"),
  decodeOnly(
    "timestamp/64-1ns",
    "d7ff0000000400000000",
    { $date: "1970-01-01T00:00:00.000000001Z" },
    "below the precision of both languages: truncated",
  ),
  decodeOnly(
    "timestamp/64-sub-ms",
    "d7ff1d6f345400000000",
    { $date: "1970-01-01T00:00:00.123456789Z" },
    "TypeScript keeps .123, Python .123456",
  ),

  // ndarray (ext 1): payload [dtype, shape, "C", data]
  ok("ndarray/f8-2x3", `c73c0194a33c6638920203a143c430${le(f8x6)}`, {
    $ndarray: { dtype: "<f8", shape: [2, 3], data: b64(f8x6) },
  }),
  ok("ndarray/i4", "c7170194a33c69349103a143c40c01000000ffffffffffffff7f", {
    $ndarray: { dtype: "<i4", shape: [3], data: b64(new Int32Array([1, -1, 2147483647])) },
  }),
  ok("ndarray/b1", "c70e0194a37c62319103a143c403010001", {
    $ndarray: { dtype: "|b1", shape: [3], data: "AQAB" },
  }),
  ok("ndarray/i8", "c71b0194a33c69389102a143c4100100000000000000ffffffffffffffff", {
    $ndarray: { dtype: "<i8", shape: [2], data: b64(new BigInt64Array([1n, -1n])) },
  }),
  ok("ndarray/f4", "c7130194a33c66349102a143c4080000c03f000000c0", {
    $ndarray: { dtype: "<f4", shape: [2], data: b64(new Float32Array([1.5, -2])) },
  }),
  ok("ndarray/0-d", "c7120194a33c663890a143c4080000000000000c40", {
    $ndarray: { dtype: "<f8", shape: [], data: b64(new Float64Array([3.5])) },
  }),
  ok("ndarray/empty", "c70b0194a33c66389100a143c400", { $ndarray: { dtype: "<f8", shape: [0], data: "" } }),
  ok("ndarray/2x0", "c70c0194a33c6934920200a143c400", { $ndarray: { dtype: "<i4", shape: [2, 0], data: "" } }),
  ok(
    "ndarray/c16-raw",
    "c71c0194a43c6331369101a143c410000000000000f03f0000000000000040",
    {
      $ndarray: { dtype: "<c16", shape: [1], data: b64(new Float64Array([1, 2])) },
    },
    { note: "complex128 1+2j: raw bytes (Uint8Array) in TypeScript" },
  ),
  ok(
    "ndarray/unicode-raw",
    "c7130194a33c55329101a143c4086100000062000000",
    {
      $ndarray: { dtype: "<U2", shape: [1], data: b64(new Uint32Array([0x61, 0x62])) },
    },
    { note: '"ab" as numpy <U2: 4 bytes per character' },
  ),
  ok("ndarray/datetime64-raw", "c7160194a63c4d385b735d9101a143c4080000000000000000", {
    $ndarray: { dtype: "<M8[s]", shape: [1], data: "AAAAAAAAAAA=" },
  }),
  ok(
    "ndarray/u1-fixext16",
    "d80194a37c75319105a143c4050102030405",
    {
      $ndarray: { dtype: "|u1", shape: [5], data: "AQIDBAU=" },
    },
    { note: "a 16-byte payload takes the fixext 16 header" },
  ),
  ok(
    "ndarray/ext16",
    `c8014c0194a33c66389128a143c50140${le(f8x40)}`,
    {
      $ndarray: { dtype: "<f8", shape: [40], data: b64(f8x40) },
    },
    { note: "332-byte payload: ext 16 header" },
  ),

  // set (ext 2): payload = array of the elements
  ok("set/empty", "d40290", { $set: [] }, { note: "1-byte payload: fixext 1" }),
  ok("set/one", "d5029101", { $set: [1] }, { note: "2-byte payload: fixext 2" }),
  ok("set/two", "c70302920102", { $set: [1, 2] }, { note: "3-byte payload: ext 8" }),
  ok("set/three", "d60293010203", { $set: [1, 2, 3] }, { note: "4-byte payload: fixext 4" }),
  ok("set/fifteen", `d8029f${seqHex(15)}`, { $set: range(15) }, { note: "16-byte payload: fixext 16" }),
  ok("set/str", "c7030291a161", { $set: ["a"] }),
  ok("set/in-map", "81a173d5029101", { s: { $set: [1] } }),

  // nesting limit: 512 levels of arrays/maps/sets
  ok("nesting/512-arrays", `${rep("91", 511)}90`, nestArrays(512)),
  ok("nesting/512-maps", `${rep("81a0", 511)}80`, nestMaps(512)),

  // errors
  bad("error/empty", "", "no bytes at all"),
  bad("error/reserved-c1", "c1", "0xc1 is never used"),
  bad("error/trailing-bytes", "c0c0", "one value, then more bytes"),
  bad("error/truncated-str", "a36162", "str of 3 bytes with 2"),
  bad("error/truncated-uint16", "cd01", "uint16 with 1 byte"),
  bad("error/truncated-uint64", "cf00000000", "uint64 with 4 bytes"),
  bad("error/truncated-float64", "cb3ff0", "float64 with 2 bytes"),
  bad("error/truncated-array", "9201", "array of 2 with 1 element"),
  bad("error/truncated-map", "81a161", "map with a key and no value"),
  bad("error/truncated-bin", "c4050102", "bin of 5 with 2 bytes"),
  bad("error/truncated-ext", "d6ff0000", "fixext 4 with 2 bytes"),
  bad("error/huge-array-length", "ddffffffff", "array32 claiming 4 billion elements, none present"),
  bad("error/huge-str-length", "dbffffffff61", "str32 claiming 4 GiB"),
  bad("error/unknown-ext-5", "d40500", "ext type 5 is not defined"),
  bad("error/unknown-ext-0", "d40000", "ext type 0 is not defined"),
  bad("error/unknown-ext-minus-2", "d4fe00", "ext type -2 is not defined"),
  bad("error/utf8-invalid-byte", "a1ff", "0xff never appears in UTF-8"),
  bad("error/utf8-lone-continuation", "a180", "continuation byte without a lead"),
  bad("error/utf8-truncated-sequence", "a1c3", "2-byte sequence cut short"),
  bad("error/utf8-bad-continuation", "a2c328", "lead byte followed by ASCII"),
  bad("error/utf8-overlong-2", "a2c0af", "overlong encoding of '/'"),
  bad("error/utf8-overlong-3", "a3e080af", "overlong encoding of '/'"),
  bad("error/utf8-surrogate", "a3eda080", "U+D800 encoded (CESU-8), not valid UTF-8"),
  bad("error/utf8-above-10ffff", "a4f4908080", "code point above U+10FFFF"),
  bad("error/utf8-invalid-long", `d93c${rep("61", 30)}ff${rep("61", 29)}`, "a long string with 0xff inside"),
  bad("error/timestamp-ns-too-large-64", "d7ffee6b280000000000", "nanoseconds = 10^9"),
  bad("error/timestamp-ns-too-large-96", "c70cff3b9aca000000000000000000", "nanoseconds = 10^9"),
  bad("error/timestamp-length-1", "d4ff00", "timestamp ext must be 4, 8 or 12 bytes"),
  bad("error/timestamp-length-2", "d5ff0000", "timestamp ext must be 4, 8 or 12 bytes"),
  bad(
    "error/ndarray-wrong-byte-length",
    "c7120194a33c66389102a143c4080000000000000000",
    "<f8 shape [2] needs 16 bytes, has 8",
  ),
  bad(
    "error/ndarray-big-endian",
    "c7120194a33e66389101a143c4080000000000000000",
    "dtype >f8: the wire is little-endian",
  ),
  bad("error/ndarray-order-f", "c7120194a33c66389101a146c4080000000000000000", 'order must be "C"'),
  bad("error/ndarray-object-dtype", "c7110194a27c4f9101a143c4080000000000000000", "dtype |O (object) cannot travel"),
  bad("error/ndarray-three-items", "c7100193a33c66389101c4080000000000000000", "payload must have 4 items"),
  bad("error/ndarray-not-array", "d401c0", "payload must be an array"),
  bad("error/ndarray-negative-shape", "c70b0194a33c663891ffa143c400", "shape entries are non-negative"),
  bad("error/ndarray-data-not-bin", "c70d0194a33c66389100a143a200", "data must be bin"),
  bad("error/set-not-array", "d402c0", "set payload must be an array"),
  bad("error/set-trailing", "d5029000", "set payload: an array, then a stray byte"),
  bad("error/nesting-513-arrays", `${rep("91", 512)}90`, "513 levels"),
  bad("error/nesting-513-maps", `${rep("81a0", 512)}80`, "513 levels"),
  ok("nesting/512-with-set", `${rep("91", 511)}d40290`, nestWith(511, { $set: [] }), {
    note: "a set is one level: 511 arrays around a set is 512 levels",
  }),
  bad("error/nesting-513-with-set", `${rep("91", 512)}d40290`, "512 arrays around a set: 513 levels"),
  bad("error/py-map-key", "8181a1610102", "a map as a map key is unhashable in Python", { py_only: true }),
];

function nestArrays(levels: number): unknown {
  let v: unknown = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
}

function nestMaps(levels: number): unknown {
  let v: unknown = {};
  for (let i = 1; i < levels; i++) v = { "": v };
  return v;
}

function nestWith(arrays: number, inner: unknown): unknown {
  let v = inner;
  for (let i = 0; i < arrays; i++) v = [v];
  return v;
}

// ---------------------------------------------------------------------------------------------
// messages

const AGENT = {
  version: "0.1.0",
  protocol: 1,
  python: "3.11.7",
  implementation: "CPython",
  executable: "/usr/bin/python3",
  codec: "c",
  numpy: "1.26.4",
  pid: 4242,
  host: "nid001234",
  workers: 1,
  maxFrameBytes: 268435456,
};

type Msg = Record<string, unknown>;
const goodMsg = (name: string, direction: "client" | "agent", value: Msg, extra: Partial<Vector> = {}): Vector => ({
  name,
  message: true,
  direction,
  hex: hexOf(encodeValue(fromTaggedJson(value))),
  value,
  canonical: true,
  ...extra,
});
const badMsg = (
  name: string,
  direction: "client" | "agent",
  value: unknown,
  errorKey: string | undefined,
  note: string,
): Vector => ({
  name,
  message: true,
  direction,
  hex: hexOf(encodeValue(fromTaggedJson(value))),
  value,
  error: "protocol",
  ...(errorKey === undefined ? {} : { error_key: errorKey }),
  note,
});

const CALL = { v: 1, kind: "call", id: "c1", module: "math", function: "sqrt", args: [2] };
const RESULT_OK = { v: 1, kind: "result", id: "c1", ok: true, value: Math.SQRT2, stdout: "", stderr: "" };

export const MESSAGE_VECTORS: Vector[] = [
  goodMsg("call/minimal", "client", CALL),
  goodMsg("call/no-args", "client", { v: 1, kind: "call", id: "c2", module: "os", function: "getcwd" }),
  goodMsg("call/full", "client", {
    v: 1,
    kind: "call",
    id: "0123456789abcdef0123456789abcdef",
    module: "qdo",
    function: "Queue.valid_name",
    args: ["x", 1, { $bytes: "AQID" }],
    kwargs: { flag: true, when: { $date: "2024-05-06T07:08:09.010Z" }, items: { $set: [1] } },
    env: { QDO_DB: "/tmp/q.db" },
    envDefault: { LANG: "C.UTF-8" },
    pathAppend: ["/opt/bin"],
    requires: ["qdo", "numpy"],
    cwd: "/scratch/me",
    stream: true,
    outputLimit: 1048576,
  }),
  goodMsg("call/unknown-key", "client", { ...CALL, future: { anything: [1] } }, { note: "unknown keys are ignored" }),
  goodMsg(
    "call/nil-optional",
    "client",
    { ...CALL, kwargs: null, env: null },
    {
      note: "an optional key holding nil counts as absent",
    },
  ),
  goodMsg("call/kwargs-proto", "client", { ...CALL, kwargs: JSON.parse('{"__proto__": 1}') }),
  goodMsg("probe", "client", { v: 1, kind: "probe", id: "p1", requires: ["numpy", "scipy"] }),
  goodMsg("cancel", "client", { v: 1, kind: "cancel", id: "c1" }),
  goodMsg("ping", "client", { v: 1, kind: "ping", id: "k1" }),
  goodMsg("shutdown", "client", { v: 1, kind: "shutdown" }),
  goodMsg("shutdown/with-id", "client", { v: 1, kind: "shutdown", id: "s1" }),
  goodMsg("hello", "agent", { v: 1, kind: "hello", agent: AGENT }),
  goodMsg("hello/pure-no-numpy", "agent", {
    v: 1,
    kind: "hello",
    agent: { ...AGENT, codec: "pure", numpy: null, python: "3.8.10", workers: 4 },
  }),
  goodMsg("result/ok", "agent", RESULT_OK),
  goodMsg("result/ok-full", "agent", {
    v: 1,
    kind: "result",
    id: "c1",
    ok: true,
    value: { rows: [[1, "a"]], big: { $bigint: "18446744073709551615" }, nan: { $float: "NaN" } },
    stdout: "hello\n",
    stderr: "warning\n",
    truncated: false,
    modules: { numpy: "1.26.4", scipy: null, localmod: "" },
    durationNs: 1234567,
    agent: AGENT,
  }),
  goodMsg("result/ok-nil-value", "agent", { ...RESULT_OK, value: null }),
  goodMsg("result/exception", "agent", {
    v: 1,
    kind: "result",
    id: "c1",
    ok: false,
    error: {
      kind: "exception",
      type: "ValueError",
      message: "math domain error",
      traceback: 'Traceback (most recent call last):\n  File "<x>", line 1\nValueError: math domain error\n',
    },
    stdout: "",
    stderr: "",
    durationNs: 1000,
  }),
  goodMsg("result/serialization", "agent", {
    v: 1,
    kind: "result",
    id: "c1",
    ok: false,
    error: {
      kind: "serialization",
      type: "TypeError",
      message: "cannot encode Owner object",
      traceback: "",
      path: "result[3].owner",
    },
    stdout: "",
    stderr: "",
  }),
  goodMsg("result/cancelled", "agent", {
    v: 1,
    kind: "result",
    id: "c1",
    ok: false,
    error: { kind: "cancelled", type: "Cancelled", message: "cancelled before it started", traceback: "" },
    stdout: "",
    stderr: "",
  }),
  goodMsg("result/protocol-no-call", "agent", {
    v: 1,
    kind: "result",
    id: "",
    ok: false,
    error: { kind: "protocol", type: "ProtocolError", message: "undecodable frame", traceback: "" },
    stdout: "",
    stderr: "",
  }),
  goodMsg("result/truncated", "agent", { ...RESULT_OK, stdout: "x".repeat(40), truncated: true }),
  goodMsg("output", "agent", { v: 1, kind: "output", id: "c1", stream: "stdout", data: "line 1\n" }),
  goodMsg("output/stderr", "agent", { v: 1, kind: "output", id: "c1", stream: "stderr", data: "oops\n" }),
  goodMsg("pong", "agent", { v: 1, kind: "pong", id: "k1" }),

  badMsg(
    "invalid/call-missing-id",
    "client",
    { v: 1, kind: "call", module: "m", function: "f" },
    "id",
    "id is required",
  ),
  badMsg(
    "invalid/call-missing-module",
    "client",
    { v: 1, kind: "call", id: "c", function: "f" },
    "module",
    "module is required",
  ),
  badMsg(
    "invalid/call-id-int",
    "client",
    { v: 1, kind: "call", id: 5, module: "m", function: "f" },
    "id",
    "id must be a string",
  ),
  badMsg("invalid/call-args-string", "client", { ...CALL, args: "x" }, "args", "args must be an array"),
  badMsg("invalid/call-args-map", "client", { ...CALL, args: { a: 1 } }, "args", "args must be an array"),
  badMsg("invalid/call-kwargs-array", "client", { ...CALL, kwargs: [1] }, "kwargs", "kwargs must be a map"),
  badMsg(
    "invalid/call-kwargs-int-keys",
    "client",
    { ...CALL, kwargs: { $map: [[1, 2]] } },
    "kwargs",
    "kwargs keys must be strings",
  ),
  badMsg("invalid/call-env-value-int", "client", { ...CALL, env: { A: 1 } }, "env", "env values must be strings"),
  badMsg(
    "invalid/call-path-append-int",
    "client",
    { ...CALL, pathAppend: [1] },
    "pathAppend",
    "pathAppend holds strings",
  ),
  badMsg("invalid/call-stream-string", "client", { ...CALL, stream: "yes" }, "stream", "stream is a bool"),
  badMsg(
    "invalid/call-output-limit-negative",
    "client",
    { ...CALL, outputLimit: -1 },
    "outputLimit",
    "outputLimit >= 0",
  ),
  badMsg(
    "invalid/call-output-limit-float",
    "client",
    { ...CALL, outputLimit: 1.5 },
    "outputLimit",
    "outputLimit is an int",
  ),
  badMsg("invalid/unknown-kind", "client", { v: 1, kind: "frobnicate", id: "x" }, "kind", "no such kind"),
  badMsg("invalid/agent-kind-from-client", "client", { ...RESULT_OK }, "kind", "a result is not a client message"),
  badMsg("invalid/client-kind-from-agent", "agent", CALL, "kind", "a call is not an agent message"),
  badMsg("invalid/v2", "client", { ...CALL, v: 2 }, "v", "protocol version 2"),
  badMsg("invalid/v-missing", "client", { kind: "ping", id: "k" }, "v", "v is required"),
  badMsg("invalid/v-string", "client", { v: "1", kind: "ping", id: "k" }, "v", "v is an int"),
  badMsg("invalid/kind-missing", "client", { v: 1, id: "k" }, "kind", "kind is required"),
  badMsg("invalid/kind-int", "agent", { v: 1, kind: 3 }, "kind", "kind is a string"),
  badMsg("invalid/not-a-map", "client", [1, "call"], undefined, "a message is a map"),
  badMsg("invalid/int-top-level", "agent", 5, undefined, "a message is a map"),
  badMsg(
    "invalid/non-string-keys",
    "client",
    {
      $map: [
        [1, "call"],
        ["v", 1],
      ],
    },
    undefined,
    "message keys are strings",
  ),
  badMsg(
    "invalid/probe-requires-missing",
    "client",
    { v: 1, kind: "probe", id: "p" },
    "requires",
    "requires is required",
  ),
  badMsg("invalid/ping-missing-id", "client", { v: 1, kind: "ping" }, "id", "id is required"),
  badMsg("invalid/result-ok-string", "agent", { ...RESULT_OK, ok: "yes" }, "ok", "ok is a bool"),
  badMsg(
    "invalid/result-missing-stdout",
    "agent",
    { v: 1, kind: "result", id: "c", ok: true, stderr: "" },
    "stdout",
    "stdout is required",
  ),
  badMsg("invalid/result-error-missing", "agent", { ...RESULT_OK, ok: false }, "error", "ok false needs error"),
  badMsg(
    "invalid/result-error-kind",
    "agent",
    {
      ...RESULT_OK,
      ok: false,
      error: { kind: "weird", type: "X", message: "m", traceback: "" },
    },
    "kind",
    "unknown error kind",
  ),
  badMsg(
    "invalid/result-modules-int",
    "agent",
    { ...RESULT_OK, modules: { numpy: 1 } },
    "modules",
    "module versions are strings or nil",
  ),
  badMsg(
    "invalid/result-duration-negative",
    "agent",
    { ...RESULT_OK, durationNs: -5 },
    "durationNs",
    "durationNs >= 0",
  ),
  badMsg(
    "invalid/output-stream-stdin",
    "agent",
    { v: 1, kind: "output", id: "c", stream: "stdin", data: "" },
    "stream",
    "stdout or stderr",
  ),
  badMsg("invalid/hello-missing-agent", "agent", { v: 1, kind: "hello" }, "agent", "agent is required"),
  badMsg(
    "invalid/hello-pid-string",
    "agent",
    { v: 1, kind: "hello", agent: { ...AGENT, pid: "42" } },
    "pid",
    "pid is an int",
  ),
  badMsg(
    "invalid/hello-codec",
    "agent",
    { v: 1, kind: "hello", agent: { ...AGENT, codec: "rust" } },
    "codec",
    '"c" or "pure"',
  ),
  {
    name: "invalid/truncated-bytes",
    message: true,
    direction: "client",
    hex: hexOf(encodeValue(CALL)).slice(0, -4),
    error: "protocol",
    note: "a call cut short: not even MessagePack",
  },
  {
    name: "invalid/trailing-bytes",
    message: true,
    direction: "agent",
    hex: `${hexOf(encodeValue({ v: 1, kind: "pong", id: "k" }))}c0`,
    error: "protocol",
    note: "a valid pong followed by a stray nil",
  },
];

// ---------------------------------------------------------------------------------------------
// Checks, then write

/** Checks one vector against this package; returns a problem description or undefined. */
export function checkVector(v: Vector): string | undefined {
  if (v.py_only) return undefined;
  const bytes = Buffer.from(v.hex, "hex");
  const decode = (): unknown =>
    v.message
      ? v.direction === "client"
        ? decodeClientMessage(bytes)
        : decodeAgentMessage(bytes)
      : decodeValue(bytes);
  if (v.error !== undefined) {
    try {
      decode();
    } catch (e) {
      if (!(e instanceof ProtocolError)) return `expected a ProtocolError, got ${String(e)}`;
      if (v.error_key !== undefined && !e.message.includes(`"${v.error_key}"`)) {
        return `error does not name key "${v.error_key}": ${e.message}`;
      }
      return undefined;
    }
    return "decoded without error";
  }
  const expected = fromTaggedJson(v.value);
  let got: unknown;
  try {
    // Messages: validation must pass, and the value compared is the raw decoded map.
    if (v.message) decode();
    got = decodeValue(bytes);
  } catch (e) {
    return `decode failed: ${String(e)}`;
  }
  if (!valuesEqual(got, expected)) return "decoded value differs from the vector's value";
  if (v.canonical) {
    const hex = Buffer.from(encodeValue(expected)).toString("hex");
    const want = v.ts_hex ?? v.hex;
    if (hex !== want) return `encodes to ${hex.slice(0, 120)}, want ${want.slice(0, 120)}`;
  }
  return undefined;
}

function write(file: string, vectors: Vector[]): void {
  const names = new Set<string>();
  const problems: string[] = [];
  for (const v of vectors) {
    if (names.has(v.name)) problems.push(`${v.name}: duplicate name`);
    names.add(v.name);
    const p = checkVector(v);
    if (p !== undefined) problems.push(`${v.name}: ${p}`);
  }
  if (problems.length > 0) {
    console.error(problems.join("\n"));
    process.exitCode = 1;
    return;
  }
  const text = `[\n${vectors.map((v) => JSON.stringify(v)).join(",\n")}\n]\n`;
  writeFileSync(fileURLToPath(new URL(`../vectors/${file}`, import.meta.url)), text);
  console.log(`${file}: ${vectors.length} vectors`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  write("values.json", VALUE_VECTORS);
  write("messages.json", MESSAGE_VECTORS);
}
