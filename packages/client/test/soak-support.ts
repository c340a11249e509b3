import { appendFileSync, readdirSync, readFileSync } from "node:fs";

/** One line of the fault summary: a fault kind on a connector and what it led to. */
export interface FaultRow {
  fault: string;
  connector: string;
  injections: number;
  /** How each injection ended (a value, a typed error code, "killed"…) → count. */
  outcomes: Record<string, number>;
  leftoverProcesses?: number;
  leftoverFiles?: number;
}

/** The fault summary table the soak and fault suites print. */
export function faultTable(rows: FaultRow[]): string {
  const lines = rows.map((r) => [
    r.fault,
    r.connector,
    String(r.injections),
    Object.entries(r.outcomes)
      .map(([k, v]) => `${k} ×${v}`)
      .join(", ") || "-",
    String(r.leftoverProcesses ?? "-"),
    String(r.leftoverFiles ?? "-"),
  ]);
  const head = ["fault", "connector", "injections", "outcomes", "leftover processes", "leftover files"];
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  return ["fault summary:", fmt(head), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt)].join("\n");
}

/**
 * The file the suite's fault summary is collected in: set by the root reporter
 * (scripts/vitest-log-reporter.ts) before the test workers start, so they inherit it.
 */
export const FAULT_LOG_ENV = "SREMOTE_FAULT_LOG";

/**
 * Records `rows` for the suite-wide fault summary (one JSON line per row, appended to the
 * file named by SREMOTE_FAULT_LOG; nothing when it is unset, e.g. under another reporter)
 * and returns them, so a file prints its own table too: `faultTable(recordFaults(file, rows))`.
 */
export function recordFaults(file: string, rows: FaultRow[]): FaultRow[] {
  const path = process.env[FAULT_LOG_ENV];
  if (path) appendFileSync(path, rows.map((r) => `${JSON.stringify({ file, ...r })}\n`).join(""));
  return rows;
}

/**
 * Processes on this machine (other than this one) whose command line mentions `text` — e.g. a
 * test's private home folder, which every agent started from its endpoint has in its argv,
 * whether or not it is still our descendant (an orphan is reparented).
 */
export function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(text)) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** {@link processesMentioning}, polled until none is left or `ms` passed (ending takes a moment). */
export async function processesLeft(text: string, ms = 5000): Promise<number[]> {
  let left = processesMentioning(text);
  for (const until = Date.now() + ms; left.length > 0 && Date.now() < until; left = processesMentioning(text)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return left;
}
