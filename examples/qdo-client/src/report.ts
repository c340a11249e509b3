import type { FlowRecord } from "./flows.js";

const MARK = { ok: "ok  ", unexpected: "FAIL", skipped: "skip" } as const;

/** One flow as a plain line: `ok   <flow>: <call> → <detail>`. */
export function formatRecord(record: FlowRecord): string {
  return `${MARK[record.status]} ${record.flow}: ${record.call} → ${record.detail}`;
}

/** The time each call took, as a small table (the original printed them one by one). */
export function formatTimings(records: readonly FlowRecord[]): string {
  const header = ["#", "flow", "result", "ms", "call"];
  const rows = records.map((r, i) => [
    String(i + 1),
    r.flow,
    r.status === "unexpected" ? "FAIL" : r.status,
    r.ms === null ? "-" : r.ms.toFixed(1),
    r.call,
  ]);
  const width = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] as string).length)));
  const right = new Set([0, 3]);
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (right.has(c) ? cell.padStart(width[c] as number) : cell.padEnd(width[c] as number)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** Counts by status. */
export function summarize(records: readonly FlowRecord[]): { ok: number; unexpected: number; skipped: number } {
  const count = (status: FlowRecord["status"]) => records.filter((r) => r.status === status).length;
  return { ok: count("ok"), unexpected: count("unexpected"), skipped: count("skipped") };
}
