import { resolve } from "node:path";
import { UsageError } from "@sremote/core";
import type { InstallOptions, InstallResult, PackageInput } from "@sremote/installer";
import { type Command, Option } from "commander";
import type { CliIO } from "../io.js";
import { formatDuration, formatSize, printable } from "../progress.js";
import { collect } from "../target-options.js";
import { attachCommand, registerAttachCommand } from "./attach.js";
import {
  addEndpointCommand,
  type CommandHost,
  type CommonFlags,
  runEndpointCommand,
  targetLayout,
} from "./endpoint-command.js";
import { registerUninstallCommand } from "./uninstall.js";

/** Options of `sremote install`, as parsed from the command line. */
export interface InstallCommandOptions extends CommonFlags {
  preamble?: string[] | undefined;
  systemSitePackages?: boolean | undefined;
  venv: boolean;
  shared?: boolean | undefined;
  dir?: string | undefined;
  tmpDir?: string | undefined;
  workDir?: string | undefined;
  force?: boolean | undefined;
  upgrade?: boolean | undefined;
  /** `true` (`--index`), a URL (`--index URL`), `false` (`--no-index`), unset: pip's default. */
  index?: boolean | string | undefined;
  indexUrl?: string | undefined;
  findLinks?: string[] | undefined;
  /** `--attach DIR`: an alias of `sremote attach <target> DIR`. */
  attach?: string | undefined;
}

/** One `--package`, `--git` or `--local` flag, in command-line order (pip installs in that order). */
export interface PackageFlag {
  flag: "package" | "git" | "local";
  value: string;
}

/**
 * Registers `sremote install`, `sremote uninstall` and `sremote attach`. `setStatus` receives
 * the exit status of the command that ran.
 */
export function registerInstallCommands(
  program: Command,
  io: CliIO,
  setStatus: (status: number) => void,
  signal?: AbortSignal,
): void {
  // The three kinds of package flags share one list so that their order is kept.
  const packageFlags: PackageFlag[] = [];
  const packageOption = (flag: PackageFlag["flag"]) => (value: string, previous: string[] | undefined) => {
    packageFlags.push({ flag, value });
    return [...(previous ?? []), value];
  };
  addEndpointCommand(
    program,
    "install",
    "make <target> an SRemote endpoint: folders, agent, Python venv, packages (safe to run again: unchanged steps are skipped)",
    {
      python:
        "the Python to make the venv from: a name on the remote PATH or a path (default: the last install's, else python3, else python)",
      configure: (cmd) =>
        cmd
          .option(
            "--package <spec>",
            "pip requirement to install, e.g. 'numpy>=1.24' (repeatable)",
            packageOption("package"),
          )
          .option(
            "--git <url[@ref][#subdir]>",
            "git repository cloned on the remote, at a branch, tag or commit, from a subfolder (repeatable)",
            packageOption("git"),
          )
          .option(
            "--local <path>",
            "folder (Python project), wheel or sdist on this machine, uploaded and installed (repeatable)",
            packageOption("local"),
          ),
    },
  )
    .option("--preamble <line>", "shell line run before Python starts, e.g. 'module load python' (repeatable)", collect)
    .option("--system-site-packages", "give the venv access to the system's packages")
    .option("--no-venv", "no venv: use the Python as it is (no packages can be installed)")
    .option("--shared", "shared endpoint: readable by everyone who can reach it, writable by this account only")
    .option("--dir <path>", "endpoint folder (default: the one ~/.sremote/.location names, else ~/.sremote)")
    .option("--tmp-dir <path>", "private temp folder (default <dir>/tmp, ~/.sremote/tmp for a shared endpoint)")
    .option("--work-dir <path>", "folder calls start in (default: the home folder)")
    .option("--force", "redo every step: upload the agent, recreate the venv, reinstall the packages")
    .option("--upgrade", "reinstall the packages even when their source has not changed (pip --upgrade)")
    .option("--index [url]", "use the package index for every package (pip fetches build tools), or this index URL")
    .addOption(new Option("--index-url <url>", "the same as --index <url>").hideHelp())
    .option("--no-index", "never use a package index (specs resolve from --find-links only)")
    .option("--find-links <path>", "folder or URL on the remote where pip also looks (repeatable)", collect)
    .option("--attach <endpoint-dir>", "the same as: sremote attach <target> <endpoint-dir>")
    .action(async (target: string, opts: InstallCommandOptions) => {
      setStatus(
        opts.attach !== undefined
          ? await attachCommand(target, opts.attach, opts, io, signal)
          : await installCommand(target, opts, packageFlags, io, signal),
      );
    });

  const host: CommandHost = { io, setStatus, signal };
  registerUninstallCommand(program, host);
  registerAttachCommand(program, host);
}

/** The package flags as installer inputs, checked (a malformed git URL is a usage error). */
export async function packagesFromFlags(flags: readonly PackageFlag[]): Promise<PackageInput[]> {
  // The installer loads only for the commands that use it (CLI start-up: issue 16).
  const { parseGitSource } = await import("@sremote/installer");
  return flags.map(({ flag, value }) => {
    if (flag === "git") return parseGitSource(value);
    if (flag === "local") {
      if (value.trim() === "")
        throw new UsageError("--local expects a folder, wheel or sdist path, got an empty string");
      return { kind: "local", path: resolve(value) };
    }
    if (value.trim() === "") throw new UsageError("--package expects a pip requirement, got an empty string");
    return { kind: "spec", spec: value };
  });
}

function indexOption(opts: InstallCommandOptions): boolean | string | undefined {
  if (opts.indexUrl !== undefined) {
    if (opts.index === false) throw new UsageError("--index-url and --no-index contradict each other");
    return opts.indexUrl;
  }
  return opts.index;
}

/** `sremote install <target>`. Returns the exit status. */
export async function installCommand(
  targetText: string,
  opts: InstallCommandOptions,
  packageFlags: readonly PackageFlag[],
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  return runEndpointCommand("install", targetText, opts, io, signal, async (s) => {
    const options: InstallOptions = {
      signal: s.signal,
      layout: targetLayout(s.opened, opts),
      dir: opts.dir,
      tmpDir: opts.tmpDir,
      workDir: opts.workDir,
      python: opts.python,
      preamble: opts.preamble,
      venv: opts.venv === false ? false : undefined,
      systemSitePackages: opts.systemSitePackages,
      packages: await packagesFromFlags(packageFlags),
      index: indexOption(opts),
      findLinks: opts.findLinks,
      upgrade: opts.upgrade,
      force: opts.force,
      shared: opts.shared,
      loginEnv: opts.loginEnv,
      onProgress: s.listener,
    };
    const { install } = await import("@sremote/installer");
    const result = await install(s.opened.connector, options);
    return { json: result as unknown as Record<string, unknown>, text: renderInstall(targetText, result) };
  });
}

function renderInstall(target: string, r: InstallResult): string {
  const o = r.operations;
  const lines = [
    r.changed
      ? `installed ${target} → ${r.layout.endpointDir}${r.shared ? " (shared)" : ""} in ${formatDuration(r.durationMs)}`
      : `up to date: ${target} → ${r.layout.endpointDir} (nothing changed) in ${formatDuration(r.durationMs)}`,
    `  python    ${r.python.version} at ${r.python.executable}${r.venv ? `, venv ${r.layout.endpointDir}/env${r.venv.systemSitePackages ? " (system site packages)" : ""}` : ", no venv"}`,
    `  agent     ${r.agentVersion}`,
  ];
  if (r.packages.length > 0) {
    const names = r.packages.map((p) => {
      const dists = p.distributions.map((d) => `${d.name} ${d.version}`).join(", ");
      // A spec that is just the distribution's name says nothing more.
      const same = p.distributions.some((d) => d.name.toLowerCase() === p.source.toLowerCase());
      return dists ? (same ? dists : `${dists} (${p.source})`) : p.source;
    });
    lines.push(`  packages  ${names.join("\n            ")}`);
  }
  if (r.location.action !== "none") lines.push(`  location  ${r.location.path} ${r.location.action}`);
  lines.push(
    `  remote    ${o.uploads} upload(s) (${formatSize(o.uploadBytes)}), ${o.deletes} delete(s), ${o.commands} command(s)`,
  );
  return `${lines.map(printable).join("\n")}\n`;
}
