import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RemoteProcess, StdoutReader } from "@sremote/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { localConnector } from "../src/index.js";

// Real processes on a shared machine: an explicit budget per test and hook.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** A private TMPDIR for the connector's socket folders, so that what is left can be counted. */
let tmp: string;
let savedTmpdir: string | undefined;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sremote-stdout-test-"));
  savedTmpdir = process.env["TMPDIR"];
  process.env["TMPDIR"] = tmp;
});
afterAll(async () => {
  if (savedTmpdir === undefined) delete process.env["TMPDIR"];
  else process.env["TMPDIR"] = savedTmpdir;
  await rm(tmp, { recursive: true, force: true });
});

/** Python writing `n` bytes of a known pattern to stdout in writes of `step` bytes. */
const pattern = (n: number, step: number) => [
  "python3",
  "-c",
  `import os\nb=(bytes(range(251))*(${n}//251+1))[:${n}]\nfor i in range(0, ${n}, ${step}): os.write(1, b[i:i+${step}])`,
];
const expected = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251));

/** A reader that takes every byte into one buffer of `n` bytes, as a frame decoder would. */
function intoOneBuffer(n: number) {
  const target = new Uint8Array(n);
  const spare = new Uint8Array(4096);
  let fill = 0;
  let inPlace = 0;
  let elsewhere = 0;
  const reader: StdoutReader = {
    buffer: () => (fill < n ? target.subarray(fill) : spare),
    onData: (bytes) => {
      if (bytes.buffer === target.buffer && bytes.byteOffset === fill) inPlace += bytes.byteLength;
      else {
        target.set(bytes, fill); // landed in memory the connector chose: copy
        elsewhere += bytes.byteLength;
      }
      fill += bytes.byteLength;
    },
  };
  return { reader, target, counts: () => ({ fill, inPlace, elsewhere }) };
}

const ended = (proc: RemoteProcess) => new Promise<void>((resolve) => proc.stdout.once("end", resolve));

describe("spawn: stdout read into the reader's memory (readStdoutInto)", () => {
  it("lands the bytes in the buffer the reader gives, reports end, and exited settles", async () => {
    await using local = localConnector();
    const n = 3 * 1024 * 1024 + 17;
    const proc = await local.spawn(pattern(n, 200_000));
    expect(proc.readStdoutInto).toBeTypeOf("function");
    const { reader, target, counts } = intoOneBuffer(n);
    const end = ended(proc);
    proc.readStdoutInto!(reader);
    await end;
    expect((await proc.exited).exitCode).toBe(0);
    const c = counts();
    expect(c.fill).toBe(n);
    expect(Buffer.from(target).equals(expected(n))).toBe(true);
    // At most the first read after the switch lands in the connector's memory.
    expect(c.inPlace).toBeGreaterThanOrEqual(n - 64 * 1024);
  });

  it("hands bytes the stream already holds to the reader first, in order", async () => {
    await using local = localConnector();
    // Writes 1,000 bytes, waits for a line on stdin, then writes the rest.
    const proc = await local.spawn([
      "python3",
      "-c",
      "import os,sys\nb=(bytes(range(251))*20)[:5000]\nos.write(1,b[:1000])\nsys.stdin.readline()\nos.write(1,b[1000:])",
    ]);
    // Nobody reads: the first 1,000 bytes wait in the stream's buffer.
    await new Promise<void>((resolve) => proc.stdout.once("readable", resolve));
    const { reader, target, counts } = intoOneBuffer(5000);
    const end = ended(proc);
    proc.readStdoutInto!(reader);
    expect(counts().fill).toBe(1000); // handed over at once
    proc.stdin.end("go\n");
    await end;
    await proc.exited;
    expect(counts().fill).toBe(5000);
    expect(Buffer.from(target).equals(expected(5000))).toBe(true);
  });

  it("after 'data' events, switching loses nothing; a second reader is a UsageError", async () => {
    await using local = localConnector();
    const n = 2 * 1024 * 1024;
    const proc = await local.spawn(pattern(n, 100_000));
    const first = await new Promise<Buffer>((resolve) => proc.stdout.once("data", resolve));
    proc.stdout.pause();
    const { reader, target, counts } = intoOneBuffer(n - first.length);
    const end = ended(proc);
    proc.readStdoutInto!(reader);
    expect(() => proc.readStdoutInto!(reader)).toThrow(/already has a reader/);
    await end;
    await proc.exited;
    expect(first.length + counts().fill).toBe(n);
    expect(Buffer.concat([first, target]).equals(expected(n))).toBe(true);
  });

  it("stdout stays an ordinary stream for those who do not switch, and no socket folder is left", async () => {
    await using local = localConnector();
    const runs = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const proc = await local.spawn(pattern(300_000, 7_000));
        const chunks: Buffer[] = [];
        proc.stdout.on("data", (c: Buffer) => chunks.push(c));
        await proc.exited;
        return Buffer.concat(chunks);
      }),
    );
    for (const out of runs) expect(out.equals(expected(300_000))).toBe(true);
    expect(await readdir(tmp)).toEqual([]);
  });

  it("without a usable temporary folder, stdout is a plain pipe and readStdoutInto is absent", async () => {
    process.env["TMPDIR"] = join(tmp, "missing", "folder");
    try {
      await using local = localConnector();
      const proc = await local.spawn(pattern(100_000, 10_000));
      expect(proc.readStdoutInto).toBeUndefined();
      const chunks: Buffer[] = [];
      proc.stdout.on("data", (c: Buffer) => chunks.push(c));
      await proc.exited;
      expect(Buffer.concat(chunks).equals(expected(100_000))).toBe(true);
    } finally {
      process.env["TMPDIR"] = tmp;
    }
  });

  it("exited waits for a background child still holding stdout; kill() ends it", async () => {
    await using local = localConnector({ killGraceMs: 200 });
    // The shell exits at once; its background sleep keeps stdout open.
    const proc = await local.spawn(["sh", "-c", "echo started; sleep 30 & exit 0"]);
    const { reader } = intoOneBuffer(100);
    proc.readStdoutInto!(reader);
    const settled = await Promise.race([
      proc.exited.then(() => "exited"),
      new Promise((resolve) => setTimeout(() => resolve("waiting"), 500)),
    ]);
    expect(settled).toBe("waiting");
    proc.kill();
    expect((await proc.exited).exitCode).toBe(0);
  });
});
