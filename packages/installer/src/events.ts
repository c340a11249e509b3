import type { InstallStep } from "./errors.js";

/** How a step ended. `skipped`: its inputs had not changed, nothing was done. */
export type StepOutcome = "done" | "skipped" | "failed";

/** Every progress event an install, attach, uninstall or doctor emits. */
export type InstallEvent =
  /** A step starts. `subject` names what it works on (a package, a folder). */
  | { type: "step-start"; step: InstallStep; subject?: string | undefined; message: string }
  /** A step ended; `changed` is false when nothing on the remote was modified. */
  | ({ type: "step-end" } & StepReport)
  /** One line printed by a remote tool (pip, git, venv) while a step runs. */
  | { type: "output"; step: InstallStep; subject?: string | undefined; stream: "stdout" | "stderr"; line: string }
  /** A file was uploaded. */
  | { type: "upload"; step: InstallStep; path: string; bytes: number }
  /** Something the user should know that is not an error. */
  | { type: "warning"; step: InstallStep; message: string };

/** Receives {@link InstallEvent}s as they happen. Exceptions it throws are ignored. */
export type InstallEventListener = (event: InstallEvent) => void;

/** One step as reported in a result. */
export interface StepReport {
  step: InstallStep;
  subject?: string | undefined;
  outcome: StepOutcome;
  /** True when the step modified something on the remote. */
  changed: boolean;
  message: string;
  durationMs: number;
}

/** Runs steps, emitting events and collecting {@link StepReport}s. */
export class StepRecorder {
  readonly steps: StepReport[] = [];
  readonly #listener: InstallEventListener | undefined;
  /**
   * Turns a step's error into a clearer one (a full disk behind "exit status 1") before it is
   * reported and thrown. Must not throw.
   */
  explainFailure: ((step: InstallStep, err: unknown) => Promise<unknown>) | undefined;

  constructor(listener: InstallEventListener | undefined) {
    this.#listener = listener;
  }

  emit(event: InstallEvent): void {
    try {
      this.#listener?.(event);
    } catch {
      // A faulty listener must not break an install half-way.
    }
  }

  /**
   * Runs `body` as a step. `body` returns whether it changed something and a message;
   * `"skip"` marks the step as skipped.
   */
  async run<T extends { changed: boolean; message: string; skipped?: boolean }>(
    step: InstallStep,
    message: string,
    body: () => Promise<T>,
    subject?: string,
  ): Promise<T> {
    const t0 = performance.now();
    this.emit({ type: "step-start", step, subject, message });
    try {
      const r = await body();
      const report: StepReport = {
        step,
        subject,
        outcome: r.skipped ? "skipped" : "done",
        changed: r.changed,
        message: r.message,
        durationMs: performance.now() - t0,
      };
      this.steps.push(report);
      this.emit({ type: "step-end", ...report });
      return r;
    } catch (caught) {
      const err = this.explainFailure ? await this.explainFailure(step, caught) : caught;
      const report: StepReport = {
        step,
        subject,
        outcome: "failed",
        changed: false,
        message: err instanceof Error ? (err.message.split("\n")[0] ?? err.message) : String(err),
        durationMs: performance.now() - t0,
      };
      this.steps.push(report);
      this.emit({ type: "step-end", ...report });
      throw err;
    }
  }
}
