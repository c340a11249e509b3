import type { Connector, RemoteProcess } from "@sremote/core";
import { expect } from "vitest";
import { execOk, waitForRemoteFile } from "../remote-tools.js";
import { expectNoLateMarkers, SLOW_COMMAND_SECONDS, slowArgv, slowMarkers } from "./cancellation.js";
import type { GroupContext } from "./context.js";
import { expectCode } from "./expect-code.js";
import { readUntil, spawnOf } from "./spawn.js";

/** A bound on "promptly" that only a hang exceeds: the suite never asserts durations. */
const SETTLE_LIMIT_MS = 20_000;

function settlesWithin<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${SETTLE_LIMIT_MS} ms`)), SETTLE_LIMIT_MS);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

/** Group `contract`: the connector's shape matches what it declares. */
export function contractGroup(ctx: GroupContext, skippedGroups: readonly string[]): void {
  ctx.test("has a name, boolean capabilities, and spawn exactly when capabilities.spawn", async () => {
    const { connector } = ctx;
    expect(typeof connector.name).toBe("string");
    expect(connector.name.length).toBeGreaterThan(0);
    for (const key of ["spawn", "stdin", "signals", "fileModes"] as const) {
      expect(typeof connector.capabilities[key], `capabilities.${key}`).toBe("boolean");
    }
    expect(typeof connector.spawn === "function").toBe(connector.capabilities.spawn);
    for (const method of [
      "connect",
      "close",
      "status",
      "homeDir",
      "putFile",
      "getFile",
      "deleteFile",
      "exec",
    ] as const) {
      expect(typeof connector[method], method).toBe("function");
    }
    expect(typeof connector[Symbol.asyncDispose]).toBe("function");
  });

  ctx.test("skips no group whose capability it declares", async () => {
    const caps = ctx.connector.capabilities;
    const declared: Record<string, boolean> = { "file-modes": caps.fileModes, stdin: caps.stdin, spawn: caps.spawn };
    for (const group of skippedGroups) {
      expect(declared[group] ?? false, `group "${group}" is skipped, but its capability is declared`).toBe(false);
    }
  });

  ctx.test("connect() resolves, and status() reports connected", async () => {
    await ctx.connector.connect();
    const status = await ctx.connector.status();
    expect(status.connected).toBe(true);
  });
}

/** Group `lifecycle`: status, close while busy, operations after close, idempotent close, `await using`. */
export function lifecycleGroup(ctx: GroupContext): void {
  ctx.test("status() reports connected after an operation, and not connected after close()", async () => {
    await ctx.fresh(async ({ connector }) => {
      await connector.exec(["true"]);
      expect((await connector.status()).connected).toBe(true);
      await connector.close();
      const after = await connector.status();
      expect(after.connected).toBe(false);
    });
  });

  ctx.test("close() while an exec and a spawned process run: both settle and nothing keeps running", async () => {
    await ctx.fresh(async ({ connector }) => {
      const execMarkers = slowMarkers(ctx, "close-exec");
      const spawnMarkers = slowMarkers(ctx, "close-spawn");
      const startedAt = Date.now();
      const running = connector.exec(slowArgv(execMarkers));
      const execOutcome = expectCode(running, "CLOSED", "CONNECTION_LOST");
      let proc: RemoteProcess | undefined;
      if (connector.capabilities.spawn) {
        proc = await spawnOf(connector)(slowArgv(spawnMarkers));
        proc.stderr.resume();
        await readUntil(proc.stdout, "ready");
        proc.stdout.resume();
      }
      // Observed through the shared connector, which stays open.
      await waitForRemoteFile(
        ctx.connector,
        execMarkers.started,
        SLOW_COMMAND_SECONDS * 1000 - 500,
        "the exec to start",
      );
      await settlesWithin(connector.close(), "close()");
      await settlesWithin(execOutcome, "the running exec");
      if (proc) await settlesWithin(proc.exited, "the spawned process's exited");
      await expectNoLateMarkers(ctx.connector, startedAt, ...(proc ? [execMarkers, spawnMarkers] : [execMarkers]));
    });
  });

  ctx.test("every operation after close() rejects CLOSED", async () => {
    await ctx.fresh(async ({ connector }) => {
      await connector.exec(["true"]);
      await connector.close();
      const path = ctx.path("after-close");
      await expectCode(connector.connect(), "CLOSED");
      await expectCode(connector.homeDir(), "CLOSED");
      await expectCode(connector.exec(["true"]), "CLOSED");
      await expectCode(connector.putFile(path, Buffer.from("x")), "CLOSED");
      await expectCode(connector.getFile(path), "CLOSED");
      await expectCode(connector.deleteFile(path), "CLOSED");
      if (connector.capabilities.spawn) await expectCode(spawnOf(connector)(["true"]), "CLOSED");
    });
  });

  ctx.test("close() is idempotent, also when called concurrently, and works on an unused connector", async () => {
    await ctx.fresh(async ({ connector }) => {
      await Promise.all([connector.close(), connector.close()]);
      await connector.close();
    });
    await ctx.fresh(async ({ connector }) => {
      await connector.exec(["true"]);
      await Promise.all([connector.close(), connector.close()]);
      await connector.close();
      await connector[Symbol.asyncDispose]();
    });
  });

  ctx.test("`await using` closes the connector at the end of the block", async () => {
    await ctx.fresh(async (fixture) => {
      let escaped: Connector;
      {
        await using connector = fixture.connector;
        escaped = connector;
        expect(await execOk(connector, ["printf", "inside"])).toBe("inside");
      }
      await expectCode(escaped.exec(["true"]), "CLOSED");
    });
  });
}

/** Group `concurrency`: parallel operations never mix their results. */
export function concurrencyGroup(ctx: GroupContext): void {
  ctx.test("50 parallel execs each get their own stdout, stderr and exit code", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        ctx.connector.exec([
          "sh",
          "-c",
          'printf "out-%s" "$1"; printf "err-%s" "$1" >&2; exit "$2"',
          "sh",
          `${i}`,
          `${i % 7}`,
        ]),
      ),
    );
    for (const [i, r] of results.entries()) {
      expect(r).toEqual({ stdout: `out-${i}`, stderr: `err-${i}`, exitCode: i % 7, signal: null });
    }
  });

  ctx.test("20 parallel putFile/getFile pairs each get their own content", async () => {
    const { connector } = ctx;
    const paths = Array.from({ length: 20 }, (_, i) => ctx.path(`parallel-${i}`));
    const contents = paths.map((_, i) => Buffer.from(`file ${i} `.repeat(1000 + i)));
    await Promise.all(paths.map((p, i) => connector.putFile(p, contents[i]!)));
    const back = await Promise.all(paths.map((p) => connector.getFile(p)));
    for (const [i, data] of back.entries()) expect(Buffer.from(data).equals(contents[i]!)).toBe(true);
    await Promise.all(paths.map((p) => connector.deleteFile(p)));
  });
}
