import { UsageError } from "@sremote/core";
import type { AttachResult } from "@sremote/installer";
import type { Command } from "commander";
import type { CliIO } from "../io.js";
import { printable } from "../progress.js";
import { addEndpointCommand, type CommandHost, type CommonFlags, runEndpointCommand } from "./endpoint-command.js";

/** Options of `sremote attach`. */
export interface AttachCommandOptions extends CommonFlags {
  tmpDir?: string | undefined;
  workDir?: string | undefined;
}

/** Registers `sremote attach`; `setStatus` receives its exit status. */
export function registerAttachCommand(program: Command, { io, setStatus, signal }: CommandHost): void {
  addEndpointCommand(
    program,
    "attach",
    "point this account of <target> at a shared endpoint another account installed (sremote install --shared)",
    { args: [["<endpoint-dir>", "the shared endpoint's folder on the remote"]] },
  )
    .option("--tmp-dir <path>", "this account's private temp folder (default ~/.sremote/tmp)")
    .option("--work-dir <path>", "folder calls start in (default: the home folder)")
    .action(async (target: string, dir: string, opts: AttachCommandOptions) => {
      setStatus(await attachCommand(target, dir, opts, io, signal));
    });
}

/** `sremote attach <target> <endpoint-dir>`. Returns the exit status. */
export async function attachCommand(
  targetText: string,
  dir: string,
  opts: AttachCommandOptions,
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  return runEndpointCommand("attach", targetText, opts, io, signal, async (s) => {
    if (dir.trim() === "") throw new UsageError("attach needs the shared endpoint's folder, got an empty string");
    const { attach } = await import("@sremote/installer");
    const result = await attach(s.opened.connector, {
      dir,
      tmpDir: opts.tmpDir,
      workDir: opts.workDir,
      loginEnv: opts.loginEnv,
      signal: s.signal,
      onProgress: s.listener,
    });
    return { json: result as unknown as Record<string, unknown>, text: renderAttach(targetText, result) };
  });
}

function renderAttach(target: string, r: AttachResult): string {
  const p = r.python;
  const lines = [
    `${r.changed ? "attached" : "already attached:"} ${target} → ${r.layout.endpointDir}`,
    `  python    ${String(p.python ?? "?")} at ${String(p.executable ?? "?")} (${String(p.codec ?? "?")} codec)`,
    `  agent     ${r.agent.installedVersion ?? "none"}${r.agent.upToDate ? "" : ` (this client: ${r.agent.clientVersion})`}`,
    `  temp      ${r.layout.tmpDir}`,
    `  location  ${r.location.path} ${r.location.action}`,
  ];
  for (const w of r.warnings) lines.push(`  warning   ${w}`);
  return `${lines.map(printable).join("\n")}\n`;
}
