import { cpSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
// The client tests' helper (by path: it is not part of any package's API).
import { type BundledApp, bundleApp } from "../../client/test/bundled-app.js";

// Real processes on a shared machine: an explicit budget, never vitest's 5 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// An app bundled into one file (esbuild): the installer's package folder, and with it its
// remote scripts, is not on disk next to the bundle. The scripts are read from ../scripts/
// relative to the bundle file, as the installer's remote-scripts.ts documents.
const here = fileURLToPath(new URL(".", import.meta.url));
const esbuild = createRequire(join(here, "../../../package.json"))("esbuild") as typeof import("esbuild");

const APP = `
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { localConnector } from "@sremote/connector-local";
import { uninstall } from "@sremote/installer";

// In the app's scratch folder (its working folder), which the test removes.
const home = mkdtempSync(join(process.cwd(), "home-"));
const connector = localConnector();
try {
  const layout = { endpointDir: join(home, "endpoint"), tmpDir: join(home, "endpoint", "tmp"), workDir: home };
  const r = await uninstall(connector, { layout });
  console.log(JSON.stringify({ steps: r.steps.map((s) => s.message) }));
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }));
} finally {
  await connector.close();
}
`;

describe("the installer in a bundled app (esbuild, one file)", () => {
  let app: BundledApp;

  beforeAll(async () => {
    app = await bundleApp(esbuild, {
      source: APP,
      packageName: "@sremote/installer",
      packageDir: join(here, ".."),
      prefix: "sremote-installer-bundle-",
    });
  });
  afterAll(() => {
    app?.remove();
  });

  it("without the scripts folder, fails with a UsageError that says what to ship", async () => {
    const r = await app.run();
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(String(r.message)).toContain("node_modules/@sremote/installer/scripts/");
  });

  it("runs with the scripts folder shipped as ../scripts/ relative to the bundle", async () => {
    mkdirSync(join(app.dir, "scripts"));
    cpSync(join(here, "..", "scripts"), join(app.dir, "scripts"), { recursive: true });
    expect(await app.run()).toEqual({ steps: [expect.stringContaining("no endpoint at")] });
  });
});
