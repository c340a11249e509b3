import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeConnectorConformance } from "@sremote/testkit";
import { vi } from "vitest";
import { localConnector } from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

describeConnectorConformance("local", async () => {
  const scratchDir = await mkdtemp(join(tmpdir(), "sremote-local-conformance-"));
  return { connector: localConnector(), scratchDir, cleanup: () => rm(scratchDir, { recursive: true, force: true }) };
});
