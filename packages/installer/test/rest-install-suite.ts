import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import type { Connector } from "@sremote/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discover, install, MARKER_FILE } from "../src/index.js";
import { eventLog, haveGit, pyprojectPackage, SYSTEM_PYTHON, systemPythonReady, tempDir } from "./helpers.js";

/** A REST double running for the suite, and how to reach it. */
export interface RestTarget {
  /** A fresh connector to the double's machine. */
  connector(): Connector;
  /** The account's home folder on the double's machine. */
  home: string;
  close(): Promise<void>;
}

/**
 * The installer over a REST connector (no streams: exec and putFile alone), then the client
 * through the file carrier, against the double that `start` runs: the same steps for NEWT
 * and the Superfacility API. `name` names the API in titles and in the test package.
 */
export function restInstallSuite(title: string, name: string, start: () => Promise<RestTarget>): void {
  const ready = systemPythonReady && haveGit;
  if (!ready && process.env.SREMOTE_TEST_STRICT === "1") {
    throw new Error(`the installer's ${name} test needs /usr/bin/python3 with venv, pip, setuptools and wheel`);
  }

  describe.skipIf(!ready)(title, () => {
    let target: RestTarget;
    let work: { path: string; remove(): Promise<void> };

    beforeAll(async () => {
      target = await start();
      work = await tempDir(name);
    });
    afterAll(async () => {
      await target?.close();
      await work?.remove();
    });

    it("installs with a local package, then calls work through the client in file mode", async () => {
      const pkg = `${name}pkg`;
      const home = target.home;
      const folder = join(work.path, pkg);
      await pyprojectPackage(folder, pkg, "1.0", `over ${name}`);
      const c = target.connector();
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
        expect(first.packages.map((p) => p.distributions)).toEqual([[{ name: pkg, version: "1.0" }]]);
        // Without streams pip's output still arrives, as lines once each command ends.
        expect(
          log.events.some((e) => e.type === "output" && e.line.includes(`Successfully installed ${pkg}-1.0`)),
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

      const client = new RemoteClient({ connector: target.connector(), mode: "file", autoInstallAgent: false });
      try {
        expect((await client.call("math", "sqrt", [2])).value).toBeCloseTo(Math.SQRT2, 12);
        expect((await client.call(pkg, "hello", [name])).value).toBe(`${pkg} says hello to ${name}`);
        expect((await client.call("sys", "executable.__str__")).value).toBe(`${home}/.sremote/env/bin/python`);
      } finally {
        await client.close();
      }
      // The file carrier cleaned up after itself.
      expect(await readdir(`${home}/.sremote/tmp`)).toEqual([]);
    }, 120_000);
  });
}
