import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { RemoteClient } from "@sremote/client";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { sfapiConnector } from "../src/index.js";
import { MACHINE } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Issue 15, for SFAPI: against a gateway that answers 30 % of command and file requests
// with 503 — doing nothing, or after doing the work — CLI-equivalent calls (a fresh client
// and connector per call, the file carrier, the real agent) succeed, and no call's side
// effect happens twice. Faults are drawn from fixed seeds.

const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();
const FILE_ROUTES = ["/utilities/upload", "/utilities/download"] as const;

let double: SfapiDouble;
let home: string;
let tmpDir: string;
let keyFile: string;
let log: string;

function client(): RemoteClient {
  return new RemoteClient({
    connector: sfapiConnector({
      machine: MACHINE,
      apiUrl: double.baseUrl,
      tokenUrl: double.tokenUrl,
      keyFile,
      retry: { baseDelayMs: 5, maxDelayMs: 40 },
    }),
    mode: "file",
    python,
    autoInstallAgent: false,
    layout: { endpointDir: join(home, ".sremote-e2e", "endpoint"), tmpDir, workDir: home },
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

beforeAll(async () => {
  double = await startSfapiDouble();
  home = double.homeDir();
  tmpDir = join(home, ".sremote-e2e", "tmp");
  log = join(home, "side-effects.log");
  keyFile = await double.writeKeyFile(double.client().clientId);
  const installer = new RemoteClient({
    connector: sfapiConnector({ machine: MACHINE, apiUrl: double.baseUrl, tokenUrl: double.tokenUrl, keyFile }),
    mode: "file",
    python,
    autoInstallAgent: true,
    layout: { endpointDir: join(home, ".sremote-e2e", "endpoint"), tmpDir, workDir: home },
  });
  expect((await installer.call("math", "sqrt", [16])).value).toBe(4);
  await installer.close();
});
afterAll(async () => {
  await double?.close();
});

describe.each([
  ["doing nothing", "before"],
  ["after doing the work (ambiguous)", "after"],
] as const)("SFAPI: 503 on 30 in 100 command and file requests, %s", (_name, when) => {
  it("≥ 9 of 10 CLI-equivalent calls succeed, and no side effect happens twice", async () => {
    const from = double.requestLog.length;
    double.inject("POST /utilities/command", {
      kind: "status",
      status: 503,
      when,
      rate: 0.3,
      seed: 31,
      times: Infinity,
    });
    for (const [i, route] of FILE_ROUTES.entries()) {
      double.inject(route, { kind: "status", status: 503, when, rate: 0.3, seed: 32 + i, times: Infinity });
    }
    const outcomes: { tok: string; error?: Error }[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const tok = `${when}-${i}-${Math.random().toString(36).slice(2, 8)}`;
        const c = client();
        try {
          const r = await c.call<number>("os", "system", [`printf '%s\\n' ${tok} >> '${log}'`], { timeoutMs: 30_000 });
          expect(r.value).toBe(0);
          outcomes.push({ tok });
        } catch (error) {
          outcomes.push({ tok, error: error as Error });
        } finally {
          await c.close();
        }
      }
    } finally {
      double.clearFaults();
    }
    const counts = new Map<string, number>();
    for (const line of (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean)) {
      counts.set(line, (counts.get(line) ?? 0) + 1);
    }
    const seen = double.requestLog.slice(from);
    const injected = seen.filter((e) => e.fault !== undefined);
    const ok = outcomes.filter((o) => !o.error);
    console.log(
      `sfapi, 503 ${when}: ${ok.length}/10 calls succeeded; ${injected.length} of ${seen.length} requests answered 503; errors: ${JSON.stringify(
        outcomes.filter((o) => o.error).map((o) => o.error?.message),
      )}`,
    );
    expect(injected.filter((e) => e.route === "POST /utilities/command").length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(9);
    for (const o of outcomes) {
      expect(counts.get(o.tok) ?? 0, o.tok).toBeLessThanOrEqual(1);
      if (!o.error) expect(counts.get(o.tok), o.tok).toBe(1);
      if (o.error && (o.error as { retryable?: boolean }).retryable) expect(counts.get(o.tok) ?? 0).toBe(0);
    }
    // Request and response files, and command markers: all removed — but the tombstones of
    // commands whose request met an ambiguous failure (their status or fence only, kept an
    // hour against a late delivery).
    const markers = await filesUnder(join(home, ".cache", "sremote"));
    const tombstone = /\/once\/sremote-[0-9a-f]{24}\/(?:rc|fenced)$/;
    expect([...(await filesUnder(tmpDir)), ...markers.filter((f) => !tombstone.test(f))]).toEqual([]);
  });
});
