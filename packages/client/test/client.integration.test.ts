import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentDir } from "@sremote/agent";
import { localConnector } from "@sremote/connector-local";
import { decodeClientMessage } from "@sremote/protocol";
import { describeUnless, pythonHasModules } from "@sremote/testkit";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { kw, NDArray, type RemoteClient } from "../src/index.js";
import { alive, fixturesDir, localClient } from "./helpers.js";
import { type E2EEnv, e2eTargets } from "./targets.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// End-to-end through the real agent, on every connector and carrier.
for (const target of e2eTargets) {
  describeUnless(target.missing)(`RemoteClient over ${target.name}`, () => {
    const mode = target.mode;
    let client: RemoteClient;
    let env: E2EEnv;

    beforeAll(async () => {
      env = await target.setup();
      client = env.client;
    }, 60_000);
    afterAll(async () => {
      await client.close();
      expect(await env.leftovers()).toEqual([]);
      await env.close();
    }, 60_000);

    it("calls with positional and keyword arguments", async () => {
      expect((await client.call("math", "hypot", [3, 4])).value).toBe(5);
      const r = await client.call("sremote_testmod", "echo_many", [1, "two"], { kwargs: { three: 3 } });
      expect(r.value).toEqual({ args: [1, "two"], kwargs: { three: 3 } });
      expect((await client.call("sremote_testmod", "add", { a: 2, b: 40 })).value).toBe(42);
      expect(r.carrier).toBe(mode);
    });

    it("round-trips every value the protocol maps", async () => {
      const values: unknown[] = [
        null,
        true,
        -7,
        2n ** 60n,
        -(2n ** 63n),
        0.5,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        "héllo ✓ 😀",
        new Uint8Array([0, 1, 2, 255]),
        new Date("2026-11-28T10:00:00.123Z"),
        [1, [2, [3]]],
        { a: { b: [1, 2] } },
        new Map<unknown, unknown>([
          [1, "one"],
          ["two", 2],
        ]),
        new Set([1, 2, 3]),
      ];
      for (const v of values) {
        const back = (await client.call("sremote_testmod", "echo", [v])).value;
        if (typeof v === "number" && Number.isNaN(v)) expect(Number.isNaN(back)).toBe(true);
        else expect(back).toEqual(v);
      }
    });

    it("round-trips an ndarray through numpy", async (ctx) => {
      if (!pythonHasModules(target.python, ["numpy"])) ctx.skip(`${target.python} has no numpy (python3-numpy)`);
      const arr = new NDArray("<f8", [2, 2], new Float64Array([1, 2, 3, 4]));
      const back = (await client.call("sremote_testmod", "echo", [arr])).value as NDArray;
      expect(back.dtype).toBe("<f8");
      expect(back.shape).toEqual([2, 2]);
      expect(Array.from(back.data as Float64Array)).toEqual([1, 2, 3, 4]);
    });

    it("captures stdout and stderr per call", async () => {
      const r = await client.call("sremote_testmod", "shout", ["hey"]);
      expect(r.value).toBe(3);
      expect(r.stdout).toBe("HEY\n");
      expect(r.stderr).toBe("warning: hey\n");
    });

    it("keeps fd-level writes and subprocess output out of the frame stream", async () => {
      const r = await client.call("sremote_testmod", "write_fd1", ["raw bytes on fd 1\n"]);
      expect(r.value).toBe("done");
      expect(r.stdout).toContain("raw bytes on fd 1");
      expect(r.stdout).toContain("from a subprocess");
      expect((await client.call("math", "sqrt", [16])).value).toBe(4);
    });

    it("applies env, envDefault and PATH additions for one call", async () => {
      expect(
        (await client.call("sremote_testmod", "env", ["SREMOTE_X"], { env: { SREMOTE_X: "a b 'c'" } })).value,
      ).toBe("a b 'c'");
      expect((await client.call("sremote_testmod", "env", ["SREMOTE_X"])).value).toBeNull();
      const home = (await client.call("sremote_testmod", "env", ["HOME"])).value;
      expect((await client.call("sremote_testmod", "env", ["HOME"], { envDefault: { HOME: "/nope" } })).value).toBe(
        home,
      );
      expect((await client.call("sremote_testmod", "path", [], { pathAppend: ["/opt/extra"] })).value).toMatch(
        /:\/opt\/extra$/,
      );
      expect((await client.call("sremote_testmod", "cwd", [], { cwd: "/tmp" })).value).toBe("/tmp");
      expect((await client.call("sremote_testmod", "cwd", [])).value).toBe(env.workDir);
    });

    it("reports the three failure kinds with Python facts", async () => {
      await expect(client.call("no_such_module_xyz", "f")).rejects.toMatchObject({
        code: "REMOTE_EXEC",
        kind: "import",
        type: "ModuleNotFoundError",
      });
      await expect(client.call("math", "no_such_function")).rejects.toMatchObject({
        code: "REMOTE_EXEC",
        kind: "attribute",
      });
      const err = await client.call("sremote_testmod", "fail_chained").catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "REMOTE_EXEC",
        kind: "exception",
        type: "ValueError",
        remoteMessage: "could not find the key",
      });
      expect((err as { traceback: string }).traceback).toContain("KeyError");
      expect((err as { traceback: string }).traceback).toContain("direct cause");
    });

    it("names the type and path of an unserializable result", async () => {
      const err = await client.call("sremote_testmod", "unserializable").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "REMOTE_EXEC", kind: "serialization" });
      expect(String((err as Error).message)).toMatch(/object/);
      expect(String((err as Error).message)).toContain("[2]");
    });

    it("rejects bad arguments before sending anything", async () => {
      await expect(client.call("math", "sqrt", 2 as never)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(client.call("math", "sqrt", "x" as never)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(client.call("math", "sqrt", new Map() as never)).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(client.call("math; rm -rf /", "sqrt", [1])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      await expect(client.call("sremote_testmod", "echo", [() => 1])).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      await expect(client.call("math", "sqrt", [4], { env: { "BAD NAME": "x" } })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
      });
      for (const timeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, "100" as never]) {
        await expect(client.call("math", "sqrt", [4], { timeoutMs })).rejects.toMatchObject({
          code: "INVALID_ARGUMENT",
        });
      }
      // Nothing of the refused calls is left behind: the next call goes through.
      expect((await client.call("math", "sqrt", [4])).value).toBe(2);
    });

    it("offers typed module proxies with keyword arguments and attribute paths", async () => {
      interface TestMod {
        add(a: number, b: number): number;
        echo_many(...args: unknown[]): { args: unknown[]; kwargs: Record<string, unknown> };
        Queue: { valid_name(name: string): boolean };
      }
      const mod = client.module<TestMod>("sremote_testmod");
      expect(await mod.add(1, 2)).toBe(3);
      expect(await mod.echo_many(1, kw({ x: 2 }))).toEqual({ args: [1], kwargs: { x: 2 } });
      expect(await mod.Queue.valid_name("ok_name")).toBe(true);
    });

    it("times out a call and stays usable", async () => {
      await expect(client.call("sremote_testmod", "busy", [30], { timeoutMs: 300 })).rejects.toMatchObject({
        code: "TIMEOUT",
      });
      expect((await client.call("math", "sqrt", [9])).value).toBe(3);
    });

    it("aborts a call through its signal", async () => {
      const controller = new AbortController();
      const p = client.call("sremote_testmod", "busy", [30], { signal: controller.signal });
      setTimeout(() => controller.abort(), 200);
      await expect(p).rejects.toMatchObject({ code: "ABORTED" });
      expect((await client.call("math", "sqrt", [4])).value).toBe(2);
    });

    it("checks registered requirements before calling (import and distribution names)", async () => {
      const other = await target.setup();
      const c = other.client;
      try {
        c.registerModule("demo-dist", ">=1.2,<2");
        c.registerModule("demo_pkg");
        expect((await c.call("math", "sqrt", [4])).value).toBe(2);
        c.registerModule("Demo.Dist", ">=2");
        await expect(c.call("math", "sqrt", [4])).rejects.toMatchObject({
          code: "MODULES",
          problems: [{ module: "Demo.Dist", wanted: ">=2", found: "1.2.3" }],
        });
        c.registerModule("Demo.Dist");
        c.registerModule("no_such_dist_xyz");
        await expect(c.call("math", "sqrt", [4])).rejects.toMatchObject({
          code: "MODULES",
          problems: [{ module: "no_such_dist_xyz", wanted: "", found: null }],
        });
      } finally {
        await other.close();
      }
    });
  });
}

describe("RemoteClient over local: carrier facts", () => {
  it("starts Python once per session and once per file-carrier call", async () => {
    const { client, dispose } = localClient();
    try {
      const sessionPids = new Set<number>();
      for (let i = 0; i < 5; i++)
        sessionPids.add((await client.call<number>("sremote_testmod", "pid", [], { mode: "session" })).value);
      expect(sessionPids.size).toBe(1);
      const filePids = new Set<number>();
      for (let i = 0; i < 3; i++)
        filePids.add((await client.call<number>("sremote_testmod", "pid", [], { mode: "file" })).value);
      expect(filePids.size).toBe(3);
    } finally {
      await client.close();
      dispose();
    }
  });

  it("recycles a session whose call cannot be interrupted, and the next call works", async () => {
    const { client, dispose } = localClient({ cancelGraceMs: 300 });
    try {
      const before = (await client.call<number>("sremote_testmod", "pid")).value;
      await expect(client.call("sremote_testmod", "sleep", [30], { timeoutMs: 200 })).rejects.toMatchObject({
        code: "TIMEOUT",
      });
      const after = (await client.call<number>("sremote_testmod", "pid")).value;
      expect(after).not.toBe(before);
      await new Promise((r) => setTimeout(r, 200));
      expect(alive(before)).toBe(false);
    } finally {
      await client.close();
      dispose();
    }
  });

  it("reports an agent that exits mid-call with its exit code and stderr", async () => {
    const { client, dispose } = localClient();
    try {
      const err = await client.call("sremote_testmod", "crash", [3]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "CONNECTION_LOST", details: { exitCode: 3 } });
      expect(String((err as Error).message)).toContain("about to crash");
      expect((await client.call("math", "sqrt", [1])).value).toBe(1);
    } finally {
      await client.close();
      dispose();
    }
  });

  it.each([
    ["os._exit(3)", ["crash", [3]], { exitCode: 3 }],
    ["SIGKILL", ["kill_self", ["SIGKILL"]], { signal: "SIGKILL" }],
  ])("file carrier: an agent that dies mid-call (%s) is CONNECTION_LOST, not NOT_SET_UP", async (_, call, details) => {
    const { client, dispose } = localClient({ mode: "file" });
    try {
      const [fn, args] = call as [string, unknown[]];
      const err = await client.call("sremote_testmod", fn, args).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "CONNECTION_LOST", retryable: false, details });
      expect(String((err as Error).message)).toMatch(/ended without writing a response.*may have run/);
      expect((await client.call("math", "sqrt", [4])).value).toBe(2);
    } finally {
      await client.close();
      dispose();
    }
  });

  it.each([
    ["garbage", "PROTOCOL"],
    ["truncated", "CONNECTION_LOST"],
    ["exit", "CONNECTION_LOST"],
  ])("turns a %s agent into a typed error", async (mode, code) => {
    const { client, dispose } = localClient({
      launcher: (c) => ({ ...c, argv: [c.env.SREMOTE_PYTHON ?? "python3", `${fixturesDir}/fake_agent.py`, mode] }),
    });
    try {
      await expect(client.call("math", "sqrt", [1], { timeoutMs: 20_000 })).rejects.toMatchObject({ code });
    } finally {
      await client.close();
      dispose();
    }
  });

  it("refuses an agent speaking another protocol version", async () => {
    const { client, dispose } = localClient({
      launcher: (c) => ({
        ...c,
        argv: [c.env.SREMOTE_PYTHON ?? "python3", `${fixturesDir}/fake_agent.py`, "wrong-protocol"],
      }),
    });
    try {
      await expect(client.call("math", "sqrt", [1])).rejects.toMatchObject({ code: "VERSION_MISMATCH" });
    } finally {
      await client.close();
      dispose();
    }
  });

  it("refuses frames over the size limit without breaking other sessions", async () => {
    const { client, dispose } = localClient({ maxFrameBytes: 64 * 1024 });
    try {
      await expect(client.call("sremote_testmod", "big", [200_000])).rejects.toMatchObject({
        code: expect.stringMatching(/PROTOCOL|REMOTE_EXEC/),
      });
      expect((await client.call("math", "sqrt", [1])).value).toBe(1);
    } finally {
      await client.close();
      dispose();
    }
  });

  it("refuses an argument over the frame limit for that call alone: a concurrent call on the same session finishes", async () => {
    const { client, dispose } = localClient({ maxFrameBytes: 64 * 1024, mode: "session" });
    try {
      const pid = (await client.call<number>("sremote_testmod", "pid")).value;
      const bystander = client.call("sremote_testmod", "sleep", [0.3]);
      const err = await client.call("sremote_testmod", "echo", [new Uint8Array(100_000)]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(String((err as Error).message)).toMatch(/exceeds the frame limit of 65536 bytes/);
      await expect(bystander).resolves.toMatchObject({ carrier: "session" });
      // the same agent is still serving
      expect((await client.call<number>("sremote_testmod", "pid")).value).toBe(pid);
    } finally {
      await client.close();
      dispose();
    }
  });

  it("close() during a file-carrier call stops it and deletes its temp files before the connector closes", async () => {
    const { client, leftovers, dispose } = localClient({ mode: "file" });
    try {
      expect((await client.call("math", "sqrt", [9])).value).toBe(3);
      const running = client.call("sremote_testmod", "sleep", [30]);
      const outcome = running.catch((e: unknown) => e);
      // the call runs once its agent has taken the request file (the agent removes it)
      let uploaded = false;
      for (let i = 0; i < 400 && !(uploaded && leftovers().length === 0); i++) {
        uploaded ||= leftovers().some((f) => f.endsWith(".req"));
        await new Promise((r) => setTimeout(r, 10));
      }
      await client.close({ graceMs: 100 });
      expect(await outcome).toMatchObject({ code: "CLOSED" });
      expect(leftovers()).toEqual([]);
      await expect(client.call("math", "sqrt", [1])).rejects.toMatchObject({ code: "CLOSED" });
    } finally {
      await client.close();
      dispose();
    }
  });

  it("file carrier: the request carries the call's time budget, for the agent to end an orphaned call", async () => {
    const connector = localConnector();
    const sent: Uint8Array[] = [];
    const putFile = connector.putFile.bind(connector);
    connector.putFile = (path, data, options) => {
      if (path.endsWith(".req")) sent.push(data);
      return putFile(path, data, options);
    };
    const { client, dispose } = localClient({ connector, mode: "file" });
    try {
      expect((await client.call("math", "sqrt", [4], { timeoutMs: 1499.2 })).value).toBe(2);
      expect((await client.call("math", "sqrt", [9])).value).toBe(3);
      const [withBudget, without] = sent.map((b) => decodeClientMessage(b));
      expect(withBudget).toMatchObject({ kind: "call", timeoutMs: 1500 });
      expect(without).not.toHaveProperty("timeoutMs");
    } finally {
      await client.close();
      dispose();
    }
  });

  it.runIf(process.getuid?.() === 0)(
    "file carrier: a temp folder too full for the response is REMOTE_IO naming the folder, with nothing left in it",
    async (ctx) => {
      const mount = mkdtempSync(join(tmpdir(), "sremote-full-tmp-"));
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k,mode=0700", "sremote-full-tmp", mount]);
      } catch (err) {
        rmSync(mount, { recursive: true, force: true });
        ctx.skip(`cannot mount a small tmpfs (${String((err as Error).message).split("\n")[0]})`);
      }
      const { client, dispose } = localClient({
        mode: "file",
        layout: { endpointDir: agentDir(), tmpDir: mount, workDir: fixturesDir },
      });
      try {
        const err = await client.call("sremote_testmod", "big", [2_000_000]).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "REMOTE_IO" });
        expect(String((err as Error).message)).toContain(mount);
        expect((await client.call("math", "sqrt", [16])).value).toBe(4);
        await client.close();
        expect(readdirSync(mount)).toEqual([]);
      } finally {
        await client.close();
        dispose();
        execFileSync("umount", [mount]);
        rmSync(mount, { recursive: true, force: true });
      }
    },
  );

  it("streams output while a call runs", async () => {
    const { client, dispose } = localClient();
    try {
      const chunks: string[] = [];
      const r = await client.call("sremote_testmod", "stream", [3], { onOutput: (s, d) => chunks.push(`${s}:${d}`) });
      expect(r.value).toBe(3);
      expect(chunks.join("")).toContain("stdout:line 0");
      expect(chunks.join("")).toContain("line 2");
    } finally {
      await client.close();
      dispose();
    }
  });

  it("answers 10,000 calls through a pool of 4 sessions with 64 in flight, each exactly once", async () => {
    const { client, dispose, leftovers } = localClient({ poolSize: 4 });
    const pids = new Set<number>();
    try {
      const total = 10_000;
      const seen = new Array<number>(total).fill(0);
      let next = 0;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          const r = await client.call<[number, string]>("sremote_testmod", "echo", [[i, `payload-${i}`]]);
          expect(r.value).toEqual([i, `payload-${i}`]);
          seen[i] = (seen[i] as number) + 1;
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      expect(seen.every((n) => n === 1)).toBe(true);
      expect(client.sessionCount).toBeGreaterThanOrEqual(2);
      expect(client.sessionCount).toBeLessThanOrEqual(4);
      for (let i = 0; i < 8; i++) pids.add((await client.call<number>("sremote_testmod", "pid")).value);
    } finally {
      await client.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(leftovers()).toEqual([]);
    dispose();
  }, 120_000);

  it("rejects calls after close", async () => {
    const { client, dispose } = localClient();
    await client.call("math", "sqrt", [1]);
    await client.close();
    await expect(client.call("math", "sqrt", [1])).rejects.toMatchObject({ code: "CLOSED" });
    dispose();
  });
});

describe("RemoteClient over local: a chatty login shell", () => {
  it("skips output printed before the agent's hello and says so", async () => {
    const warnings: string[] = [];
    const { client, dispose } = localClient({
      logger: { warn: (m, f) => warnings.push(`${m} ${JSON.stringify(f)}`) },
      launcher: (c) => ({
        ...c,
        argv: [
          "sh",
          "-c",
          'printf "Welcome to Perlmutter\\n\\000\\000\\001\\205 module load python\\n"; exec "$@"',
          "sh",
          ...c.argv,
        ],
      }),
    });
    try {
      expect((await client.call("math", "sqrt", [16])).value).toBe(4);
      expect(warnings.join("")).toContain("Welcome to Perlmutter");
    } finally {
      await client.close();
      dispose();
    }
  });
});
