import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describeConnectorConformance } from "@sremote/testkit";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, vi } from "vitest";
import { sfapiConnector } from "../src/index.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The published conformance suite, against the SFAPI double (real HTTP, tokens, files,
// processes). SFAPI declares stdin (emulated with an uploaded file) and file modes; it has
// no spawn and reports signals as 128 + n, so those groups report their tests as skipped.
// Partial results are off here only for speed: the double rebuilds a running task's whole
// output on every chunk, which makes the 8 MiB stdout+stderr test take ~30 s; waiting for a
// terminal status despite partial results is tested in faults.integration.test.ts.

let double: SfapiDouble | undefined;
afterAll(async () => {
  await double?.close();
});

describeConnectorConformance(
  "sfapi",
  async () => {
    double ??= await startSfapiDouble({ partialResults: false });
    const client = double.client();
    const scratchDir = join(double.homeDir(), `conformance-${randomBytes(6).toString("hex")}`);
    await mkdir(scratchDir, { recursive: true });
    return {
      connector: sfapiConnector({
        machine: "perlmutter",
        apiUrl: double.baseUrl,
        tokenUrl: double.tokenUrl,
        clientId: client.clientId,
        privateKey: client.privateKeyPem as string,
      }),
      scratchDir,
      cleanup: () => rm(scratchDir, { recursive: true, force: true }),
    };
  },
  { timeoutMs: 120_000 },
);
