import { describe, expect, it } from "vitest";
import {
  AbortError,
  type Connector,
  ConnectorError,
  type ExecResult,
  hasErrorCode,
  type OperationOptions,
  type RetryEvent,
  withRetry,
} from "../src/index.js";

// A scripted connector (unit test: the decorator is pure control flow over the contract).
function scripted(failures: unknown[], opts: { spawn?: boolean } = {}) {
  const calls: { op: string; options: OperationOptions | undefined }[] = [];
  const next = async <T>(op: string, options: OperationOptions | undefined, value: T): Promise<T> => {
    calls.push({ op, options });
    if (failures.length > 0) throw failures.shift();
    return value;
  };
  const result: ExecResult = { stdout: "ok", stderr: "", exitCode: 0, signal: null };
  const connector: Connector = {
    name: "fake",
    capabilities: { spawn: opts.spawn ?? false, stdin: true, signals: false, fileModes: true },
    connect: (o) => next("connect", o, undefined),
    close: async () => {
      calls.push({ op: "close", options: undefined });
    },
    status: async () => ({ connected: true }),
    homeDir: (o) => next("homeDir", o, "/home/u"),
    putFile: (_p, _d, o) => next("putFile", o, undefined),
    getFile: (_p, o) => next("getFile", o, new Uint8Array([1, 2])),
    deleteFile: (_p, o) => next("deleteFile", o, undefined),
    exec: (_a, o) => next("exec", o, result),
    [Symbol.asyncDispose]: async () => {},
  };
  if (opts.spawn) {
    connector.spawn = () => next("spawn", undefined, {} as never);
  }
  return { connector, calls };
}

const retryable = () => new ConnectorError("UNAVAILABLE", "fake", "HTTP 503", { retryable: true });
const fatal = () => new ConnectorError("CONNECTION_LOST", "fake", "reset after the command was sent");

describe("withRetry", () => {
  it("retries retryable errors until an attempt succeeds", async () => {
    const { connector, calls } = scripted([retryable(), retryable()]);
    const events: RetryEvent[] = [];
    const c = withRetry(connector, { attempts: 3, baseDelayMs: 1, onRetry: (e) => events.push(e) });
    await expect(c.exec(["true"])).resolves.toMatchObject({ exitCode: 0 });
    expect(calls.map((x) => x.op)).toEqual(["exec", "exec", "exec"]);
    expect(events.map((e) => [e.operation, e.attempt])).toEqual([
      ["exec", 1],
      ["exec", 2],
    ]);
  });

  it("never repeats an operation whose error is not retryable", async () => {
    const { connector, calls } = scripted([fatal()]);
    const c = withRetry(connector, { attempts: 5, baseDelayMs: 1 });
    await expect(c.exec(["make-side-effect"])).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    expect(calls).toHaveLength(1);
  });

  it("does not retry plain errors, timeouts or aborts", async () => {
    for (const err of [new Error("boom"), new AbortError(), { code: "TIMEOUT", retryable: false }]) {
      const { connector, calls } = scripted([err]);
      await expect(withRetry(connector, { baseDelayMs: 1 }).getFile("/x")).rejects.toBe(err);
      expect(calls).toHaveLength(1);
    }
  });

  it("gives up after the configured number of attempts with the last error", async () => {
    const errors = [retryable(), retryable(), retryable(), retryable()];
    const last = errors[2];
    const { connector, calls } = scripted(errors);
    await expect(withRetry(connector, { attempts: 3, baseDelayMs: 1 }).homeDir()).rejects.toBe(last);
    expect(calls).toHaveLength(3);
  });

  it("bounds backoff exponentially with full jitter", async () => {
    const { connector } = scripted([retryable(), retryable(), retryable(), retryable()]);
    const delays: number[] = [];
    const c = withRetry(connector, {
      attempts: 5,
      baseDelayMs: 4,
      maxDelayMs: 10,
      random: () => 0.999,
      onRetry: (e) => delays.push(e.delayMs),
    });
    await c.deleteFile("/x");
    expect(delays).toEqual([3, 7, 9, 9]);
  });

  it("gives each attempt only the time that is left and stops when a wait would outlast it", async () => {
    const { connector, calls } = scripted([retryable(), retryable()]);
    const c = withRetry(connector, { attempts: 3, baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5 });
    await expect(c.getFile("/x", { timeoutMs: 5_000 })).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(calls).toHaveLength(1);
    const given = calls[0]?.options?.timeoutMs;
    expect(given).toBeGreaterThan(0);
    expect(given).toBeLessThanOrEqual(5_000);
  });

  it("rejects with ABORTED when the signal fires during a wait, without another attempt", async () => {
    const { connector, calls } = scripted([retryable(), retryable()]);
    const controller = new AbortController();
    const c = withRetry(connector, {
      attempts: 3,
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      random: () => 0.5,
      onRetry: () => setTimeout(() => controller.abort(), 10),
    });
    const err = await c.putFile("/x", new Uint8Array(), { signal: controller.signal }).catch((e: unknown) => e);
    expect(hasErrorCode(err, "ABORTED")).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it("does not start when the signal already fired", async () => {
    const { connector, calls } = scripted([]);
    const controller = new AbortController();
    controller.abort();
    await expect(withRetry(connector).exec(["x"], { signal: controller.signal })).rejects.toMatchObject({
      code: "ABORTED",
    });
    expect(calls).toHaveLength(0);
  });

  it("mirrors spawn, name and capabilities, and passes close through", async () => {
    const plain = withRetry(scripted([]).connector);
    expect(plain.spawn).toBeUndefined();
    const { connector, calls } = scripted([retryable()], { spawn: true });
    const c = withRetry(connector, { baseDelayMs: 1 });
    expect(c.name).toBe("fake");
    expect(c.capabilities.spawn).toBe(true);
    await c.spawn?.(["agent"]);
    await c.close();
    expect(calls.map((x) => x.op)).toEqual(["spawn", "spawn", "close"]);
  });

  it("refuses a malformed policy", () => {
    const { connector } = scripted([]);
    expect(() => withRetry(connector, { attempts: 0 })).toThrow(/attempts/);
    expect(() => withRetry(connector, { attempts: 1.5 })).toThrow(/attempts/);
    expect(() => withRetry(connector, { baseDelayMs: -1 })).toThrow(/baseDelayMs/);
    expect(() => withRetry(connector, { maxDelayMs: Number.NaN })).toThrow(/maxDelayMs/);
  });
});
