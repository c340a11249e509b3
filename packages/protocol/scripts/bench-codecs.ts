/**
 * Measures this package's codec against msgpackr and @msgpack/msgpack on the three workloads of
 * docs/decisions/msgpack-library.md: a small call message, a result holding 1 MB of bytes, and a
 * result holding a 10,000-element list of small dicts; encode and decode each.
 *
 * @msgpack/msgpack is not a dependency: install it in a scratch folder and point at it, e.g.
 *   (cd /tmp/msgbench && npm i @msgpack/msgpack) &&
 *   MSGPACK_MSGPACK=/tmp/msgbench/node_modules/@msgpack/msgpack npx tsx scripts/bench-codecs.ts
 * Without it that column is skipped.
 */
import { createRequire } from "node:module";
import { Packr, Unpackr } from "msgpackr";
import { decodeAgentMessage, decodeClientMessage, decodeValue, encodeMessage, encodeValue } from "../src/index.js";

type Codec = { name: string; encode: (v: unknown) => Uint8Array; decode: (b: Uint8Array) => unknown };

const packr = new Packr({ useRecords: false, moreTypes: false } as never);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "auto" } as never);
const codecs: Codec[] = [
  { name: "sremote (encodeValue/decodeValue)", encode: encodeValue, decode: decodeValue },
  { name: "msgpackr (useRecords: false)", encode: (v) => packr.pack(v), decode: (b) => unpackr.unpack(b) },
];
const mmPath = process.env["MSGPACK_MSGPACK"];
if (mmPath) {
  const mm = createRequire(import.meta.url)(mmPath) as {
    encode(v: unknown): Uint8Array;
    decode(b: Uint8Array): unknown;
  };
  codecs.push({ name: "@msgpack/msgpack", encode: (v) => mm.encode(v), decode: (b) => mm.decode(b) });
}

const call = {
  v: 1,
  kind: "call",
  id: "0123456789abcdef0123456789abcdef",
  module: "qdo",
  function: "Queue.add",
  args: ["task-name", 1, true],
  kwargs: { priority: 5, requires: ["numpy"] },
};
const mb = new Uint8Array(1024 * 1024);
for (let i = 0; i < mb.length; i++) mb[i] = (i * 31) & 0xff;
const resultBytes = {
  v: 1,
  kind: "result",
  id: call.id,
  ok: true,
  value: mb,
  stdout: "",
  stderr: "",
  durationNs: 123456,
};
const list = Array.from({ length: 10_000 }, (_, i) => ({ id: i, name: `item-${i}`, ok: i % 2 === 0, score: i * 0.5 }));
const resultList = { v: 1, kind: "result", id: call.id, ok: true, value: list, stdout: "", stderr: "", durationNs: 1 };

/** Median over 7 batches of the mean µs per call (each batch runs at least `batchMs`). */
function time(fn: () => void, batchMs = 100): number {
  for (let i = 0; i < 10; i++) fn();
  const batches: number[] = [];
  for (let b = 0; b < 7; b++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    while (t - t0 < batchMs) {
      fn();
      n++;
      t = performance.now();
    }
    batches.push(((t - t0) * 1000) / n);
  }
  batches.sort((x, y) => x - y);
  return batches[3]!;
}

const fmt = (us: number): string => (us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0));
const rows: string[] = [];
rows.push("| workload | codec | bytes | encode µs | decode µs |", "|---|---|---|---|---|");
for (const [name, value] of [
  ["small call", call],
  ["result, 1 MB bytes", resultBytes],
  ["result, 10,000 small dicts", resultList],
] as const) {
  for (const c of codecs) {
    const bytes = c.encode(value);
    const enc = time(() => c.encode(value));
    const dec = time(() => c.decode(bytes));
    rows.push(`| ${name} | ${c.name} | ${bytes.length} | ${fmt(enc)} | ${fmt(dec)} |`);
  }
  // The message API with validation, as the client uses it.
  const bytes = encodeMessage(value as never);
  const decodeMsg = name === "small call" ? decodeClientMessage : decodeAgentMessage;
  rows.push(
    `| ${name} | sremote (encodeMessage/decode…Message, validated) | ${bytes.length} | ${fmt(
      time(() => encodeMessage(value as never)),
    )} | ${fmt(time(() => decodeMsg(bytes)))} |`,
  );
}
console.log(`node ${process.version}, ${process.arch}`);
console.log(rows.join("\n"));
