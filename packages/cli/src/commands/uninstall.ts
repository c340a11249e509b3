import { UsageError } from "@sremote/core";
import type { UninstallResult } from "@sremote/installer";
import type { Command } from "commander";
import { EXIT } from "../exit-codes.js";
import type { CliIO } from "../io.js";
import { printable } from "../progress.js";
import {
  addEndpointCommand,
  type CommandHost,
  type CommonFlags,
  runEndpointCommand,
  targetLayout,
} from "./endpoint-command.js";
import { reportInstallError } from "./install-error-report.js";

/** Options of `sremote uninstall`. */
export interface UninstallCommandOptions extends CommonFlags {
  dir?: string | undefined;
  keepPackages?: boolean | undefined;
  yes?: boolean | undefined;
}

/** Registers `sremote uninstall`; `setStatus` receives its exit status. */
export function registerUninstallCommand(program: Command, { io, setStatus, signal }: CommandHost): void {
  addEndpointCommand(
    program,
    "uninstall",
    "remove the endpoint of <target> (asks first; someone else's shared endpoint: only detach from it)",
  )
    .option("--dir <path>", "endpoint folder (default: the one ~/.sremote/.location names, else ~/.sremote)")
    .option("--keep-packages", "keep the venv and its packages for a later install; remove the agent and the rest")
    .option("-y, --yes", "do not ask for confirmation (needed when there is no terminal to ask on, and with --json)")
    .action(async (target: string, opts: UninstallCommandOptions) => {
      setStatus(await uninstallCommand(target, opts, io, signal));
    });
}

/** `sremote uninstall <target>`. Returns the exit status. */
export async function uninstallCommand(
  targetText: string,
  opts: UninstallCommandOptions,
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  const interactive = io.stdin?.isTTY === true && io.stderr.isTTY === true && !opts.json;
  if (!opts.yes && !interactive) {
    const err = new UsageError(
      `uninstall removes the endpoint and everything installed in it: add --yes to confirm${opts.json ? "" : " (there is no terminal to ask on)"}`,
    );
    reportInstallError("uninstall", err, undefined, io, opts.json);
    return EXIT.usage;
  }
  return runEndpointCommand("uninstall", targetText, opts, io, signal, async (s) => {
    const layout = targetLayout(s.opened, { dir: opts.dir });
    const connector = s.opened.connector;
    const { discover, uninstall } = await import("@sremote/installer");
    if (!opts.yes) {
      const found = await discover(connector, { layout, signal: s.signal });
      const endpoint = opts.dir ?? found.layout.endpointDir;
      const what = opts.keepPackages
        ? "the agent, keeping the venv"
        : found.state?.venv === null
          ? "the agent and its files"
          : "the agent, the venv and its packages";
      const count = found.state?.packages.length ?? 0;
      const question = `Remove the SRemote endpoint ${endpoint} on ${targetText} (${what}${count > 0 && !opts.keepPackages ? `, ${count} installed package source(s)` : ""})? [y/N] `;
      if (!(await confirm(s.io, question))) {
        throw new UsageError("not confirmed: nothing was removed");
      }
    }
    const result = await uninstall(connector, {
      signal: s.signal,
      dir: opts.dir,
      layout,
      keepPackages: opts.keepPackages,
      onProgress: s.listener,
    });
    return { json: result as unknown as Record<string, unknown>, text: renderUninstall(targetText, result) };
  });
}

/** Asks a yes/no question on the terminal; anything but y/yes is no. */
async function confirm(io: CliIO, question: string): Promise<boolean> {
  const stdin = io.stdin;
  if (!stdin) return false;
  io.stderr.write(question);
  const { createInterface } = await import("node:readline");
  const rl = createInterface({ input: stdin, terminal: false });
  try {
    const answer = await new Promise<string>((done) => {
      rl.once("line", done);
      rl.once("close", () => done(""));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

function renderUninstall(target: string, r: UninstallResult): string {
  const lines = [
    r.detached
      ? `detached ${target} from ${r.layout.endpointDir} (it belongs to another account and was left alone)`
      : r.removed.length > 0
        ? `uninstalled ${target}: ${r.layout.endpointDir}`
        : `nothing to uninstall: no endpoint at ${r.layout.endpointDir}`,
  ];
  for (const p of r.removed) lines.push(`  removed   ${p}`);
  for (const p of r.kept) lines.push(`  kept      ${p}`);
  return `${lines.map(printable).join("\n")}\n`;
}
