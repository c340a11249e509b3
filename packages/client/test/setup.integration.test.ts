import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_MANIFEST_NAME, AGENT_VERSION, agentDir } from "@sremote/agent";
import { localConnector } from "@sremote/connector-local";
import type { Connector, RemoteProcess } from "@sremote/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { fixturesDir, python } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** A real local connector that counts the files it writes (a decorator, not a fake). */
function countingConnector(home?: string): { connector: Connector; puts: string[]; spawned: RemoteProcess[] } {
  const inner = localConnector(home ? { homeDir: home } : {});
  const puts: string[] = [];
  const spawned: RemoteProcess[] = [];
  const connector: Connector = {
    name: inner.name,
    capabilities: inner.capabilities,
    connect: (o) => inner.connect(o),
    close: () => inner.close(),
    status: (o) => inner.status(o),
    homeDir: (o) => inner.homeDir(o),
    putFile: (path, data, o) => {
      puts.push(path);
      return inner.putFile(path, data, o);
    },
    getFile: (p, o) => inner.getFile(p, o),
    deleteFile: (p, o) => inner.deleteFile(p, o),
    exec: (argv, o) => inner.exec(argv, o),
    spawn: async (argv, o) => {
      const proc = await (inner.spawn as NonNullable<Connector["spawn"]>)(argv, o);
      spawned.push(proc);
      return proc;
    },
    [Symbol.asyncDispose]: () => inner.close(),
  };
  return { connector, puts, spawned };
}

/** The version of the agent answering, read by a call. */
const VERSION_EXPR = "__import__('sremote_agent').__version__";

describe("endpoint set-up by the client", () => {
  const dirs: string[] = [];
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), "sremote-setup-test-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it.each(["session", "file"] as const)("uploads the agent into an empty endpoint once (%s carrier)", async (mode) => {
    const root = scratch();
    const layout = { endpointDir: join(root, "endpoint"), tmpDir: join(root, "endpoint", "tmp"), workDir: fixturesDir };
    const first = countingConnector();
    const a = new RemoteClient({ connector: first.connector, python, layout, mode });
    expect((await a.call("math", "sqrt", [2])).value).toBeCloseTo(Math.SQRT2);
    await a.close();
    expect(first.puts.some((p) => p.endsWith("interpreter.sh"))).toBe(true);
    expect(first.puts.filter((p) => !p.endsWith(".req")).at(-1)).toContain(AGENT_MANIFEST_NAME);
    expect(statSync(join(root, "endpoint", "tmp")).mode & 0o777).toBe(0o700);

    const second = countingConnector();
    const b = new RemoteClient({ connector: second.connector, python, layout, mode });
    expect((await b.call("math", "sqrt", [4])).value).toBe(2);
    await b.close();
    expect(second.puts.filter((p) => !p.endsWith(".req"))).toEqual([]);
  });

  it("starts the session agent beside the agent-file check, and never answers a call with a stale one", async () => {
    const root = scratch();
    const layout = { endpointDir: join(root, "endpoint"), tmpDir: join(root, "endpoint", "tmp"), workDir: fixturesDir };
    // An older agent in the endpoint: the same files but another version.
    const stale = join(root, "stale-agent");
    cpSync(agentDir(), stale, {
      recursive: true,
      filter: (src) => !/node_modules|__pycache__|[/\\](dist|src|test|python-tests)$/.test(src),
    });
    const init = join(stale, "sremote_agent", "__init__.py");
    writeFileSync(init, readFileSync(init, "utf8").replace(/__version__ = "[^"]*"/, '__version__ = "0.0.1-stale"'));
    const old = new RemoteClient({ connector: localConnector(), python, layout, agentDir: stale });
    expect((await old.call("builtins", "eval", [VERSION_EXPR])).value).toBe("0.0.1-stale");
    await old.close();

    // The early start runs the stale files; the check updates them, so that session is
    // ended unused and the call goes to an agent started from the current files.
    const updating = countingConnector();
    const a = new RemoteClient({ connector: updating.connector, python, layout });
    expect((await a.call("builtins", "eval", [VERSION_EXPR])).value).toBe(AGENT_VERSION);
    expect(updating.spawned).toHaveLength(2);
    const discarded = await updating.spawned[0]?.exited;
    expect(discarded?.exitCode === 0).toBe(false);
    await a.close();

    // Current files: the early session is the one that answers (one agent start in all).
    const current = countingConnector();
    const b = new RemoteClient({ connector: current.connector, python, layout });
    expect((await b.call("builtins", "eval", [VERSION_EXPR])).value).toBe(AGENT_VERSION);
    expect(current.spawned).toHaveLength(1);
    expect(current.puts.filter((p) => !p.endsWith(".req"))).toEqual([]);
    await b.close();
  });

  it.each(["session", "file"] as const)(
    "says how to install when the endpoint has no agent (%s carrier)",
    async (mode) => {
      const root = scratch();
      const client = new RemoteClient({
        connector: localConnector(),
        python,
        mode,
        autoInstallAgent: false,
        layout: { endpointDir: join(root, "empty"), tmpDir: join(root, "tmp"), workDir: root },
      });
      try {
        const err = await client.call("math", "sqrt", [2]).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: "NOT_SET_UP" });
        expect(String((err as Error).message)).toMatch(/sremote install|interpreter\.sh/);
      } finally {
        await client.close();
      }
    },
  );

  it("follows ~/.sremote/.location to another endpoint with private temp and working folders", async () => {
    const root = scratch();
    const home = join(root, "home");
    mkdirSync(join(home, ".sremote"), { recursive: true });
    mkdirSync(join(home, "work"));
    writeFileSync(
      join(home, ".sremote", ".location"),
      JSON.stringify({ sremote: join(root, "shared-endpoint"), relative_tmp: "private-tmp", relative_pwd: "work" }),
    );
    const client = new RemoteClient({ connector: localConnector({ homeDir: home }), python, mode: "file" });
    try {
      expect((await client.call("os", "getcwd")).value).toBe(join(home, "work"));
      expect(client.layout).toEqual({
        endpointDir: join(root, "shared-endpoint"),
        tmpDir: join(home, "private-tmp"),
        workDir: join(home, "work"),
      });
      expect(statSync(join(root, "shared-endpoint", "interpreter.sh")).isFile()).toBe(true);
    } finally {
      await client.close();
    }
  });

  it("rejects an invalid .location with INVALID_LOCATION", async () => {
    const root = scratch();
    mkdirSync(join(root, ".sremote"), { recursive: true });
    writeFileSync(join(root, ".sremote", ".location"), '{"sremote": 5}');
    const client = new RemoteClient({ connector: localConnector({ homeDir: root }), python });
    try {
      await expect(client.call("math", "sqrt", [1])).rejects.toMatchObject({ code: "INVALID_LOCATION" });
    } finally {
      await client.close();
    }
  });
});
