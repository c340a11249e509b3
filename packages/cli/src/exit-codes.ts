import { isSremoteError } from "@sremote/core";

/** Exit statuses of the `sremote` command. */
export const EXIT = {
  /** The call succeeded. */
  ok: 0,
  /**
   * The remote function failed (raised, not importable, not found, unserializable result),
   * or a remote command an install runs failed (pip, git, venv); for `sremote map`, any
   * input failed (each failure is on its own output line).
   */
  remoteFailed: 1,
  /** Bad usage: unknown option, bad target, bad argument. */
  usage: 2,
  /** Connection, setup, scheduler (`--slurm` refused: `SCHEDULER`), requirement or protocol problem. */
  setup: 3,
  /** The call timed out. */
  timeout: 124,
  /** Interrupted (Ctrl-C). */
  interrupted: 130,
} as const;

/** The exit status for an error thrown by a command. */
export function exitCodeFor(err: unknown): number {
  if (!isSremoteError(err)) return EXIT.setup;
  switch (err.code) {
    case "REMOTE_EXEC":
      return EXIT.remoteFailed;
    case "INVALID_ARGUMENT":
    case "INVALID_TARGET":
      return EXIT.usage;
    case "TIMEOUT":
      return EXIT.timeout;
    case "ABORTED":
      return EXIT.interrupted;
    default:
      return EXIT.setup;
  }
}

/**
 * The exit status for an error of `install`, `uninstall` or `attach`: a remote command that
 * failed (pip could not install a package, git could not clone) is the command's failure,
 * status 1, like a remote function that raised; everything else as {@link exitCodeFor}.
 */
export function installExitCodeFor(err: unknown): number {
  if (isSremoteError(err) && err.code === "COMMAND_FAILED") return EXIT.remoteFailed;
  return exitCodeFor(err);
}
