import { ProtocolError } from "@sremote/core";
import { Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  type CallMessage,
  decodeAgentMessage,
  decodeClientMessage,
  decodeValue,
  encodeMessage,
  encodeMessageFrame,
  encodeValue,
  FrameDecoder,
  PROTOCOL_VERSION,
  type ResultMessage,
  SerializationError,
} from "../src/index.js";

const omit = (o: object, key: string): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

const call: CallMessage = { v: 1, kind: "call", id: "c1", module: "math", function: "sqrt", args: [2] };

function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocolError);
    return e as ProtocolError;
  }
  throw new Error("no error");
}

describe("messages", () => {
  it("PROTOCOL_VERSION is 1", () => {
    expect(PROTOCOL_VERSION).toBe(1);
  });

  it("round-trips a call and leaves undefined keys out", () => {
    const msg: CallMessage = { ...call, kwargs: undefined, cwd: "/tmp" };
    const bytes = encodeMessage(msg);
    const back = decodeClientMessage(bytes);
    expect(back).toEqual({ v: 1, kind: "call", id: "c1", module: "math", function: "sqrt", args: [2], cwd: "/tmp" });
    expect("kwargs" in (decodeValue(bytes) as object)).toBe(false);
  });

  it("round-trips a result with every optional key", () => {
    const msg: ResultMessage = {
      v: 1,
      kind: "result",
      id: "c1",
      ok: false,
      error: { kind: "serialization", type: "TypeError", message: "m", traceback: "tb", path: "result[3].owner" },
      stdout: "out",
      stderr: "err",
      truncated: true,
      modules: { numpy: "1.26.4", gone: null },
      durationNs: 5,
      agent: {
        version: "0.1.0",
        protocol: 1,
        python: "3.12.1",
        implementation: "CPython",
        codec: "pure",
        numpy: null,
        pid: 1,
        host: "h",
      },
    };
    expect(decodeAgentMessage(encodeMessage(msg))).toEqual(msg);
  });

  it("names the path of an unencodable argument", () => {
    const f = () => 1;
    const e = (() => {
      try {
        encodeMessage({ ...call, args: [1, { x: f }] });
      } catch (err) {
        return err as SerializationError;
      }
      throw new Error("no error");
    })();
    expect(e).toBeInstanceOf(SerializationError);
    expect(e.path).toBe("args[1].x");
    expect(e.message).toContain("args[1].x");
    expect(() => encodeMessage({ ...call, kwargs: { name: Symbol() } })).toThrow(/at kwargs\.name/);
    expect(() =>
      encodeMessage({
        v: 1,
        kind: "result",
        id: "c",
        ok: true,
        value: [0, 1, 2, { owner: f }],
        stdout: "",
        stderr: "",
      }),
    ).toThrow(/at result\[3\]\.owner/);
  });

  it("counts the message map as a nesting level", () => {
    let deep: unknown = [];
    for (let i = 1; i < 510; i++) deep = [deep];
    // message (1) + args (1) + 510 = 512: fine; one more is not.
    expect(() => encodeMessage({ ...call, args: [deep] })).not.toThrow();
    expect(() => encodeMessage({ ...call, args: [[deep]] })).toThrow(/nested deeper than 512/);
  });

  it("encodeMessageFrame equals encodeFrame(encodeMessage) and decodes through FrameDecoder", () => {
    const frame = encodeMessageFrame(call);
    const payload = encodeMessage(call);
    expect(Buffer.from(frame.subarray(4)).equals(Buffer.from(payload))).toBe(true);
    expect(new DataView(frame.buffer).getUint32(0)).toBe(payload.length);
    const [got] = new FrameDecoder().push(frame);
    expect(decodeClientMessage(got!)).toEqual(call);
    expect(() => encodeMessageFrame({ ...call, args: ["x".repeat(100)] }, { maxFrameBytes: 50 })).toThrow(
      /frame limit/,
    );
  });

  it("encodeMessageFrame with pooled: true gives the same bytes (small frames from the shared pool)", () => {
    for (const msg of [call, { ...call, args: ["x".repeat(10_000)] }]) {
      const pooled = encodeMessageFrame(msg, { pooled: true });
      expect(Buffer.from(pooled).equals(Buffer.from(encodeMessageFrame(msg)))).toBe(true);
    }
    expect(encodeMessageFrame(call, { pooled: true }).buffer.byteLength).toBe(Buffer.poolSize);
    expect(() => encodeMessageFrame({ ...call, args: ["x".repeat(100)] }, { maxFrameBytes: 50, pooled: true })).toThrow(
      /frame limit/,
    );
  });

  it("msgpackr reads our messages the same way", () => {
    const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
    expect(unpackr.unpack(Buffer.from(encodeMessage(call)))).toEqual(call);
  });

  it("nil optional keys count as absent and are dropped", () => {
    const bytes = encodeValue({ ...call, kwargs: null, env: null, stream: null });
    const msg = decodeClientMessage(bytes);
    expect("kwargs" in msg).toBe(false);
    expect("stream" in msg).toBe(false);
  });

  it("an ok result with nil optional keys is valid and loses them", () => {
    const r = decodeAgentMessage(
      encodeValue({
        v: 1,
        kind: "result",
        id: "x",
        ok: true,
        value: null,
        stdout: "",
        stderr: "",
        durationNs: null,
        error: null,
      }),
    ) as unknown as Record<string, unknown>;
    expect(r).toEqual({ v: 1, kind: "result", id: "x", ok: true, value: null, stdout: "", stderr: "" });
    expect("durationNs" in r || "error" in r).toBe(false);
  });

  it("encodes messages of 16 keys and more as map16, the same bytes as encodeValue", () => {
    for (const extra of [0, 9, 10, 11, 30]) {
      const msg: Record<string, unknown> = { ...call };
      for (let i = 0; i < extra; i++) msg[`x${i}`] = i;
      const keys = Object.keys(msg).length;
      const bytes = encodeMessage(msg as never);
      expect(bytes[0], `${keys} keys`).toBe(keys < 16 ? 0x80 | keys : 0xde);
      expect(Buffer.from(bytes).equals(Buffer.from(encodeValue(msg)))).toBe(true);
      expect(decodeClientMessage(bytes)).toEqual(msg);
    }
  });

  it("keeps unknown keys", () => {
    const msg = decodeClientMessage(encodeValue({ ...call, extra: 1 })) as unknown as Record<string, unknown>;
    expect(msg["extra"]).toBe(1);
  });

  it.each([
    [omit(call, "id"), "id", /is missing/],
    [{ ...call, id: undefined }, "id", /must be a string \(got nil\)/],
    [{ ...call, module: 5 }, "module", /must be a string \(got the int 5\)/],
    [{ ...call, args: "x" }, "args", /must be an array/],
    [{ ...call, kwargs: new Map([[1, 2]]) }, "kwargs", /string keys/],
    [{ ...call, env: { A: 1 } }, "env", /must map strings to strings/],
    [{ ...call, requires: ["a", 2] }, "requires", /item 1/],
    [{ ...call, outputLimit: -1 }, "outputLimit", /at least 0/],
    [{ ...call, outputLimit: 2n ** 60n }, "outputLimit", /within/],
    [{ ...call, v: 2 }, "v", /unsupported protocol version/],
    [omit(call, "v"), "v", /is missing/],
    [{ ...call, kind: "result" }, "kind", /expected one of call, probe/],
    [{ ...call, kind: null }, "kind", /must be a string \(got nil\)/],
  ])("client message %# fails on key %s", (value, key, re) => {
    const e = protocolError(() => decodeClientMessage(encodeValue(value)));
    expect(e.message).toContain(`"${key}"`);
    expect(e.message).toMatch(re);
  });

  it.each([
    [{ v: 1, kind: "hello" }, "agent"],
    [{ v: 1, kind: "hello", agent: { version: "1" } }, "protocol"],
    [{ v: 1, kind: "result", id: "x", ok: false, stdout: "", stderr: "" }, "error"],
    [
      {
        v: 1,
        kind: "result",
        id: "x",
        ok: false,
        stdout: "",
        stderr: "",
        error: { kind: "exception", type: "E", message: "m" },
      },
      "traceback",
    ],
    [{ v: 1, kind: "output", id: "x", stream: "stdout", data: new Uint8Array(1) }, "data"],
    [{ v: 1, kind: "pong" }, "id"],
    [{ v: 1, kind: "call", id: "x", module: "m", function: "f" }, "kind"],
    // ok results: the fast check must send every bad one to the full checks
    [{ v: 1, kind: "result", id: 5, ok: true, stdout: "", stderr: "" }, "id"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: 1, stderr: "" }, "stdout"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: "", stderr: "", durationNs: -1 }, "durationNs"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: "", stderr: "", durationNs: 1.5 }, "durationNs"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: "", stderr: "", truncated: "yes" }, "truncated"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: "", stderr: "", modules: { a: 1 } }, "modules"],
    [{ v: 1, kind: "result", id: "x", ok: true, stdout: "", stderr: "", agent: { version: "1" } }, "protocol"],
  ])("agent message %# fails on key %s", (value, key) => {
    const e = protocolError(() => decodeAgentMessage(encodeValue(value)));
    expect(e.message).toContain(`"${key}"`);
  });

  it("rejects messages that are not maps with string keys", () => {
    expect(protocolError(() => decodeAgentMessage(encodeValue([1]))).message).toMatch(/expected a map/);
    expect(protocolError(() => decodeAgentMessage(encodeValue(new Map([[1, 2]])))).message).toMatch(/non-string keys/);
    expect(protocolError(() => decodeAgentMessage(new Uint8Array([0xc1]))).message).toMatch(/reserved/);
  });
});
