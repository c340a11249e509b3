import { type AgentCommand, interpreterPath, type Launcher, type RemoteLayout } from "@sremote/core";

// The launcher contract lives in core (shared with launcher packages such as
// @sremote/launcher-slurm); index.ts re-exports it so `@sremote/client` stays the only import
// most programs need.

/** Facts every agent command needs. */
export interface AgentCommandOptions {
  /** Python executable for interpreter.sh (`SREMOTE_PYTHON`); default: interpreter.sh's own choice. */
  python?: string | undefined;
  /** Rewrites the command (normalized with core's `toLauncher`). */
  launcher?: Launcher | undefined;
  /**
   * The slot of the next file-carrier call (round-robin over the client's slots), so a
   * launcher can spread one-shot agents over nodes as it does session slots. Default: slot 0.
   */
  nextFileSlot?: (() => number) | undefined;
}

function baseEnv(options: AgentCommandOptions): Record<string, string> {
  return options.python ? { SREMOTE_PYTHON: options.python } : {};
}

/** `sh interpreter.sh --serve <endpoint> <tmp> <pwd> --workers N --max-frame B` (session carrier). */
export function sessionCommand(
  layout: RemoteLayout,
  options: AgentCommandOptions & { workers: number; maxFrameBytes: number; slot?: number | undefined },
): AgentCommand {
  const command: AgentCommand = {
    argv: [
      "sh",
      interpreterPath(layout),
      "--serve",
      layout.endpointDir,
      layout.tmpDir,
      layout.workDir,
      "--workers",
      String(options.workers),
      "--max-frame",
      String(options.maxFrameBytes),
    ],
    env: baseEnv(options),
  };
  return options.launcher ? options.launcher.wrap(command, { carrier: "session", slot: options.slot ?? 0 }) : command;
}

/** `sh interpreter.sh <req> <resp> <endpoint> <tmp> <pwd>` (file carrier, the seed's argument order). */
export function fileCommand(
  layout: RemoteLayout,
  requestPath: string,
  responsePath: string,
  options: AgentCommandOptions,
): AgentCommand {
  const command: AgentCommand = {
    argv: ["sh", interpreterPath(layout), requestPath, responsePath, layout.endpointDir, layout.tmpDir, layout.workDir],
    env: baseEnv(options),
  };
  if (!options.launcher) return command;
  return options.launcher.wrap(command, { carrier: "file", slot: options.nextFileSlot?.() ?? 0 });
}

/**
 * The interpreter the client's first agent ran as (`hello.executable`), used for its later
 * agent starts when the client was given no `python`: interpreter.sh then looks `python3`
 * up on PATH every time, and where that is a shim (pyenv: ~0.4 s of bash per start) every
 * session start and every file-carrier call paid for it again. Not learned through a
 * launcher (a compute node's Python may live elsewhere).
 */
export class LearnedPython {
  #path: string | undefined;

  /** The learned interpreter, once an agent said where it runs. */
  get path(): string | undefined {
    return this.#path;
  }

  /**
   * Whether this applies to a client with these options: only when it was given no
   * `python` and runs no launcher.
   */
  static applies(given: string | undefined, launcher: Launcher | undefined): boolean {
    return given === undefined && launcher === undefined;
  }

  /** The interpreter for the next agent start: the given one, else the learned one where it applies. */
  pythonFor(given: string | undefined, launcher: Launcher | undefined): string | undefined {
    return LearnedPython.applies(given, launcher) ? this.#path : given;
  }

  /** Keeps `executable` from an agent's hello (first one wins; only an absolute path). */
  learn(executable: string | undefined): void {
    if (this.#path === undefined && typeof executable === "string" && executable.startsWith("/")) {
      this.#path = executable;
    }
  }
}
