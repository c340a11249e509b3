import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { sfapiConnector } from "@sremote/connector-sfapi";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { discover, install, MARKER_FILE } from "../src/index.js";
import { eventLog, haveGit, pyprojectPackage, SYSTEM_PYTHON, systemPythonReady, tempDir } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The SFAPI double: a real HTTP server (OAuth2 client assertions, commands as polled tasks),
// real files and real processes, no streams. The installer works through exec/putFile
// alone, and the client through the file carrier (issue 13: the installer over SFAPI).

const ready = systemPythonReady && haveGit;
if (!ready && process.env.SREMOTE_TEST_STRICT === "1") {
  throw new Error("the installer's SFAPI test needs /usr/bin/python3 with venv, pip, setuptools and wheel");
}

describe.skipIf(!ready)("install through the Superfacility API", () => {
  let double: SfapiDouble;
  let home: string;
  let keyFile: string;
  let work: { path: string; remove(): Promise<void> };
  const connector = () =>
    sfapiConnector({ machine: "perlmutter", apiUrl: double.baseUrl, tokenUrl: double.tokenUrl, keyFile });

  beforeAll(async () => {
    double = await startSfapiDouble({ machines: ["perlmutter"] });
    home = double.homeDir();
    keyFile = await double.writeKeyFile(double.client().clientId, "pem");
    work = await tempDir("sfapi");
  });
  afterAll(async () => {
    await double?.close();
    await work?.remove();
  });

  it("installs with a local package, then calls work through the client in file mode", async () => {
    const folder = join(work.path, "sfapipkg");
    await pyprojectPackage(folder, "sfapipkg", "1.0", "over sfapi");
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
      expect(first.packages.map((p) => p.distributions)).toEqual([[{ name: "sfapipkg", version: "1.0" }]]);
      // Without streams pip's output still arrives, as lines once each command ends.
      expect(
        log.events.some((e) => e.type === "output" && e.line.includes("Successfully installed sfapipkg-1.0")),
      ).toBe(true);
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
      expect((await client.call("sfapipkg", "hello", ["sfapi"])).value).toBe("sfapipkg says hello to sfapi");
      expect((await client.call("sys", "executable.__str__")).value).toBe(`${home}/.sremote/env/bin/python`);
    } finally {
      await client.close();
    }
    // The file carrier cleaned up after itself.
    expect(await readdir(`${home}/.sremote/tmp`)).toEqual([]);
  }, 120_000);
});
