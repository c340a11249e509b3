import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { newtConnector } from "@sremote/connector-newt";
import { DEFAULT_NEWT_USER, type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { discover, install, MARKER_FILE } from "../src/index.js";
import { eventLog, haveGit, pyprojectPackage, SYSTEM_PYTHON, systemPythonReady, tempDir } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The NEWT double: a real HTTP server, real files and real processes, no streams. The
// installer works through exec/putFile alone, and the client through the file carrier.

const ready = systemPythonReady && haveGit;
if (!ready && process.env.SREMOTE_TEST_STRICT === "1") {
  throw new Error("the installer's NEWT test needs /usr/bin/python3 with venv, pip, setuptools and wheel");
}

describe.skipIf(!ready)("install through NEWT", () => {
  let double: NewtDouble;
  let home: string;
  let work: { path: string; remove(): Promise<void> };
  const connector = () =>
    newtConnector({
      machine: "cori",
      baseUrl: double.baseUrl,
      credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
    });

  beforeAll(async () => {
    double = await startNewtDouble();
    home = double.homeDir(DEFAULT_NEWT_USER.username);
    work = await tempDir("newt");
  });
  afterAll(async () => {
    await double?.close();
    await work?.remove();
  });

  it("installs with a local package, then calls work through the client in file mode", async () => {
    const folder = join(work.path, "newtpkg");
    await pyprojectPackage(folder, "newtpkg", "1.0", "over newt");
    const c = connector();
    try {
      expect(c.spawn).toBeUndefined();
      const log = eventLog();
      const first = await install(c, {
        python: SYSTEM_PYTHON,
        packages: [{ kind: "local", path: folder }],
        onProgress: log.listener,
      });
      expect(first.changed).toBe(true);
      expect(first.layout.endpointDir).toBe(`${home}/.sremote`);
      expect(first.packages.map((p) => p.distributions)).toEqual([[{ name: "newtpkg", version: "1.0" }]]);
      // Without streams pip's output still arrives, as lines once each command ends.
      expect(log.events.some((e) => e.type === "output" && e.line.includes("Successfully installed newtpkg-1.0"))).toBe(
        true,
      );
      expect(await readdir(`${home}/.sremote`)).toEqual(expect.arrayContaining(["env", MARKER_FILE]));
      expect(await readdir(`${home}/.sremote/tmp`)).toEqual([]);

      const second = await install(c, { packages: [{ kind: "local", path: folder }] });
      expect(second.changed).toBe(false);
      expect(second.operations).toMatchObject({ uploads: 0, deletes: 0 });
      expect(await discover(c)).toMatchObject({ source: "default", complete: true });
    } finally {
      await c.close();
    }

    const client = new RemoteClient({ connector: connector(), mode: "file", autoInstallAgent: false });
    try {
      expect((await client.call("math", "sqrt", [2])).value).toBeCloseTo(Math.SQRT2, 12);
      expect((await client.call("newtpkg", "hello", ["newt"])).value).toBe("newtpkg says hello to newt");
      expect((await client.call("sys", "executable.__str__")).value).toBe(`${home}/.sremote/env/bin/python`);
    } finally {
      await client.close();
    }
    // The file carrier cleaned up after itself.
    expect(await readdir(`${home}/.sremote/tmp`)).toEqual([]);
  }, 120_000);
});
