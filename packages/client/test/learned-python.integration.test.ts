import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localConnector } from "@sremote/connector-local";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { fixturesDir, python } from "./helpers.js";

// Real processes on a shared machine: an explicit budget per test and hook.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/**
 * An endpoint whose PATH starts with a `python3` shim (as pyenv's) that logs each start to
 * `starts.log` and runs the real interpreter: the endpoint's preamble puts it first.
 */
function shimmedEndpoint(root: string) {
  const shims = join(root, "shims");
  mkdirSync(shims);
  const log = join(root, "starts.log");
  writeFileSync(join(shims, "python3"), `#!/bin/sh\necho start >> '${log}'\nexec '${python}' "$@"\n`);
  chmodSync(join(shims, "python3"), 0o755);
  const endpointDir = join(root, "endpoint");
  mkdirSync(endpointDir);
  writeFileSync(join(endpointDir, "preamble.sh"), `PATH='${shims}':$PATH\nexport PATH\n`);
  return {
    layout: { endpointDir, tmpDir: join(endpointDir, "tmp"), workDir: fixturesDir },
    starts: () => {
      try {
        return readFileSync(log, "utf8").split("\n").filter(Boolean).length;
      } catch {
        return 0;
      }
    },
  };
}

/** The real local connector, counting the agent processes it spawns (a decorator). */
function countingSpawns() {
  const inner = localConnector();
  const counter = { spawns: 0 };
  const connector = new Proxy(inner, {
    get(target, key) {
      if (key === "spawn") {
        return (...args: Parameters<NonNullable<typeof inner.spawn>>) => {
          counter.spawns++;
          return (target.spawn as NonNullable<typeof inner.spawn>)(...args);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { connector, counter };
}

describe("the interpreter the first agent ran, reused", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), "sremote-learned-python-"));
    dirs.push(d);
    return d;
  };

  it("later session agents and file-carrier calls skip a python3 shim once an agent said where Python is", async () => {
    const endpoint = shimmedEndpoint(scratch());
    const { connector, counter } = countingSpawns();
    const client = new RemoteClient({ connector, layout: endpoint.layout, poolSize: 2 });
    try {
      const first = await client.call("sys", "executable.__str__", [], { mode: "session" });
      expect(endpoint.starts()).toBe(1);
      // Two at once: the pool's second agent starts; then two file-carrier calls.
      const spawnsBefore = counter.spawns;
      const both = await Promise.all([
        client.call("time", "sleep", [0.3], { mode: "session" }),
        client.call("time", "sleep", [0.3], { mode: "session" }),
      ]);
      expect(both.map((r) => r.value)).toEqual([null, null]);
      expect(counter.spawns).toBe(spawnsBefore + 1); // the pool's second agent did start
      const viaFile = await client.call("sys", "executable.__str__", [], { mode: "file" });
      await client.call("math", "sqrt", [4], { mode: "file" });
      expect(viaFile.value).toBe(first.value);
      expect(endpoint.starts()).toBe(1);
    } finally {
      await client.close();
    }
  });

  it("is not learned through a launcher, nor used when `python` was given", async () => {
    const passThrough = scratch();
    const viaLauncher = shimmedEndpoint(passThrough);
    const launched = new RemoteClient({
      connector: localConnector(),
      layout: viaLauncher.layout,
      launcher: (command) => command,
    });
    try {
      await launched.call("math", "sqrt", [4], { mode: "session" });
      await launched.call("math", "sqrt", [9], { mode: "file" });
      expect(viaLauncher.starts()).toBe(2); // a compute node's Python may live elsewhere
    } finally {
      await launched.close();
    }

    const given = shimmedEndpoint(scratch());
    const client = new RemoteClient({ connector: localConnector(), layout: given.layout, python });
    try {
      await client.call("math", "sqrt", [4], { mode: "session" });
      await client.call("math", "sqrt", [9], { mode: "file" });
      expect(given.starts()).toBe(0);
    } finally {
      await client.close();
    }
  });
});
