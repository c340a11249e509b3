import type { InstallEvent } from "@sremote/installer";
import { describe, expect, it } from "vitest";
import { formatDuration, printable, progressModeFor, progressView } from "../src/progress.js";

const ESC = "\u001b";

function recorder(isTTY: boolean) {
  let text = "";
  return { stream: { write: (s: string) => (text += s), isTTY, columns: 60 }, text: () => text };
}

const events: InstallEvent[] = [
  { type: "step-start", step: "layout", message: "finding the endpoint" },
  {
    type: "step-end",
    step: "layout",
    outcome: "done",
    changed: false,
    message: "endpoint /h/.sremote",
    durationMs: 12,
  },
  { type: "step-start", step: "agent", message: "checking the agent files" },
  { type: "upload", step: "agent", path: "/h/.sremote/interpreter.sh", bytes: 1234 },
  { type: "step-end", step: "agent", outcome: "done", changed: true, message: "1 file(s) uploaded", durationMs: 30 },
  { type: "step-start", step: "package", subject: "x", message: "installing x" },
  { type: "output", step: "package", subject: "x", stream: "stdout", line: `${ESC}[31mERROR:${ESC}[0m no x\u0007` },
  {
    type: "step-end",
    step: "package",
    subject: "x",
    outcome: "failed",
    changed: false,
    message: "pip failed",
    durationMs: 2500,
  },
];

describe("progress", () => {
  it("prints one plain line per event when not on a terminal, without control characters", () => {
    const out = recorder(false);
    const view = progressView(out.stream, progressModeFor(out.stream));
    for (const e of events) view.listener(e);
    view.close();
    expect(out.text()).toBe(
      [
        "[layout] finding the endpoint …",
        "[layout] done: endpoint /h/.sremote (12 ms)",
        "[agent] checking the agent files …",
        "[agent] uploaded interpreter.sh (1234 B)",
        "[agent] done: 1 file(s) uploaded (30 ms)",
        "[package] installing x …",
        "[package]   ERROR: no x",
        "[package] failed: pip failed (2.5 s)",
        "",
      ].join("\n"),
    );
  });

  it("draws a live display on a terminal: finished steps stay, the running one is redrawn", () => {
    const out = recorder(true);
    const view = progressView(out.stream, progressModeFor(out.stream, {}), {});
    for (const e of events.slice(0, 7)) view.listener(e);
    // While the package step runs, its output shows dimmed under it, cut to the width.
    expect(out.text()).toContain(`${ESC}[2m    ERROR: no x${ESC}[0m`);
    view.listener(events[7] as InstallEvent);
    view.close();
    const text = out.text();
    expect(text).toContain(`${ESC}[32m✔${ESC}[0m layout      endpoint /h/.sremote  12 ms\n`);
    expect(text).toContain(`${ESC}[31m✖${ESC}[0m package     failed: pip failed  2.5 s\n`);
    // The remote's own escape sequences and bell never reach the terminal.
    expect(text).not.toContain(`${ESC}[31mERROR`);
    expect(text).not.toContain("\u0007");
    for (const line of text.split("\n")) expect(printable(line).length).toBeLessThanOrEqual(60);
  });

  it("NO_COLOR keeps the live layout without colours; TERM=dumb gets plain lines", () => {
    const out = recorder(true);
    const view = progressView(out.stream, "live", { NO_COLOR: "1" });
    for (const e of events.slice(0, 2)) view.listener(e);
    view.close();
    expect(out.text()).toContain("✔ layout      endpoint /h/.sremote  12 ms\n");
    expect(out.text()).not.toContain(`${ESC}[32m`);
    expect(progressModeFor(out.stream, { TERM: "dumb" })).toBe("plain");
  });

  it("formats durations and strips control sequences", () => {
    expect([formatDuration(4), formatDuration(2500), formatDuration(42_000), formatDuration(125_000)]).toEqual([
      "4 ms",
      "2.5 s",
      "42 s",
      "2 min 05 s",
    ]);
    expect(printable(`a${ESC}[2Jb${ESC}]0;title\u0007c\td\r`)).toBe("abc  d");
  });
});
