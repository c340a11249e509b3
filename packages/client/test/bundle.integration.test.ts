import { cpSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { agentDir } from "@sremote/agent";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type BundledApp, bundleApp } from "./bundled-app.js";
import { python } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// An app bundled into one file (esbuild, as users ship CLIs and serverless functions): the
// @sremote/agent package folder is not on disk next to the bundle, so the agent's files are
// found through SREMOTE_AGENT_DIR or the agentDir option.
const here = fileURLToPath(new URL(".", import.meta.url));
const esbuild = createRequire(join(here, "../../../package.json"))("esbuild") as typeof import("esbuild");

const APP = `
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { localConnector } from "@sremote/connector-local";

// In the app's scratch folder (its working folder), which the test removes.
const home = mkdtempSync(join(process.cwd(), "home-"));
const client = new RemoteClient({
  connector: localConnector(),
  python: process.env.APP_PYTHON,
  agentDir: process.env.APP_AGENT_DIR || undefined,
  layout: { endpointDir: join(home, "endpoint"), tmpDir: join(home, "tmp"), workDir: home },
});
try {
  const r = await client.call("math", "sqrt", [2]);
  console.log(JSON.stringify({ value: r.value }));
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }));
} finally {
  await client.close();
}
`;

describe("a bundled app (esbuild, one file, no node_modules beside it)", () => {
  let app: BundledApp;
  let agentCopy: string;

  beforeAll(async () => {
    app = await bundleApp(esbuild, {
      source: APP,
      packageName: "@sremote/client",
      packageDir: join(here, ".."),
      prefix: "sremote-bundle-",
    });
    agentCopy = join(app.dir, "agent");
    cpSync(join(agentDir(), "interpreter.sh"), join(agentCopy, "interpreter.sh"));
    cpSync(join(agentDir(), "sremote_agent"), join(agentCopy, "sremote_agent"), {
      recursive: true,
      filter: (src) => !src.includes("__pycache__"),
    });
  });
  afterAll(() => {
    app?.remove();
  });

  // The app runs its agent under the test's Python (APP_PYTHON).
  const runBundle = (env: Record<string, string>) => app.run({ APP_PYTHON: python, ...env });

  it("calls through the agent files SREMOTE_AGENT_DIR points at", async () => {
    expect(await runBundle({ SREMOTE_AGENT_DIR: agentCopy })).toEqual({ value: Math.SQRT2 });
  });

  it("calls through the agent files the agentDir option points at", async () => {
    expect(await runBundle({ APP_AGENT_DIR: agentCopy })).toEqual({ value: Math.SQRT2 });
  });

  it("without either, fails with a UsageError that says how to fix it", async () => {
    const r = await runBundle({});
    expect(r.code).toBe("INVALID_ARGUMENT");
    expect(String(r.message)).toContain("SREMOTE_AGENT_DIR");
  });
});
