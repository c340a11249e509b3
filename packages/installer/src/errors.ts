import { SremoteError, type SremoteErrorCode } from "@sremote/core";

/** Codes an {@link InstallError} may carry (all from core's closed set). */
export type InstallErrorCode = Extract<
  SremoteErrorCode,
  | "INVALID_ARGUMENT"
  | "NOT_SET_UP"
  | "COMMAND_FAILED"
  | "PERMISSION_DENIED"
  | "REMOTE_IO"
  | "FILE_NOT_FOUND"
  | "UNSUPPORTED"
>;

/** The installer's steps, in the order an install runs them. */
export type InstallStep =
  | "connect"
  | "layout"
  | "folders"
  | "python"
  | "sources"
  | "venv"
  | "agent"
  | "config"
  | "package"
  | "location"
  | "permissions"
  | "complete"
  | "uninstall"
  | "attach";

/** Options of {@link InstallError}. */
export interface InstallErrorOptions {
  /** The step that failed. */
  step: InstallStep;
  /** A command or action that fixes the problem, shown to the user. */
  fix?: string | undefined;
  /** The relevant tail of the failing command's output (pip's log, git's stderr…). */
  log?: string | undefined;
  /** Extra facts (never secrets): argv, exit status, paths. */
  details?: Record<string, unknown> | undefined;
  cause?: unknown;
}

/**
 * An install, attach, uninstall or doctor step failed. The message says what and why; `fix`
 * names the command that fixes it; `log` carries the tail of the remote tool's output.
 */
export class InstallError extends SremoteError {
  override name = "InstallError";
  /** The step that failed. */
  readonly step: InstallStep;
  /**
   * What failed and why, on one line: `message` without the `fix:` and output lines it
   * appends (for a UI that shows `fix` and `log` on their own).
   */
  readonly headline: string;
  /** How to fix it (a command line or a short instruction), when known. */
  readonly fix: string | undefined;
  /** The relevant tail of the remote command's output, when a command failed. */
  readonly log: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: InstallErrorCode, message: string, options: InstallErrorOptions) {
    const fix = options.fix ? `\nfix: ${options.fix}` : "";
    const log = options.log ? `\n--- last lines of the output ---\n${options.log.replace(/\n$/, "")}` : "";
    super(code, `${message}${fix}${log}`, { cause: options.cause });
    this.step = options.step;
    this.headline = message;
    this.fix = options.fix;
    this.log = options.log;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  override toJSON(): Record<string, unknown> {
    return {
      ...super.toJSON(),
      headline: this.headline,
      step: this.step,
      fix: this.fix ?? null,
      log: this.log ?? null,
      details: this.details,
    };
  }
}

/** The last `maxLines` lines of `text` (pip's ERROR lines kept even when earlier). */
export function logTail(text: string, maxLines = 25): string {
  const lines = text.replace(/\r/g, "").split("\n");
  while (lines.length > 0 && lines[lines.length - 1]?.trim() === "") lines.pop();
  const tail = lines.slice(-maxLines);
  const errors = lines.slice(0, -maxLines).filter((l) => /^(ERROR|error|fatal):/.test(l.trim()));
  return [...errors.slice(-5), ...tail].join("\n");
}
