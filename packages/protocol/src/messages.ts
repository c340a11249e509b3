/**
 * Protocol messages (docs/spec-protocol.md "Messages", docs/protocol.md §2): their types, their
 * encoding, and the validation applied when decoding them.
 *
 * Validation (docs/protocol.md §5): a message is a map with string keys; `v` must be 1; `kind`
 * must be one this direction knows; every required key must be present with the right type and
 * every optional key, when present and not nil, too (nil counts as absent). Unknown keys are
 * ignored (kept on the returned object). Failures are `ProtocolError`s naming the key.
 */
import { PROTOCOL_VERSION, ProtocolError, type RemoteExecKind, UsageError } from "@sremote/core";
import { copyBytes } from "./bytes.js";
import { DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_HEADER_LENGTH } from "./framing.js";
import { Decoder, decodeValue, encodeInto, HOLE_MIN, withEncoder } from "./values.js";

/** The protocol version this package speaks (`v` of every message): core's {@link PROTOCOL_VERSION}. */
export { PROTOCOL_VERSION };

/** Common keys of every message. */
interface MessageBase {
  v: 1;
}

/** Run a function remotely (client → agent). */
export interface CallMessage extends MessageBase {
  kind: "call";
  /** Unique per call in a session (client-generated). */
  id: string;
  /** Importable module path (`os.path`). */
  module: string;
  /** Attribute path inside the module (`Queue.valid_name`). */
  function: string;
  /** Positional arguments. */
  args?: unknown[];
  /** Keyword arguments. */
  kwargs?: Record<string, unknown>;
  /** Environment variables set for this call. */
  env?: Record<string, string>;
  /** Environment variables set only where unset. */
  envDefault?: Record<string, string>;
  /** Folders appended to `PATH`. */
  pathAppend?: string[];
  /** Modules whose installed versions the result reports (`modules`). */
  requires?: string[];
  /** Working directory for this call. */
  cwd?: string;
  /** Emit `output` frames while running (session carrier). */
  stream?: boolean;
  /** Per-stream cap on captured stdout/stderr, in bytes (agent default 8 MiB). */
  outputLimit?: number;
  /**
   * The call's time budget in milliseconds (0 or absent: none). The file carrier's agent ends
   * the call and its processes when it runs out — a backstop for a call whose client is gone;
   * the session carrier's agent ignores it (the client cancels there).
   */
  timeoutMs?: number;
}

/** Ask for module versions without running anything (client → agent). */
export interface ProbeMessage extends MessageBase {
  kind: "probe";
  id: string;
  requires: string[];
}

/** Cancel a call (client → agent). */
export interface CancelMessage extends MessageBase {
  kind: "cancel";
  id: string;
}

/** Liveness check (client → agent); answered by a `pong` with the same id. */
export interface PingMessage extends MessageBase {
  kind: "ping";
  id: string;
}

/** Finish running and queued calls, then exit 0 (client → agent). */
export interface ShutdownMessage extends MessageBase {
  kind: "shutdown";
  id?: string;
}

/** Every message a client sends. */
export type ClientMessage = CallMessage | ProbeMessage | CancelMessage | PingMessage | ShutdownMessage;

/** The agent's description of itself (`hello.agent`, `result.agent`, `interpreter.sh --info`). */
export interface AgentInfo {
  /** The agent's own version (semver). */
  version: string;
  /** The protocol version it speaks. */
  protocol: number;
  /** Python version (`3.11.7`). */
  python: string;
  /** `CPython`, `PyPy`… */
  implementation: string;
  /** `sys.executable`. */
  executable?: string;
  /** Which MessagePack codec the agent uses: the `msgpack` C extension or the bundled pure-Python one. */
  codec: "c" | "pure";
  /** numpy's version, `null` when numpy is not importable. */
  numpy?: string | null;
  pid: number;
  host: string;
  /** Concurrent calls the agent runs. */
  workers?: number;
  /** The agent's frame size limit. */
  maxFrameBytes?: number;
}

/** First frame of a session (agent → client). */
export interface HelloMessage extends MessageBase {
  kind: "hello";
  agent: AgentInfo;
}

/** How a call failed (`result.error`). */
export interface RemoteErrorInfo {
  kind: RemoteExecKind;
  /** Python exception class name. */
  type: string;
  message: string;
  traceback: string;
  /** For `serialization` errors: where the unencodable value is (`result[3].owner`). */
  path?: string;
}

/** A call's outcome (agent → client). */
export interface ResultMessage extends MessageBase {
  kind: "result";
  /** The call's id (`""` for an error concerning no call). */
  id: string;
  ok: boolean;
  /** The return value when `ok`. */
  value?: unknown;
  /** Why the call failed, when not `ok`. */
  error?: RemoteErrorInfo;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr was cut at `outputLimit`. */
  truncated?: boolean;
  /** Version of each `requires` module; `null` when not importable, `""` when importable but unversioned. */
  modules?: Record<string, string | null>;
  /** Time spent in the function, nanoseconds. */
  durationNs?: number;
  /** The agent's self-description (always sent by the file carrier). */
  agent?: AgentInfo;
}

/** Output of a streaming call while it runs (agent → client). */
export interface OutputMessage extends MessageBase {
  kind: "output";
  id: string;
  stream: "stdout" | "stderr";
  data: string;
}

/** Answer to a `ping` (agent → client). */
export interface PongMessage extends MessageBase {
  kind: "pong";
  id: string;
}

/** Every message an agent sends. */
export type AgentMessage = HelloMessage | ResultMessage | OutputMessage | PongMessage;

/** Every message kind, by direction. */
export const CLIENT_MESSAGE_KINDS = ["call", "probe", "cancel", "ping", "shutdown"] as const;
export const AGENT_MESSAGE_KINDS = ["hello", "result", "output", "pong"] as const;

/** `result.error.kind` values. */
export const REMOTE_ERROR_KINDS: readonly RemoteExecKind[] = [
  "import",
  "attribute",
  "exception",
  "serialization",
  "protocol",
  "internal",
  "cancelled",
];

// ---------------------------------------------------------------------------------------------
// Encoding

/** Path root for a message key in encode errors: a result's `value` is `result`, as on the agent side. */
function rootFor(key: string): string {
  return key === "value" ? "result" : key;
}

function writeMessage(enc: Parameters<Parameters<typeof withEncoder>[0]>[0], msg: object): void {
  if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
    throw new UsageError("a message must be an object with v and kind");
  }
  const record = msg as Record<string, unknown>;
  // One pass over the keys, leaving room for a fixmap header (a message has fewer than 16
  // keys; more move the body 2 bytes to make room for a map16 header).
  enc.ensure(1);
  const start = enc.pos++;
  let count = 0;
  for (const key of Object.keys(record)) {
    const value = record[key];
    if (value === undefined) continue;
    count++;
    encodeInto(enc, key, "<key>");
    encodeInto(enc, value, rootFor(key), 1);
  }
  if (count < 16) {
    enc.buf[start] = 0x80 | count;
  } else {
    enc.ensure(2);
    enc.buf.copyWithin(start + 3, start + 1, enc.pos);
    enc.shiftHoles(start + 1, 2);
    enc.pos += 2;
    enc.buf[start] = 0xde;
    enc.buf[start + 1] = count >>> 8;
    enc.buf[start + 2] = count & 0xff;
  }
}

/**
 * Encodes a message as one MessagePack map. Keys whose value is `undefined` are left out.
 * @throws SerializationError (UsageError) naming the path of an unencodable value, e.g. `args[1].x`.
 */
export function encodeMessage(msg: ClientMessage | AgentMessage): Uint8Array {
  return withEncoder((enc) => {
    writeMessage(enc, msg);
    return enc.take();
  });
}

/**
 * Encodes a message directly as a frame (4-byte length + payload), saving a copy.
 *
 * With `pooled: true`, a small frame may be a view into a memory pool shared with other small
 * buffers (Node's `Buffer` pool), which costs much less than a buffer of its own: for a frame
 * written to a stream at once and not kept.
 * @throws SerializationError as {@link encodeMessage}; UsageError when over `maxFrameBytes`.
 */
export function encodeMessageFrame(
  msg: ClientMessage | AgentMessage,
  options: { maxFrameBytes?: number; pooled?: boolean } = {},
): Uint8Array {
  const max = Math.min(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_HEADER_LENGTH);
  return withEncoder((enc) => {
    enc.ensure(4);
    enc.pos = 4;
    writeMessage(enc, msg);
    const n = enc.pos - 4;
    if (n > max) throw new UsageError(`message of ${n} bytes exceeds the frame limit of ${max} bytes`);
    enc.view.setUint32(0, n);
    return options.pooled === true ? enc.takePooled() : enc.take();
  });
}

/**
 * Encodes a message as a frame in parts to be written in order: like
 * {@link encodeMessageFrame}, except that bins and ndarray data of 64 KiB or more are not
 * copied — they are parts of their own, the caller's memory itself (so they must not change
 * until written). One part when there are none: a 64 MiB argument then costs no 64 MiB buffer
 * and no copy on this side.
 * @throws as {@link encodeMessageFrame}.
 */
export function encodeMessageFrameParts(
  msg: ClientMessage | AgentMessage,
  options: { maxFrameBytes?: number } = {},
): Uint8Array[] {
  const max = Math.min(options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES, MAX_FRAME_HEADER_LENGTH);
  return withEncoder((enc) => {
    const holes = enc.spareHoles;
    holes.length = 0;
    enc.holes = holes;
    enc.holeBytes = 0;
    try {
      enc.ensure(4);
      enc.pos = 4;
      writeMessage(enc, msg);
      const n = enc.pos - 4 + enc.holeBytes;
      if (n > max) throw new UsageError(`message of ${n} bytes exceeds the frame limit of ${max} bytes`);
      enc.view.setUint32(0, n);
      if (holes.length === 0) return [enc.takePooled()];
      const parts: Uint8Array[] = [];
      let from = 0;
      for (const h of holes) {
        if (h.at > from) parts.push(copyBytes(enc.buf.subarray(from, h.at)));
        parts.push(h.bytes);
        from = h.at;
      }
      if (enc.pos > from) parts.push(copyBytes(enc.buf.subarray(from, enc.pos)));
      return parts;
    } finally {
      holes.length = 0; // keeps no reference to the caller's bytes
      enc.holes = null;
      enc.holeBytes = 0;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Decoding and validation

type Rec = Record<string, unknown>;

class Check {
  constructor(
    readonly obj: Rec,
    readonly what: string,
  ) {}

  fail(key: string, problem: string): never {
    throw new ProtocolError(`invalid ${this.what}: key "${key}" ${problem}`);
  }

  private has(key: string, required: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined || (v === null && !required)) {
      if (required) this.fail(key, "is missing");
      if (v === null) delete this.obj[key];
      return false;
    }
    return true;
  }

  str(key: string, required = true): void {
    if (this.has(key, required) && typeof this.obj[key] !== "string")
      this.fail(key, `must be a string (got ${describe(this.obj[key])})`);
  }

  bool(key: string, required = true): void {
    if (this.has(key, required) && typeof this.obj[key] !== "boolean")
      this.fail(key, `must be a bool (got ${describe(this.obj[key])})`);
  }

  int(key: string, required = true, min = Number.MIN_SAFE_INTEGER): void {
    if (!this.has(key, required)) return;
    const v = this.obj[key];
    if (typeof v === "bigint") this.fail(key, `must be an integer within ±(2^53 − 1) (got ${v})`);
    if (typeof v !== "number" || !Number.isInteger(v)) this.fail(key, `must be an integer (got ${describe(v)})`);
    if (v < min) this.fail(key, `must be at least ${min} (got ${v})`);
  }

  oneOf(key: string, values: readonly string[], required = true): void {
    if (!this.has(key, required)) return;
    const v = this.obj[key];
    if (typeof v !== "string" || !values.includes(v)) {
      this.fail(key, `must be one of ${values.map((x) => JSON.stringify(x)).join(", ")} (got ${describe(v)})`);
    }
  }

  strArray(key: string, required = true): void {
    if (!this.has(key, required)) return;
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, `must be an array of strings (got ${describe(v)})`);
    (v as unknown[]).forEach((x, i) => {
      if (typeof x !== "string") this.fail(key, `must be an array of strings (item ${i} is ${describe(x)})`);
    });
  }

  array(key: string, required = true): void {
    if (this.has(key, required) && !Array.isArray(this.obj[key])) {
      this.fail(key, `must be an array (got ${describe(this.obj[key])})`);
    }
  }

  /** A map with string keys (a plain object once decoded), values checked by `value` when given. */
  map(key: string, required = true, value?: (v: unknown) => boolean, valueWhat = ""): void {
    if (!this.has(key, required)) return;
    const v = this.obj[key];
    if (!isPlainObject(v)) {
      this.fail(key, v instanceof Map ? "must be a map with string keys" : `must be a map (got ${describe(v)})`);
    }
    if (value !== undefined) {
      for (const [k, x] of Object.entries(v)) {
        if (!value(x)) this.fail(key, `must map strings to ${valueWhat} (${JSON.stringify(k)} is ${describe(x)})`);
      }
    }
  }

  sub(key: string, required: boolean, fn: (c: Check) => void): void {
    if (!this.has(key, required)) return;
    const v = this.obj[key];
    if (!isPlainObject(v)) this.fail(key, `must be a map with string keys (got ${describe(v)})`);
    fn(new Check(v, `${this.what}: key "${key}"`));
  }
}

function isPlainObject(v: unknown): v is Rec {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return "nil";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bin";
  if (v instanceof Map || isPlainObject(v)) return "a map";
  if (typeof v === "string") return `a string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === "number") return Number.isInteger(v) ? `the int ${v}` : `the float ${v}`;
  if (typeof v === "bigint") return `the int ${v}`;
  if (typeof v === "boolean") return `the bool ${v}`;
  return (v as object).constructor?.name ?? typeof v;
}

const isStr = (v: unknown): boolean => typeof v === "string";
const isStrOrNil = (v: unknown): boolean => typeof v === "string" || v === null;

function checkAgentInfo(c: Check): void {
  c.str("version");
  c.int("protocol");
  c.str("python");
  c.str("implementation");
  c.str("executable", false);
  c.oneOf("codec", ["c", "pure"]);
  if (c.obj["numpy"] !== null) c.str("numpy", false);
  c.int("pid");
  c.str("host");
  c.int("workers", false, 1);
  c.int("maxFrameBytes", false, 1);
}

/**
 * True for the common result — ok, with only the keys every result has (plus `value`,
 * `truncated`, `durationNs`), each valid — checked with a few direct reads: it is validated
 * for every call. Anything else goes through the full checks, which name what is wrong.
 */
function isPlainOkResult(o: Rec): boolean {
  const d = o["durationNs"];
  const t = o["truncated"];
  return (
    o["ok"] === true &&
    typeof o["id"] === "string" &&
    typeof o["stdout"] === "string" &&
    typeof o["stderr"] === "string" &&
    (t === undefined || typeof t === "boolean") &&
    (d === undefined || (typeof d === "number" && Number.isInteger(d) && d >= 0)) &&
    o["error"] === undefined &&
    o["modules"] === undefined &&
    o["agent"] === undefined
  );
}

const VALIDATORS: Record<string, (c: Check) => void> = {
  call(c) {
    c.str("id");
    c.str("module");
    c.str("function");
    c.array("args", false);
    c.map("kwargs", false);
    c.map("env", false, isStr, "strings");
    c.map("envDefault", false, isStr, "strings");
    c.strArray("pathAppend", false);
    c.strArray("requires", false);
    c.str("cwd", false);
    c.bool("stream", false);
    c.int("outputLimit", false, 0);
    c.int("timeoutMs", false, 0);
  },
  probe(c) {
    c.str("id");
    c.strArray("requires");
  },
  cancel(c) {
    c.str("id");
  },
  ping(c) {
    c.str("id");
  },
  shutdown(c) {
    c.str("id", false);
  },
  hello(c) {
    c.sub("agent", true, checkAgentInfo);
  },
  result(c) {
    c.str("id");
    c.bool("ok");
    c.str("stdout");
    c.str("stderr");
    c.bool("truncated", false);
    c.map("modules", false, isStrOrNil, "strings or nil");
    c.int("durationNs", false, 0);
    c.sub("agent", false, checkAgentInfo);
    if (c.obj["ok"] === false) {
      c.sub("error", true, (e) => {
        e.oneOf("kind", REMOTE_ERROR_KINDS);
        e.str("type");
        e.str("message");
        e.str("traceback");
        e.str("path", false);
      });
    } else if (c.obj["error"] === null) {
      delete c.obj["error"];
    }
  },
  output(c) {
    c.str("id");
    c.oneOf("stream", ["stdout", "stderr"]);
    c.str("data");
  },
  pong(c) {
    c.str("id");
  },
};

/** Validates a decoded value as a message of one of `kinds`; returns it typed. */
export function validateMessage(value: unknown, direction: "client" | "agent"): ClientMessage | AgentMessage {
  const from = direction === "client" ? "the client" : "the agent";
  if (!isPlainObject(value)) {
    throw new ProtocolError(
      `invalid message from ${from}: expected a map with string keys, got ${value instanceof Map ? "a map with non-string keys" : describe(value)}`,
    );
  }
  const v = value["v"];
  if (v === undefined) throw new ProtocolError(`invalid message from ${from}: key "v" is missing`);
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `unsupported protocol version: message from ${from} has key "v" = ${describe(v)}, this side speaks ${PROTOCOL_VERSION}`,
    );
  }
  const kind = value["kind"];
  if (typeof kind !== "string") {
    throw new ProtocolError(
      `invalid message from ${from}: key "kind" ${kind === undefined ? "is missing" : `must be a string (got ${describe(kind)})`}`,
    );
  }
  const kinds: readonly string[] = direction === "client" ? CLIENT_MESSAGE_KINDS : AGENT_MESSAGE_KINDS;
  if (!kinds.includes(kind)) {
    throw new ProtocolError(
      `invalid message from ${from}: key "kind" is ${JSON.stringify(kind)}, expected one of ${kinds.join(", ")}`,
    );
  }
  if (kind === "result" && isPlainOkResult(value)) return value as unknown as ResultMessage; // every call's answer
  VALIDATORS[kind]!(new Check(value, `${kind} message`));
  return value as unknown as ClientMessage | AgentMessage;
}

/**
 * Decodes and validates a message from an agent (`hello`, `result`, `output`, `pong`).
 * With `ownsBuffer: true` the caller gives up `bytes` (nothing else reads or writes it): bins
 * of 64 KiB or more in the message are then views of it (`byteOffset` not 0) instead of copies.
 * @throws ProtocolError for bytes that are not MessagePack, or a message that is not valid,
 *   naming the offending key.
 */
export function decodeAgentMessage(bytes: Uint8Array, options: { ownsBuffer?: boolean } = {}): AgentMessage {
  if (options.ownsBuffer !== true) return validateMessage(decodeValue(bytes), "agent") as AgentMessage;
  // The caller hands `bytes` over: large bins stay in it (views) instead of being copied out.
  const d = new Decoder(bytes);
  d.viewBinsFrom = HOLE_MIN;
  return validateMessage(d.decodeAll(), "agent") as AgentMessage;
}

/**
 * Decodes and validates a message from a client (`call`, `probe`, `cancel`, `ping`, `shutdown`).
 * @throws ProtocolError as {@link decodeAgentMessage}.
 */
export function decodeClientMessage(bytes: Uint8Array): ClientMessage {
  return validateMessage(decodeValue(bytes), "client") as ClientMessage;
}
