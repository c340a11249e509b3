import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { newtConnector } from "@sremote/connector-newt";
import type { Connector } from "@sremote/core";
import { seededRandom } from "@sremote/testkit";
import { DEFAULT_NEWT_USER, type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, describe, expect, it, vi } from "vitest";
// By path: @sremote/connector-sfapi depends on this package for its own tests, so a package
// dependency back would make a cycle.
import { sfapiConnector } from "../../connector-sfapi/src/index.js";
import { RemoteClient } from "../src/index.js";
import { type FaultRow, faultTable, processesLeft, recordFaults } from "./soak-support.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The soak's REST leg (issue 15): the real client (file carrier, real agent) over the NEWT
// and the SFAPI doubles, with a seeded 503 burst every ~10 calls on the command or a file
// route — answered without doing anything, or after doing the work (the ambiguous gateway).
// Every call runs a function with a countable side effect (a line appended to a log). Every
// call is answered; each side effect happens once for a value, at most once for a typed
// error (never for a `retryable` one); no temp file or marker is left. Figures and a fault
// summary are printed. A file-carrier call over a double costs ~340 ms on a 2-core machine
// (upload, agent start, download, rm), so CI runs 30 calls per gateway, one at a time (each
// burst is met by one known call); SREMOTE_SOAK_REST_CALLS raises it (300 for a longer run).
const CALLS = Number(process.env.SREMOTE_SOAK_REST_CALLS ?? 30);
const BURST_EVERY = 10;

const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();

type When = "before" | "after";
const FAULTS: Record<When, string> = { before: "503 burst, nothing done", after: "503 burst, after the work" };
/** What is kept on purpose of a command whose request met an ambiguous failure. */
const TOMBSTONE = /\/once\/sremote-[0-9a-f]{24}\/(?:rc|fenced)$/;

/** A gateway double, as the leg uses it. */
interface Gateway {
  name: string;
  home: string;
  /** The routes a burst may hit: the command route and the file routes. */
  routes: string[];
  connector(): Connector;
  inject(route: string, when: When, times: number): void;
  clearFaults(): void;
  /** Requests the double answered with an injected fault so far. */
  faulted(): number;
  close(): Promise<void>;
}

async function newtGateway(): Promise<Gateway> {
  const double: NewtDouble = await startNewtDouble();
  const creds = { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password };
  return {
    name: "newt",
    home: double.homeDir(DEFAULT_NEWT_USER.username),
    routes: ["POST /command", "/file"],
    connector: () =>
      newtConnector({
        machine: "cori",
        baseUrl: double.baseUrl,
        credentials: creds,
        retry: { baseDelayMs: 5, maxDelayMs: 40 },
      }),
    inject: (route, when, times) =>
      double.inject(route as Parameters<NewtDouble["inject"]>[0], { kind: "status", status: 503, when, times }),
    clearFaults: () => double.clearFaults(),
    faulted: () => double.requestLog.filter((e) => e.fault !== undefined).length,
    close: () => double.close(),
  };
}

async function sfapiGateway(): Promise<Gateway> {
  const double: SfapiDouble = await startSfapiDouble();
  const keyFile = await double.writeKeyFile(double.client().clientId);
  return {
    name: "sfapi",
    home: double.homeDir(),
    // (no download: a reply under the inline limit comes back in the command's output)
    routes: ["POST /utilities/command", "/utilities/upload"],
    connector: () =>
      sfapiConnector({
        machine: "perlmutter",
        apiUrl: double.baseUrl,
        tokenUrl: double.tokenUrl,
        keyFile,
        retry: { baseDelayMs: 5, maxDelayMs: 40 },
      }),
    inject: (route, when, times) =>
      double.inject(route as Parameters<SfapiDouble["inject"]>[0], { kind: "status", status: 503, when, times }),
    clearFaults: () => double.clearFaults(),
    faulted: () => double.requestLog.filter((e) => e.fault !== undefined).length,
    close: () => double.close(),
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name));
  }
  return out;
}

const rowsByLeg: FaultRow[] = [];
afterAll(() => {
  if (rowsByLeg.length > 0) console.log(faultTable(recordFaults("soak-rest.integration.test.ts", rowsByLeg)));
});

describe.each([
  ["NEWT", newtGateway, 41],
  ["SFAPI", sfapiGateway, 42],
] as const)(`soak over %s: ${CALLS} calls, a 503 burst every ~${BURST_EVERY}`, (_name, start, seed) => {
  it("answers every call, runs each side effect at most once (once for a value) and leaves no file", async () => {
    const g = await start();
    const tmpDir = join(g.home, ".sremote-e2e", "tmp");
    const layout = { endpointDir: join(g.home, ".sremote-e2e", "endpoint"), tmpDir, workDir: g.home };
    const log = join(g.home, "soak-side-effects.log");
    const random = seededRandom(seed);
    const rows = new Map<When, FaultRow>(
      (["before", "after"] as const).map((w) => [
        w,
        { fault: FAULTS[w], connector: g.name, injections: 0, outcomes: {} },
      ]),
    );
    const results: Array<{ tok: string; error?: { code?: string; retryable?: boolean; message: string } }> = [];
    let client: RemoteClient | undefined;
    try {
      const installer = new RemoteClient({ connector: g.connector(), mode: "file", python, layout });
      expect((await installer.call("math", "sqrt", [16])).value).toBe(4);
      await installer.close();
      client = new RemoteClient({ connector: g.connector(), mode: "file", python, autoInstallAgent: false, layout });
      let bursts = 0;
      /** 503s each burst's call met (1–3 armed on a route every call uses). */
      const met: number[] = [];
      let nextBurst = BURST_EVERY / 2 + Math.floor(random() * BURST_EVERY);
      for (let i = 0; i < CALLS; i++) {
        let burst: When | undefined;
        const faultedBefore = g.faulted();
        if (i >= nextBurst) {
          nextBurst = i + BURST_EVERY / 2 + Math.floor(random() * BURST_EVERY);
          burst = bursts++ % 2 === 0 ? "before" : "after"; // both kinds, however few bursts
          const route = g.routes[Math.floor(random() * g.routes.length)] as string;
          g.inject(route, burst, 1 + Math.floor(random() * 3));
        }
        const tok = `${g.name}-${i}`;
        try {
          const r = await client.call<number>("os", "system", [`printf '%s\\n' ${tok} >> '${log}'`], {
            timeoutMs: 30_000,
          });
          results.push(r.value === 0 ? { tok } : { tok, error: { message: `exit ${r.value}` } });
        } catch (err) {
          const e = err as { code?: string; retryable?: boolean; message: string };
          results.push({ tok, error: { code: e.code, retryable: e.retryable, message: e.message } });
        }
        if (burst) {
          g.clearFaults(); // what the call did not meet of its burst
          const row = rows.get(burst) as FaultRow;
          row.injections++;
          met.push(g.faulted() - faultedBefore);
          const error = results[results.length - 1]?.error;
          const outcome = error ? `${error.code ?? "untyped"}${error.retryable ? " (retryable)" : ""}` : "value";
          row.outcomes[outcome] = (row.outcomes[outcome] ?? 0) + 1;
        }
      }
      await client.close();
      client = undefined;
      const counts = new Map<string, number>();
      for (const line of (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean)) {
        counts.set(line, (counts.get(line) ?? 0) + 1);
      }
      const markers = await filesUnder(join(g.home, ".cache", "sremote"));
      const left = [...(await filesUnder(tmpDir)), ...markers.filter((f) => !TOMBSTONE.test(f))];
      // Every agent the gateway started ran from the test's own home: none may still run.
      const running = await processesLeft(g.home);
      const failed = results.filter((r) => r.error);
      const twice = [...counts.values()].filter((n) => n > 1).length;
      console.log(
        `soak ${g.name}: ${CALLS} calls, ${met.length} bursts (503s met per burst: ${met.join(" ")}): answered ${results.length}, values ${
          results.length - failed.length
        }, typed errors ${failed.length} ${JSON.stringify(failed.map((f) => `${f.tok}: ${f.error?.code} ${f.error?.message}`))}, side effects ${
          counts.size
        }, twice ${twice}, files left ${left.length}, processes left ${running.length}, tombstones kept ${markers.length - markers.filter((f) => !TOMBSTONE.test(f)).length}`,
      );
      for (const row of rows.values()) {
        rowsByLeg.push({ ...row, leftoverProcesses: running.length, leftoverFiles: left.length });
      }
      expect(results.length).toBe(CALLS);
      expect(twice).toBe(0);
      for (const r of results) {
        const ran = counts.get(r.tok) ?? 0;
        if (!r.error) expect(ran, r.tok).toBe(1);
        else {
          expect(r.error.code, `${r.tok}: ${r.error.message}`).toBeTypeOf("string");
          expect(ran, r.tok).toBeLessThanOrEqual(1);
          if (r.error.retryable) expect(ran, `${r.tok} is retryable but ran`).toBe(0);
        }
      }
      expect([...rows.values()].reduce((n, r) => n + r.injections, 0)).toBeGreaterThanOrEqual(
        Math.floor(CALLS / (BURST_EVERY * 1.5)),
      );
      for (const n of met) expect(n, "a burst met no request").toBeGreaterThan(0);
      expect(left).toEqual([]);
      expect(running).toEqual([]);
    } finally {
      await client?.close();
      await g.close();
    }
  });
});
