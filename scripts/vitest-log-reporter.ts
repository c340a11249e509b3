// A vitest reporter for logs (CI, `npm test`), beside the default one:
// - a failed test is printed in full the moment it fails, so its error reaches the log even
//   if the run is killed later (the default reporter prints failures only at the end);
// - every test file has a deadline (SREMOTE_TEST_FILE_DEADLINE_S, default 600 s): past it,
//   the files still running are named with their unfinished tests, the run is cancelled,
//   and if it still has not ended 30 s later the process exits 1 — a hung file can no
//   longer eat CI's whole budget and leave nothing in the log;
// - at the end, the skipped tests are listed with their reasons (a `ctx.skip(reason)` note,
//   or the "— skipped: …" a suite's name carries, see describeUnless in @sremote/testkit);
// - at the end, one fault summary of the whole run (fault × connector → injections, outcomes,
//   leftovers): the soak and fault files append their rows (recordFaults) to the file this
//   reporter names in SREMOTE_FAULT_LOG before the workers start (they inherit it).
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Reporter, TestCase, TestModule, Vitest } from "vitest/node";
import { FAULT_LOG_ENV, type FaultRow, faultTable } from "../packages/client/test/soak-support.js";

const DEADLINE_S = Number(process.env.SREMOTE_TEST_FILE_DEADLINE_S ?? 600);
const GRACE_MS = 30_000;

function errorText(error: { name?: string; message?: string; stack?: string }): string {
  const stack = (error.stack ?? "")
    .split("\n")
    .filter((l) => /^\s+at /.test(l) && !l.includes("node_modules"))
    .slice(0, 6)
    .join("\n");
  return `${error.name ?? "Error"}: ${error.message ?? ""}${stack ? `\n${stack}` : ""}`;
}

export default class LogReporter implements Reporter {
  #vitest: Vitest | undefined;
  #running = new Map<string, { module: TestModule; started: number }>();
  #watchdog: NodeJS.Timeout | undefined;
  #failed = 0;
  #expired = false;

  #path(moduleId: string): string {
    return relative(this.#vitest?.config.root ?? process.cwd(), moduleId);
  }

  #write(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  onInit(vitest: Vitest): void {
    this.#vitest = vitest;
    // Set before any worker starts; a value from outside (a parent run) is kept.
    process.env[FAULT_LOG_ENV] ??= join(tmpdir(), `sremote-faults-${process.pid}.jsonl`);
    this.#watchdog = setInterval(() => this.#checkDeadlines(), 5_000);
    this.#watchdog.unref();
  }

  onTestRunStart(): void {
    const path = process.env[FAULT_LOG_ENV];
    if (path) writeFileSync(path, "");
  }

  onTestModuleStart(module: TestModule): void {
    this.#running.set(module.moduleId, { module, started: Date.now() });
  }

  onTestModuleEnd(module: TestModule): void {
    this.#running.delete(module.moduleId);
    // Errors outside a test (a failed beforeAll, an import error) fail no test case.
    const path = this.#path(module.moduleId);
    for (const error of module.errors())
      this.#write(`\n[sremote] FAILED ${path} (outside any test)\n${errorText(error)}\n`);
    for (const suite of module.children.allSuites()) {
      for (const error of suite.errors())
        this.#write(`\n[sremote] FAILED ${path} > ${suite.fullName} (a hook)\n${errorText(error)}\n`);
    }
  }

  onTestCaseResult(test: TestCase): void {
    const result = test.result();
    if (result.state !== "failed") return;
    this.#failed++;
    const errors = (result.errors ?? []).map(errorText).join("\n");
    this.#write(`\n[sremote] FAILED ${this.#path(test.module.moduleId)} > ${test.fullName}\n${errors}\n`);
  }

  #checkDeadlines(): void {
    if (this.#expired) return;
    const now = Date.now();
    const late = [...this.#running.values()].filter((r) => now - r.started > DEADLINE_S * 1000);
    if (late.length === 0) return;
    this.#expired = true;
    for (const { module, started } of late) {
      const pending = [...module.children.allTests()]
        .filter((t) => t.result().state === "pending")
        .map((t) => `    - ${t.fullName}`);
      this.#write(
        `\n[sremote] DEADLINE: ${this.#path(module.moduleId)} has run ${Math.round((now - started) / 1000)} s ` +
          `(limit ${DEADLINE_S} s, SREMOTE_TEST_FILE_DEADLINE_S); unfinished:\n${pending.join("\n") || "    (its hooks)"}`,
      );
    }
    this.#write(`[sremote] cancelling the run; ${this.#failed} test(s) failed before it`);
    void this.#vitest?.cancelCurrentRun("test-failure");
    setTimeout(() => {
      this.#write("[sremote] the run did not end after cancelling: exiting with status 1");
      process.exit(1);
    }, GRACE_MS).unref();
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    if (this.#watchdog) clearInterval(this.#watchdog);
    // Tests cut off by the deadline are reported as skipped: the run must still fail.
    if (this.#expired) {
      this.#write("[sremote] the run was cancelled at a file's deadline: failing it");
      process.exitCode = 1;
    }
    this.#faultSummary();
    const reasons = new Map<string, number>();
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state !== "skipped") continue;
        const fromName = test.fullName.match(/— skipped: (.*?)(?: > |$)/)?.[1];
        const why = result.note ?? fromName ?? "skipped (no reason given)";
        const key = `${this.#path(module.moduleId)}: ${why}`;
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      }
    }
    if (reasons.size === 0) return;
    const lines = [...reasons].map(([key, n]) => `  ${n} × ${key}`);
    this.#write(`\n[sremote] skipped tests and why:\n${lines.join("\n")}`);
  }

  /** The rows every file recorded, summed per fault × connector, as one table. */
  #faultSummary(): void {
    const path = process.env[FAULT_LOG_ENV];
    if (!path) return;
    let text = "";
    try {
      text = readFileSync(path, "utf8");
      rmSync(path, { force: true });
    } catch {
      return; // no file recorded a fault
    }
    const rows = new Map<string, FaultRow>();
    const files = new Set<string>();
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      const r = JSON.parse(line) as FaultRow & { file: string };
      files.add(r.file);
      const key = `${r.fault}\0${r.connector}`;
      const sum = rows.get(key) ?? { fault: r.fault, connector: r.connector, injections: 0, outcomes: {} };
      sum.injections += r.injections;
      for (const [k, n] of Object.entries(r.outcomes)) sum.outcomes[k] = (sum.outcomes[k] ?? 0) + n;
      for (const f of ["leftoverProcesses", "leftoverFiles"] as const) {
        if (r[f] !== undefined) sum[f] = (sum[f] ?? 0) + r[f];
      }
      rows.set(key, sum);
    }
    if (rows.size === 0) return;
    const nonZero = [...rows.values()].flatMap((r) =>
      (["leftoverProcesses", "leftoverFiles"] as const)
        .filter((f) => (r[f] ?? 0) > 0)
        .map((f) => `${r.fault} on ${r.connector}: ${r[f]} ${f === "leftoverProcesses" ? "processes" : "files"}`),
    );
    this.#write(
      `\n[sremote] ${faultTable([...rows.values()])}\n  (from ${files.size} file(s): ${[...files].sort().join(", ")})\n` +
        `  leftovers: ${nonZero.length === 0 ? "all zero" : nonZero.join("; ")}`,
    );
  }
}
