import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describeConnectorConformance } from "@sremote/testkit";
import { type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, vi } from "vitest";
import { newtConnector } from "../src/index.js";
import { PASSWORD, USER } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The published conformance suite, against the NEWT double (real HTTP, files, processes).
// NEWT declares stdin (emulated with an uploaded file) and file modes; it has no spawn and
// reports no signals, so those groups report their tests as skipped.

let double: NewtDouble | undefined;
afterAll(async () => {
  await double?.close();
});

describeConnectorConformance(
  "newt",
  async () => {
    double ??= await startNewtDouble();
    const scratchDir = join(double.homeDir(USER), `conformance-${randomBytes(6).toString("hex")}`);
    await mkdir(scratchDir, { recursive: true });
    return {
      connector: newtConnector({
        machine: "cori",
        baseUrl: double.baseUrl,
        credentials: { username: USER, password: PASSWORD },
      }),
      scratchDir,
      cleanup: () => rm(scratchDir, { recursive: true, force: true }),
    };
  },
  { timeoutMs: 120_000 },
);
