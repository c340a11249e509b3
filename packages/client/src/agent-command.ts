import { interpreterPath, type RemoteLayout } from "@sremote/core";

/**
 * The command that starts the agent: argv plus extra environment variables.
 * Built in one place so that a launcher (a Slurm `srun` wrapper, a container runtime…)
 * can rewrite it without touching carriers or connectors.
 */
export interface AgentCommand {
  argv: string[];
  env: Record<string, string>;
}

/**
 * Rewrites the agent's command, e.g. `(c) => ({ ...c, argv: ["srun", "-u", "--", ...c.argv] })`.
 * Receives which carrier is starting it.
 */
export type AgentLauncher = (command: AgentCommand, carrier: "session" | "file") => AgentCommand;

/** Facts every agent command needs. */
export interface AgentCommandOptions {
  /** Python executable for interpreter.sh (`SREMOTE_PYTHON`); default: interpreter.sh's own choice. */
  python?: string | undefined;
  launcher?: AgentLauncher | undefined;
}

function baseEnv(options: AgentCommandOptions): Record<string, string> {
  return options.python ? { SREMOTE_PYTHON: options.python } : {};
}

/** `sh interpreter.sh --serve <endpoint> <tmp> <pwd> --workers N --max-frame B` (session carrier). */
export function sessionCommand(
  layout: RemoteLayout,
  options: AgentCommandOptions & { workers: number; maxFrameBytes: number },
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
  return options.launcher ? options.launcher(command, "session") : command;
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
  return options.launcher ? options.launcher(command, "file") : command;
}
