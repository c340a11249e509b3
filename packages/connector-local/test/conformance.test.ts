import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeConnectorConformance } from "@sremote/testkit";
import { localConnector } from "../src/index.js";

describeConnectorConformance("local", async () => {
  const scratchDir = await mkdtemp(join(tmpdir(), "sremote-local-conformance-"));
  return { connector: localConnector(), scratchDir, cleanup: () => rm(scratchDir, { recursive: true, force: true }) };
});
