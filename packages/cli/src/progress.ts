import type { InstallEvent, InstallEventListener, InstallStep, StepOutcome } from "@sremote/installer";

/** Where progress goes: a terminal gets a live display, anything else one plain line per event. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Shows install, attach and uninstall progress. */
export interface ProgressView {
  /** Receives the installer's events (and the CLI's own `connect` step). */
  readonly listener: InstallEventListener;
  /** Stops the spinner and leaves the terminal clean (idempotent). */
  close(): void;
}

/** How progress is shown. `live`: spinner and in-place lines (terminals only). */
export type ProgressMode = "live" | "plain" | "none";

/** The mode for a stream: `live` on a terminal (unless `TERM=dumb`), else `plain`. */
export function progressModeFor(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): ProgressMode {
  return stream.isTTY === true && env.TERM !== "dumb" ? "live" : "plain";
}

/** A view of the given mode writing to `stream`. */
export function progressView(
  stream: ProgressStream,
  mode: ProgressMode,
  env: NodeJS.ProcessEnv = process.env,
): ProgressView {
  if (mode === "none") return { listener: () => {}, close: () => {} };
  if (mode === "plain") return plainProgress(stream);
  return liveProgress(stream, { color: env.NO_COLOR === undefined || env.NO_COLOR === "" });
}

/**
 * Remote output may carry terminal control sequences (pip's colours, a hostile package's
 * cursor moves): none reaches the user's terminal.
 */
export function printable(text: string): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 0x1b) {
      i = skipEscape(text, i);
      continue;
    }
    if (code === 0x09) out += "  ";
    else if (code >= 0x20 && code !== 0x7f && code !== 0x9b) out += text[i];
    i++;
  }
  return out;
}

/** The index after the escape sequence starting at `i` (CSI and OSC whole, else ESC and one character). */
function skipEscape(text: string, i: number): number {
  const next = text[i + 1];
  if (next === "[") {
    let j = i + 2;
    while (j < text.length) {
      const c = text.charCodeAt(j);
      j++;
      if (c >= 0x40 && c <= 0x7e) break;
    }
    return j;
  }
  if (next === "]") {
    let j = i + 2;
    while (j < text.length) {
      if (text.charCodeAt(j) === 0x07) return j + 1;
      if (text.charCodeAt(j) === 0x1b && text[j + 1] === "\\") return j + 2;
      j++;
    }
    return j;
  }
  return Math.min(text.length, i + 2);
}

/** `12 ms`, `3.4 s`, `2 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

/** `1234 B`, `12.3 KiB`, `4.5 MiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Upload paths are shown relative to the endpoint once the layout step has named it
 * (`endpoint /home/u/.sremote` → `interpreter.sh`).
 */
class EndpointPaths {
  #endpoint: string | undefined;
  learn(event: InstallEvent): void {
    if (event.type === "step-end" && event.step === "layout") {
      const m = /^endpoint (\/\S*)/.exec(event.message);
      if (m) this.#endpoint = m[1];
    }
  }
  show(path: string): string {
    const e = this.#endpoint;
    return e && path.startsWith(`${e}/`) ? path.slice(e.length + 1) : path;
  }
}

/** One line per event: `[agent] uploaded interpreter.sh (1234 B)`. */
function plainProgress(stream: ProgressStream): ProgressView {
  const paths = new EndpointPaths();
  const write = (step: InstallStep, text: string) => stream.write(`[${step}] ${printable(text)}\n`);
  return {
    listener(event) {
      paths.learn(event);
      switch (event.type) {
        case "step-start":
          write(event.step, `${event.message} …`);
          break;
        case "step-end":
          write(event.step, `${event.outcome}: ${event.message} (${formatDuration(event.durationMs)})`);
          break;
        case "output":
          write(event.step, `  ${event.line}`);
          break;
        case "upload":
          write(event.step, `uploaded ${paths.show(event.path)} (${event.bytes} B)`);
          break;
        case "warning":
          write(event.step, `warning: ${event.message}`);
          break;
      }
    },
    close() {},
  };
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const MARK: Record<StepOutcome, string> = { done: "✔", skipped: "–", failed: "✖" };
/** Output lines kept under the running step. */
const TAIL_LINES = 4;
const LABEL_WIDTH = 12;

interface ActiveStep {
  step: InstallStep;
  subject: string | undefined;
  message: string;
  startedAt: number;
  tail: string[];
  uploads: { count: number; bytes: number; last: string } | undefined;
}

/**
 * The terminal display: finished steps stay as one line each (mark, step, outcome message,
 * duration); the running step is redrawn in place with a spinner, the last few lines of
 * pip's or git's output dimmed under it, and an upload counter.
 */
function liveProgress(stream: ProgressStream, options: { color: boolean }): ProgressView {
  const sgr = (code: string) => (text: string) => (options.color ? `\x1b[${code}m${text}\x1b[0m` : text);
  const dim = sgr("2");
  const colours: Record<StepOutcome, (t: string) => string> = { done: sgr("32"), skipped: dim, failed: sgr("31") };
  const yellow = sgr("33");
  const paths = new EndpointPaths();
  const active = new Map<string, ActiveStep>();
  let drawn = 0;
  let frame = 0;
  let closed = false;
  const width = () => Math.max(20, (stream.columns || 80) - 1);
  // Lines are cut to the terminal's width: a wrapped line would break the cursor arithmetic.
  const clip = (text: string) => {
    const w = width();
    const chars = [...text];
    return chars.length <= w ? text : `${chars.slice(0, w - 1).join("")}…`;
  };
  const label = (step: InstallStep) => step.padEnd(LABEL_WIDTH);

  const region = (): string[] => {
    const lines: string[] = [];
    for (const a of active.values()) {
      const elapsed = formatDuration(performance.now() - a.startedAt);
      lines.push(`${SPINNER[frame % SPINNER.length]} ${clip(`${label(a.step)}${a.message}  ${elapsed}`)}`);
      if (a.uploads) {
        lines.push(
          dim(clip(`    uploaded ${a.uploads.count} file(s), ${formatSize(a.uploads.bytes)} — ${a.uploads.last}`)),
        );
      }
      for (const line of a.tail) lines.push(dim(clip(`    ${line}`)));
    }
    return lines;
  };
  const erase = () => {
    if (drawn > 0) stream.write(`\x1b[${drawn}A\r\x1b[J`);
    drawn = 0;
  };
  const draw = () => {
    const lines = region();
    if (lines.length > 0) stream.write(`${lines.join("\n")}\n`);
    drawn = lines.length;
  };
  /** Replaces the live region, printing `permanent` lines above it first. */
  const redraw = (permanent: string[] = []) => {
    if (closed) return;
    erase();
    for (const line of permanent) stream.write(`${line}\n`);
    draw();
  };
  const timer = setInterval(() => {
    frame++;
    if (active.size > 0) redraw();
  }, 80);
  timer.unref?.();

  const key = (step: InstallStep, subject: string | undefined) => `${step}\0${subject ?? ""}`;
  return {
    listener(event) {
      paths.learn(event);
      switch (event.type) {
        case "step-start":
          active.set(key(event.step, event.subject), {
            step: event.step,
            subject: event.subject,
            message: printable(event.message),
            startedAt: performance.now(),
            tail: [],
            uploads: undefined,
          });
          redraw();
          break;
        case "step-end": {
          active.delete(key(event.step, event.subject));
          const text = clip(
            `${label(event.step)}${event.outcome === "done" ? "" : `${event.outcome}: `}${printable(event.message)}  ${formatDuration(event.durationMs)}`,
          );
          redraw([`${colours[event.outcome](MARK[event.outcome])} ${event.outcome === "skipped" ? dim(text) : text}`]);
          break;
        }
        case "output": {
          const a = active.get(key(event.step, event.subject)) ?? [...active.values()].pop();
          if (!a) break;
          a.tail.push(printable(event.line));
          if (a.tail.length > TAIL_LINES) a.tail.shift();
          redraw();
          break;
        }
        case "upload": {
          const a = [...active.values()].find((x) => x.step === event.step);
          if (!a) break;
          const u = a.uploads ?? { count: 0, bytes: 0, last: "" };
          a.uploads = u;
          u.count++;
          u.bytes += event.bytes;
          u.last = printable(paths.show(event.path));
          redraw();
          break;
        }
        case "warning":
          redraw([`${yellow("!")} ${clip(`${label(event.step)}${printable(event.message)}`)}`]);
          break;
      }
    },
    close() {
      if (closed) return;
      clearInterval(timer);
      erase();
      closed = true;
    },
  };
}
