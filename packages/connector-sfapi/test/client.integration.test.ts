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
    const routes: string[][] = [];
    for (let i = 0; i < 6; i++) {
      const from = double.requestLog.length;
      expect((await client.call("math", "sqrt", [i * i])).value).toBe(i);
      const log = since(double, from);
      perCall.push(log.length);
      routes.push(log.map((e) => e.route));
    }
    console.log(`sfapi file carrier: HTTP requests per call ${perCall.join(", ")}: ${JSON.stringify(routes.at(-1))}`);
    // Per call: one upload, one command POST (deletions, chmods and marker removals ride
    // along in it), the answer inline on stdout (or one download) — and status questions,
    // whose number depends on how fast the machine runs the command (the benchmark reports
    // the total; here only the structure is asserted).
    for (const r of routes) {
      const count = (route: string) => r.filter((x) => x === route).length;
      expect(count("PUT /utilities/upload"), JSON.stringify(r)).toBe(1);
      expect(count("POST /utilities/command"), JSON.stringify(r)).toBe(1);
      // The agent answers on stdout when the response is small (no download then).
      expect(count("GET /utilities/download"), JSON.stringify(r)).toBeLessThanOrEqual(1);
      expect(count("GET /tasks"), JSON.stringify(r)).toBeGreaterThanOrEqual(1);
      expect(r.length - count("GET /tasks") - count("GET /utilities/download"), JSON.stringify(r)).toBe(2);
    }
    await client.close();
    expect(readdirSync(tmpDir).filter((f) => f.endsWith(".req") || f.endsWith(".resp"))).toEqual([]);
  });
});
