import type { Connector, ExecResult } from "@sremote/core";
import { InstallError, type InstallErrorCode, type InstallStep, logTail } from "./errors.js";
import { remoteScript } from "./remote-scripts.js";

/** Hints matched against a failed command's output, first match wins. */
interface Diagnosis {
  code: InstallErrorCode;
  why: string;
  fix: string;
}

/** Recognises disk-full, read-only and permission failures in a command's output. */
export function diagnoseIo(text: string, folder: string): Diagnosis | undefined {
  if (/No space left on device|Disk quota exceeded|ENOSPC|EDQUOT/.test(text)) {
    return {
      code: "REMOTE_IO",
      why: `the remote file system holding ${folder} is full (or the quota is exceeded)`,
      fix: `free some space (df -h ${folder}) or install elsewhere with --dir <folder>`,
    };
  }
  if (/Read-only file system|EROFS/.test(text)) {
    return {
      code: "PERMISSION_DENIED",
      why: `${folder} is on a read-only file system`,
      fix: "install into a writable folder with --dir <folder>",
    };
  }
  if (/Permission denied|EACCES|Operation not permitted|not writable/.test(text)) {
    return {
      code: "PERMISSION_DENIED",
      why: `this account may not write in ${folder}`,
      fix: `check the folder's owner and modes (ls -ld ${folder}) or install elsewhere with --dir <folder>`,
    };
  }
  return undefined;
}

/** Describes how a command ended (`exit status 1`, `signal SIGKILL`). */
export function describeExit(r: ExecResult): string {
  return r.exitCode === null ? `killed by ${r.signal ?? "a signal"}` : `exit status ${r.exitCode}`;
}

/** Options of {@link commandFailure}. */
export interface CommandFailureOptions {
  /** The code when no I/O problem is recognised (default `COMMAND_FAILED`). */
  code?: InstallErrorCode;
  /** The fix when no I/O problem is recognised. */
  fix?: string | undefined;
  /**
   * `what` already says that it failed ("pip could not install x"): no "failed" is added,
   * which would read "pip could not install x failed".
   */
  saysFailed?: boolean | undefined;
}

/**
 * An {@link InstallError} for a failed command, recognising I/O problems. `what` names the
 * action ("creating the venv /x/env"); the message adds "failed" and how the command ended.
 */
export function commandFailure(
  step: InstallStep,
  what: string,
  r: ExecResult,
  folder: string,
  fallback: CommandFailureOptions = {},
): InstallError {
  const text = `${r.stderr}\n${r.stdout}`;
  const io = diagnoseIo(text, folder);
  const log = logTail(r.stdout.trim() && r.stderr.trim() ? `${r.stdout}\n${r.stderr}` : text);
  const failed = fallback.saysFailed ? what : `${what} failed`;
  if (io) {
    return new InstallError(io.code, `${failed}: ${io.why}`, {
      step,
      fix: io.fix,
      log,
      details: { exitCode: r.exitCode, signal: r.signal },
    });
  }
  return new InstallError(fallback.code ?? "COMMAND_FAILED", `${failed} (${describeExit(r)})`, {
    step,
    fix: fallback.fix,
    log,
    details: { exitCode: r.exitCode, signal: r.signal },
  });
}

/**
 * Below this much free space a failed write is taken for a full file system: venv's
 * ensurepip and SFTP report a full disk only as "exit status 1" and "Failure".
 */
export const LOW_SPACE_BYTES = 64 * 1024 * 1024;

/**
 * Bytes available to this account on the file system holding `path` (or its nearest
 * existing parent), per `df`; `null` when df cannot tell. Never throws.
 */
export async function freeBytes(connector: Connector, path: string): Promise<number | null> {
  try {
    // Its own short time limit and no signal: it explains a failure the deadline may have caused.
    const r = await connector.exec(["sh", "-c", remoteScript("free-space.sh"), "sh", path], { timeoutMs: 30_000 });
    if (r.exitCode !== 0) return null;
    // df's last line (a shell startup file may have printed a banner before its header).
    const fields = r.stdout.trim().split("\n").pop()?.trim().split(/\s+/);
    const kib = Number(fields?.[3]);
    return Number.isFinite(kib) && kib >= 0 ? kib * 1024 : null;
  } catch {
    return null;
  }
}

/** `1.5 MiB`-style size. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
