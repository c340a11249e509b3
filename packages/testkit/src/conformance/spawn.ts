import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import type { Connector, RemoteProcess } from "@sremote/core";
import { expect } from "vitest";
import { execOk, sha256 } from "../remote-tools.js";
import { expectNoLateMarkers, slowArgv, slowMarkers } from "./cancellation.js";
import type { GroupContext } from "./context.js";

const MiB = 1024 * 1024;

/** The connector's `spawn`, which the `spawn` capability promises. */
export function spawnOf(connector: Connector): NonNullable<Connector["spawn"]> {
  const { spawn } = connector;
  if (typeof spawn !== "function")
    throw new Error(`${connector.name}: capabilities.spawn is true but spawn is missing`);
  return spawn.bind(connector);
}

/** Collects a stream's bytes until it ends. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** Resolves once `stream` has delivered `expected` (as text), or rejects when it ends first. */
export function readUntil(stream: Readable, expected: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(expected)) {
        cleanup();
        resolve(seen);
      }
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`stream ended before ${JSON.stringify(expected)}; got ${JSON.stringify(seen)}`));
    };
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onEnd);
  });
}

/** `promise`, or a rejection naming `what` after `ms` (a hang must fail the test, not stall it). */
function withinMs<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Reads all of stdout and stderr and waits for the exit. */
async function finish(proc: RemoteProcess) {
  const [stdout, stderr, exit] = await Promise.all([readAll(proc.stdout), readAll(proc.stderr), proc.exited]);
  return { stdout, stderr, ...exit };
}

/** Group `spawn` (capability `spawn`): live streams, exit status, kill, concurrency, binary data. */
export function spawnGroup(ctx: GroupContext): void {
  const opts = { needs: "spawn" } as const;

  ctx.test(
    "echoes through stdin/stdout while the process runs, and EOF on stdin ends cat",
    async () => {
      const proc = await spawnOf(ctx.connector)(["cat"]);
      const stderr = readAll(proc.stderr);
      // Each line must come back before stdin is closed: no buffering until EOF.
      for (const line of ["first line\n", "second ünï line\n"]) {
        const echoed = readUntil(proc.stdout, line);
        proc.stdin.write(line);
        await echoed;
      }
      proc.stdin.end();
      proc.stdout.resume();
      expect(await proc.exited).toEqual({ exitCode: 0, signal: null });
      expect((await stderr).toString()).toBe("");
    },
    opts,
  );

  ctx.test(
    "exited settles when the process ends even if stdout and stderr were never read",
    async () => {
      const proc = await spawnOf(ctx.connector)(["sh", "-c", "printf out; printf err >&2; exit 4"]);
      proc.stdin.end();
      const exit = await withinMs(proc.exited, 20_000, "exited with unread streams");
      // Whether unread output can still be read afterwards is the connector's choice (Node's
      // child processes drop it at exit); a caller that wants it reads the streams.
      expect(exit).toMatchObject({ exitCode: 4, signal: null });
    },
    opts,
  );

  ctx.test(
    "streams stderr separately and reports the exit code",
    async () => {
      const proc = await spawnOf(ctx.connector)(["sh", "-c", "printf out; printf err >&2; exit 3"]);
      proc.stdin.end();
      const r = await finish(proc);
      expect(r.stdout.toString()).toBe("out");
      expect(r.stderr.toString()).toBe("err");
      expect(r).toMatchObject({ exitCode: 3, signal: null });
    },
    opts,
  );

  ctx.test(
    "honours cwd and env",
    async () => {
      const physical = await execOk(ctx.connector, ["sh", "-c", 'cd "$1" && printf %s "$(pwd -P)"', "sh", ctx.workDir]);
      const proc = await spawnOf(ctx.connector)(["sh", "-c", 'printf "%s|%s" "$SREMOTE_SPAWN" "$(pwd -P)"'], {
        cwd: ctx.workDir,
        env: { SREMOTE_SPAWN: "a 'b' \"c\"" },
      });
      proc.stdin.end();
      const r = await finish(proc);
      const [value, cwd] = r.stdout.toString().split("|");
      expect(value).toBe("a 'b' \"c\"");
      expect(cwd).toBe(physical);
      expect(r.exitCode).toBe(0);
    },
    opts,
  );

  ctx.test(
    "reports death by a signal",
    async () => {
      const proc = await spawnOf(ctx.connector)(["sh", "-c", "kill -9 $$"]);
      proc.stdin.end();
      const r = await finish(proc);
      if (ctx.connector.capabilities.signals) expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL" });
      else expect(r.exitCode).not.toBe(0);
    },
    opts,
  );

  ctx.test(
    "kill() ends the process; kill is idempotent and harmless after exit",
    async () => {
      const proc = await spawnOf(ctx.connector)(["sleep", "60"]);
      proc.stdout.resume();
      proc.stderr.resume();
      proc.kill();
      proc.kill();
      const exit = await proc.exited;
      if (ctx.connector.capabilities.signals) expect(exit).toEqual({ exitCode: null, signal: "SIGTERM" });
      else expect(exit.exitCode).not.toBe(0);
      proc.kill();
      proc.kill("SIGKILL");
      expect(await proc.exited).toEqual(exit);
    },
    opts,
  );

  ctx.test(
    "kill() ends everything the process started",
    async () => {
      const markers = slowMarkers(ctx, "spawn-kill");
      const startedAt = Date.now();
      const proc = await spawnOf(ctx.connector)(slowArgv(markers));
      proc.stderr.resume();
      await readUntil(proc.stdout, "ready");
      proc.stdout.resume();
      proc.kill();
      await proc.exited;
      await expectNoLateMarkers(ctx.connector, startedAt, markers);
    },
    opts,
  );

  ctx.test(
    "runs 10 processes at once, each with its own streams",
    async () => {
      const spawn = spawnOf(ctx.connector);
      const procs = await Promise.all(Array.from({ length: 10 }, () => spawn(["cat"])));
      await Promise.all(
        procs.map(async (proc, i) => {
          const line = `process ${i} says ${"x".repeat(i * 100)}\n`;
          const echoed = readUntil(proc.stdout, line);
          proc.stdin.write(line);
          expect(await echoed).toBe(line);
          proc.stdin.end();
          proc.stdout.resume();
          proc.stderr.resume();
          expect((await proc.exited).exitCode).toBe(0);
        }),
      );
    },
    opts,
  );

  ctx.test(
    "carries 8 MiB of random bytes through cat intact",
    async () => {
      const data = randomBytes(8 * MiB);
      const proc = await spawnOf(ctx.connector)(["cat"]);
      const out = readAll(proc.stdout);
      proc.stderr.resume();
      // Written in pieces, honouring backpressure.
      for (let off = 0; off < data.length; off += 256 * 1024) {
        if (!proc.stdin.write(data.subarray(off, off + 256 * 1024))) {
          await new Promise((resolve) => proc.stdin.once("drain", resolve));
        }
      }
      proc.stdin.end();
      const back = await out;
      expect(back.length).toBe(data.length);
      expect(sha256(back)).toBe(sha256(data));
      expect((await proc.exited).exitCode).toBe(0);
    },
    opts,
  );

  ctx.test(
    "readStdoutInto, when offered: every byte lands in the reader's memory in order, and the end is still reported",
    async (t) => {
      const data = Buffer.concat([randomBytes(3 * MiB), Buffer.from("end")]);
      const proc = await spawnOf(ctx.connector)(["cat"]);
      if (!proc.readStdoutInto) {
        proc.kill();
        await proc.exited;
        t.skip("this connector's processes do not offer readStdoutInto");
        return;
      }
      const target = Buffer.alloc(data.length);
      const spare = Buffer.alloc(1024);
      let fill = 0;
      let inPlace = 0;
      const ended = new Promise<void>((resolve) => proc.stdout.once("end", resolve));
      const stderr = readAll(proc.stderr);
      proc.readStdoutInto({
        // Alternate the reader's own memory between the target and a small spare buffer.
        buffer: () => (fill < data.length && fill % 2 === 0 ? target.subarray(fill) : spare),
        onData: (bytes) => {
          if (fill + bytes.length > data.length) throw new Error(`more than ${data.length} bytes arrived`);
          if (bytes.buffer === target.buffer && bytes.byteOffset === target.byteOffset + fill) inPlace += bytes.length;
          else target.set(bytes, fill);
          fill += bytes.length;
        },
      });
      expect(() => proc.readStdoutInto?.({ buffer: () => spare, onData: () => {} })).toThrow();
      proc.stdin.end(data);
      await withinMs(ended, 60_000, "stdout's end after readStdoutInto");
      expect((await proc.exited).exitCode).toBe(0);
      expect((await stderr).toString()).toBe("");
      expect(fill).toBe(data.length);
      expect(sha256(target)).toBe(sha256(data));
      expect(inPlace).toBeGreaterThan(0); // reads do land where the reader said
    },
    opts,
  );

  ctx.test(
    "a missing program ends with a non-zero status (or spawn rejects with a coded error)",
    async () => {
      let proc: RemoteProcess;
      try {
        proc = await spawnOf(ctx.connector)(["sremote-conformance-no-such-program"]);
      } catch (err) {
        expect(typeof (err as { code?: unknown }).code).toBe("string");
        return;
      }
      proc.stdin.end();
      const r = await finish(proc);
      expect(r.exitCode).not.toBe(0);
      expect(r.exitCode === null && r.signal === null).toBe(false);
    },
    opts,
  );
}
