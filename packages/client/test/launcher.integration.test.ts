import {
  AbortError,
  type AgentCommand,
  type Connector,
  type LaunchContext,
  type Launcher,
  SchedulerError,
  TimeoutError,
} from "@sremote/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { LauncherEvent, LauncherPrepareOptions, RemoteClient } from "../src/index.js";
import { localClient } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/**
 * A real launcher over the local connector: it "allocates" by creating a marker with a fresh
 * id (as salloc would a job), starts each agent through `env LAUNCH_SLOT=<slot> LAUNCH_JOB=<id>`
 * (as srun would on a node), and records its lifecycle. `refuse` makes prepare fail like a
 * scheduler; `pendingMs` keeps it pending (honouring abort and timeout).
 */
class TestLauncher implements Launcher {
  readonly name = "test";
  readonly log: string[] = [];
  job: number | undefined;
  jobs = 0;
  refuse: string | undefined;
  pendingMs = 0;
  /** Explains an agent's end by the fixture's "about to crash" line, as Slurm's step messages would. */
  explains = false;
  lastJob: number | undefined;

  wrap(command: AgentCommand, context: LaunchContext): AgentCommand {
    if (this.job === undefined) throw new Error("wrap before prepare");
    this.log.push(`wrap:${context.carrier}:${context.slot}`);
    const vars = [`LAUNCH_SLOT=${context.slot}`, `LAUNCH_JOB=${this.job}`, `LAUNCH_CARRIER=${context.carrier}`];
    return { argv: ["env", ...vars, ...command.argv], env: command.env };
  }

  async prepare(connector: Connector, options: LauncherPrepareOptions = {}): Promise<void> {
    this.log.push("prepare");
    if (this.job !== undefined) return; // held: cheap
    if (this.refuse) {
      throw new SchedulerError(this.name, this.refuse, { details: { partition: "nope" } });
    }
    options.onEvent?.({ launcher: this.name, kind: "pending", message: "waiting for resources" });
    if (this.pendingMs > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, this.pendingMs);
        const stop = (error: Error) => {
          clearTimeout(timer);
          reject(error);
        };
        options.signal?.addEventListener("abort", () => stop(new AbortError("allocation request aborted")), {
          once: true,
        });
        const ms = options.timeoutMs;
        if (ms !== undefined) setTimeout(() => stop(new TimeoutError("allocation still pending", ms)), ms).unref();
      });
    }
    // A real round trip through the connector, as salloc would be.
    const r = await connector.exec(["sh", "-c", "echo granted"], { signal: options.signal });
    expect(r.stdout.trim()).toBe("granted");
    this.job = ++this.jobs;
    this.lastJob = this.job;
    options.onEvent?.({ launcher: this.name, kind: "ready", message: `job ${this.job}`, detail: { job: this.job } });
  }

  async release(_connector: Connector, options: LauncherPrepareOptions = {}): Promise<void> {
    this.log.push(`release:${this.job ?? "-"}`);
    if (this.job !== undefined) {
      options.onEvent?.({ launcher: this.name, kind: "released", message: `job ${this.job}` });
    }
    this.job = undefined;
  }

  invalidate(): void {
    this.log.push("invalidate");
    this.job = undefined; // a real launcher would check; this one just re-acquires
  }

  explainExit?(stderr: string): SchedulerError | undefined {
    if (!this.explains || !stderr.includes("about to crash")) return undefined;
    return new SchedulerError(this.name, `job ${this.lastJob} ended the agent: node lost`);
  }

  count(entry: string): number {
    return this.log.filter((e) => e === entry || e.startsWith(`${entry}:`)).length;
  }
}

describe("a launcher with a lifecycle (local connector, real agents)", () => {
  let env: ReturnType<typeof localClient> | undefined;
  afterEach(async () => {
    await env?.client.close({ graceMs: 500 });
    env?.dispose();
    env = undefined;
  });

  function setUp(launcher: TestLauncher, options: Parameters<typeof localClient>[0] = {}) {
    const events: LauncherEvent[] = [];
    env = localClient({ launcher, onEvent: (e) => events.push(e), ...options });
    return { client: env.client as RemoteClient, events };
  }

  it("prepares before each session start, wraps each slot, and releases on close", async () => {
    const launcher = new TestLauncher();
    const { client, events } = setUp(launcher, { poolSize: 3 });
    const slots = new Set<unknown>();
    const inputs = Array.from({ length: 30 }, () => [0.05]);
    for await (const r of client.map("sremote_testmod", "sleep", inputs, { concurrency: 6 })) {
      expect(r.ok).toBe(true);
    }
    for await (const r of client.map(
      "sremote_testmod",
      "env",
      Array.from({ length: 30 }, () => ["LAUNCH_SLOT"]),
      {
        concurrency: 6,
      },
    )) {
      if (r.ok) slots.add(r.value);
    }
    expect(client.sessionCount).toBe(3);
    expect([...slots].sort()).toEqual(["0", "1", "2"]);
    expect(launcher.log.filter((e) => e.startsWith("wrap:")).sort()).toEqual([
      "wrap:session:0",
      "wrap:session:1",
      "wrap:session:2",
    ]);
    // Every agent start was preceded by a prepare; resources were acquired once.
    expect(launcher.count("prepare")).toBeGreaterThanOrEqual(3);
    expect(launcher.jobs).toBe(1);
    expect(events.map((e) => e.kind)).toEqual(["pending", "ready"]);
    await client.close();
    expect(launcher.log.at(-1)).toBe("release:1");
    expect(events.at(-1)).toMatchObject({ kind: "released", launcher: "test" });
  });

  it("file carrier: prepares before every call and spreads calls round-robin over the slots", async () => {
    const launcher = new TestLauncher();
    const { client } = setUp(launcher, { mode: "file", poolSize: 2 });
    const calls = Array.from({ length: 4 }, () =>
      client.call("os.path", "expandvars", ["$LAUNCH_CARRIER:$LAUNCH_SLOT"]),
    );
    const seen = (await Promise.all(calls)).map((r) => r.value);
    expect(seen.sort()).toEqual(["file:0", "file:0", "file:1", "file:1"]);
    expect(launcher.log.filter((e) => e.startsWith("wrap:"))).toEqual([
      "wrap:file:0",
      "wrap:file:1",
      "wrap:file:0",
      "wrap:file:1",
    ]);
    expect(launcher.count("prepare")).toBe(4);
    expect(launcher.jobs).toBe(1);
  });

  it("a scheduler's refusal is SCHEDULER and releases; the next call acquires afresh", async () => {
    const launcher = new TestLauncher();
    launcher.refuse = "invalid partition specified: nope";
    const { client } = setUp(launcher);
    const err = await client.call("math", "sqrt", [4]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchedulerError);
    expect(err).toMatchObject({ code: "SCHEDULER", launcher: "test", message: expect.stringContaining("nope") });
    expect(launcher.count("release")).toBe(1);
    expect(client.sessionCount).toBe(0);
    launcher.refuse = undefined;
    expect((await client.call("math", "sqrt", [4])).value).toBe(2);
    expect(launcher.jobs).toBe(1);
  });

  it("a call that times out while resources are pending releases them before it rejects", async () => {
    const launcher = new TestLauncher();
    launcher.pendingMs = 60_000;
    const { client, events } = setUp(launcher);
    const err = await client.call("math", "sqrt", [4], { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "TIMEOUT" });
    expect(launcher.log.at(-1)).toBe("release:-");
    expect(events.map((e) => e.kind)).toEqual(["pending"]);
    const aborted = new AbortController();
    const pending = client.call("math", "sqrt", [4], { signal: aborted.signal });
    setTimeout(() => aborted.abort(), 100);
    await expect(pending).rejects.toMatchObject({ code: "ABORTED" });
    expect(launcher.count("release")).toBe(2);
  });

  it("a timed-out call stops the agents and releases; the next call re-prepares and starts a new agent", async () => {
    const launcher = new TestLauncher();
    const { client } = setUp(launcher, { cancelGraceMs: 200 });
    const firstPid = (await client.call("sremote_testmod", "pid")).value;
    await expect(client.call("sremote_testmod", "busy", [30], { timeoutMs: 300 })).rejects.toMatchObject({
      code: "TIMEOUT",
    });
    // Released when the call rejected, after its agent (in those resources) was stopped.
    expect(launcher.log.at(-1)).toBe("release:1");
    expect(client.sessionCount).toBe(0);
    const r = await client.call("sremote_testmod", "env", ["LAUNCH_JOB"]);
    expect(r.value).toBe("2");
    expect((await client.call("sremote_testmod", "pid")).value).not.toBe(firstPid);
  });

  it("defers the release while other calls still run on the same resources", async () => {
    const launcher = new TestLauncher();
    const { client } = setUp(launcher, { poolSize: 2, cancelGraceMs: 200 });
    await client.connect();
    const long = client.call("sremote_testmod", "sleep", [1.5]);
    const doomed = client.call("sremote_testmod", "busy", [30], { timeoutMs: 300 });
    await expect(doomed).rejects.toMatchObject({ code: "TIMEOUT" });
    expect(launcher.count("release")).toBe(0); // the long call is still running there
    expect((await long).value).toBe(1.5);
    await vi.waitFor(() => expect(launcher.count("release")).toBe(1), { timeout: 10_000, interval: 20 });
  });

  it("invalidates when a session agent dies unexpectedly; the next call gets new resources", async () => {
    const launcher = new TestLauncher();
    const { client } = setUp(launcher);
    expect((await client.call("sremote_testmod", "env", ["LAUNCH_JOB"])).value).toBe("1");
    await expect(client.call("sremote_testmod", "crash", [3])).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    await vi.waitFor(() => expect(launcher.count("invalidate")).toBe(1), { timeout: 10_000, interval: 20 });
    expect((await client.call("sremote_testmod", "env", ["LAUNCH_JOB"])).value).toBe("2");
    expect(launcher.count("release")).toBe(0);
  });

  it("an agent's end the launcher explains is the calls' error (session and file), never retryable", async () => {
    const launcher = new TestLauncher();
    launcher.explains = true;
    const { client } = setUp(launcher);
    expect((await client.call("sremote_testmod", "env", ["LAUNCH_JOB"])).value).toBe("1");
    const err = await client.call("sremote_testmod", "crash", [3]).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "SCHEDULER",
      retryable: false,
      message: "test: job 1 ended the agent: node lost",
    });
    expect((await client.call("sremote_testmod", "env", ["LAUNCH_JOB"])).value).toBe("2");
    const fileErr = await client.call("sremote_testmod", "crash", [3], { mode: "file" }).catch((e: unknown) => e);
    expect(fileErr).toMatchObject({ code: "SCHEDULER", retryable: false, message: expect.stringContaining("ended") });
    // Without an explanation the end stays CONNECTION_LOST.
    launcher.explains = false;
    await expect(client.call("sremote_testmod", "crash", [3])).rejects.toMatchObject({ code: "CONNECTION_LOST" });
  });

  it("invalidates when a file-carrier agent dies without answering", async () => {
    const launcher = new TestLauncher();
    const { client } = setUp(launcher, { mode: "file" });
    await expect(client.call("sremote_testmod", "crash", [3])).rejects.toMatchObject({ code: "CONNECTION_LOST" });
    expect(launcher.count("invalidate")).toBe(1);
    expect((await client.call("sremote_testmod", "env", ["LAUNCH_JOB"])).value).toBe("2");
  });

  it("the plain function form still rewrites commands, with no lifecycle", async () => {
    const wrapped: string[] = [];
    env = localClient({
      launcher: (c, carrier) => {
        wrapped.push(carrier);
        return { argv: ["env", "LAUNCH_FN=1", ...c.argv], env: c.env };
      },
    });
    expect((await env.client.call("sremote_testmod", "env", ["LAUNCH_FN"])).value).toBe("1");
    expect(wrapped).toEqual(["session"]);
  });
});
