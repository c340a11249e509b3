import { isSremoteError } from "@sremote/core";
import type { InstallStep } from "@sremote/installer";
import type { CliIO } from "../io.js";
import { printable } from "../progress.js";

/** The fields an `InstallError` adds to a coded error (read by shape: copies of the package may differ). */
interface StepErrorFields {
  step?: string;
  /** The message without the appended fix and log (installers that have it). */
  headline?: string;
  fix?: string | undefined;
  log?: string | undefined;
}

/** The message without the `fix:` and log lines `InstallError` appends to it. */
function headline(err: Error & StepErrorFields): string {
  if (typeof err.headline === "string") return err.headline;
  // An installer from before `headline`: strip what it appended.
  let text = err.message;
  if (err.log) {
    const i = text.indexOf("\n--- last lines of the output ---\n");
    if (i >= 0) text = text.slice(0, i);
  }
  if (err.fix) {
    const suffix = `\nfix: ${err.fix}`;
    if (text.endsWith(suffix)) text = text.slice(0, -suffix.length);
  }
  return text;
}

/** The remote tool's own explanation: the last `ERROR:`/`fatal:` line of its output. */
export function reasonFromLog(log: string | undefined): string | null {
  if (!log) return null;
  const lines = log.split("\n").filter((l) => /^\s*(ERROR|error|fatal):/.test(l));
  return lines.length > 0 ? (lines[lines.length - 1] as string).trim() : null;
}

/**
 * Prints an install, uninstall or attach error: `--json` as
 * `{ok:false,error:{code,step,message,reason,fix,log}}` on stdout, else as text on stderr.
 */
export function reportInstallError(
  command: string,
  err: unknown,
  failedStep: InstallStep | undefined,
  io: CliIO,
  json: boolean,
): void {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & StepErrorFields;
  const code = isSremoteError(err) ? err.code : "INTERNAL";
  const step = typeof e.step === "string" ? e.step : (failedStep ?? null);
  const message = headline(e);
  const reason = reasonFromLog(e.log);
  if (json) {
    io.stdout.write(
      `${JSON.stringify({
        ok: false,
        error: { code, step, message, reason, fix: e.fix ?? null, log: e.log ?? null },
      })}\n`,
    );
    return;
  }
  const lines = [
    `sremote ${command}: ${step ? `failed at the ${step} step: ` : ""}${message}${isSremoteError(err) ? ` [${code}]` : ""}`,
  ];
  if (reason && !message.includes(reason)) lines.push(`  reason: ${reason}`);
  if (e.fix) lines.push(`  fix: ${e.fix}`);
  if (e.log) {
    lines.push("  output (last lines):");
    for (const line of e.log.split("\n")) lines.push(`    ${line}`);
  }
  io.stderr.write(`${lines.map(printable).join("\n")}\n`);
}
