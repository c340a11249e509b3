import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sfapiConnector } from "../src/index.js";
import { MACHINE, since } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** The real interpreter behind python3 (the double's homes are real folders; the agent runs for real). */
const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();

let double: SfapiDouble;
let client: RemoteClient;
let tmpDir: string;

beforeAll(async () => {
  double = await startSfapiDouble();
  const home = double.homeDir();
  tmpDir = join(home, ".sremote-e2e", "tmp");
  client = new RemoteClient({
    connector: sfapiConnector({
      machine: MACHINE,
      apiUrl: double.baseUrl,
      tokenUrl: double.tokenUrl,
      keyFile: await double.writeKeyFile(double.client().clientId),
    }),
    mode: "file",
    python,
    autoInstallAgent: true,
    layout: { endpointDir: join(home, ".sremote-e2e", "endpoint"), tmpDir, workDir: home },
  });
});
afterAll(async () => {
  await client?.close();
  await double?.close();
});

describe("RemoteClient through SFAPI (file carrier, agent installed by the client)", () => {
  it("calls math.sqrt, with few HTTP requests per call and no files left behind", async () => {
    expect((await client.call("math", "sqrt", [16])).value).toBe(4);
    const perCall: number[] = [];
    for (let i = 0; i < 6; i++) {
      const from = double.requestLog.length;
      expect((await client.call("math", "sqrt", [i * i])).value).toBe(i);
      perCall.push(since(double, from).length);
    }
    const sorted = [...perCall].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)] as number;
    console.log(
      `sfapi file carrier: HTTP requests per call ${perCall.join(", ")} (median ${median}): ${JSON.stringify(since(double, double.requestLog.length - perCall.at(-1)!).map((e) => e.route))}`,
    );
    // upload + command POST + status question(s) + download; deletions ride on the next call's command.
    expect(median).toBeLessThanOrEqual(5);
    await client.close();
    expect(readdirSync(tmpDir).filter((f) => f.endsWith(".req") || f.endsWith(".resp"))).toEqual([]);
  });
});
