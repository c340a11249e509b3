import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AGENT_MANIFEST_NAME } from "@sremote/agent";
import { localConnector } from "@sremote/connector-local";
import type { Connector } from "@sremote/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { fixturesDir, python } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** A real local connector that counts the files it writes (a decorator, not a fake). */
function countingConnector(home?: string): { connector: Connector; puts: string[] } {
  const inner = localConnector(home ? { homeDir: home } : {});
  const puts: string[] = [];
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
    spawn: (argv, o) => (inner.spawn as NonNullable<Connector["spawn"]>)(argv, o),
    [Symbol.asyncDispose]: () => inner.close(),
  };
  return { connector, puts };
}

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
