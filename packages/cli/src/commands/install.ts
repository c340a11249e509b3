import { homedir } from "node:os";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { type Deadline, deadline, hasErrorCode, isSremoteError, type RemoteLayout, UsageError } from "@sremote/core";
import {
  type AttachResult,
  attach,
  discover,
  type InstallEvent,
  type InstallOptions,
  type InstallResult,
  type InstallStep,
  install,
  type PackageInput,
  parseGitSource,
  type UninstallResult,
  uninstall,
} from "@sremote/installer";
import { type Command, Option } from "commander";
import { EXIT, installExitCodeFor } from "../exit-codes.js";
import { type CliIO, redactingIO } from "../io.js";
import { formatDuration, formatSize, printable, progressModeFor, progressView } from "../progress.js";
import { addTargetOptions, collect, parseTimeout, TARGET_HELP } from "../target-options.js";
import { type ConnectionFlags, type OpenedTarget, openTarget } from "../targets.js";

/** Flags shared by install, uninstall and attach. */
interface CommonFlags extends ConnectionFlags {
  json: boolean;
  quiet: boolean;
  timeout?: string | undefined;
  loginEnv?: boolean | undefined;
}

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

/** Options of `sremote uninstall`. */
export interface UninstallCommandOptions extends CommonFlags {
  dir?: string | undefined;
  keepPackages?: boolean | undefined;
  yes?: boolean | undefined;
}

/** Options of `sremote attach`. */
export interface AttachCommandOptions extends CommonFlags {
  tmpDir?: string | undefined;
  workDir?: string | undefined;
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
  const common = (cmd: Command) =>
    cmd
      .option("--login-env", "run the remote commands in a login environment (profile and modules loaded)")
      .option("--timeout <ms>", "give up after this many milliseconds (exit status 124)")
      .option("-q, --quiet", "no progress display", false)
      .option(
        "--json",
        "print one JSON object on stdout: the result, or {ok:false,error}; progress goes to stderr as plain lines",
        false,
      );

  common(
    addTargetOptions(
      program
        .command("install")
        .description(
          "make <target> an SRemote endpoint: folders, agent, Python venv, packages (safe to run again: unchanged steps are skipped)",
        )
        .argument("<target>", TARGET_HELP)
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
      "the Python to make the venv from: a name on the remote PATH or a path (default: the last install's, else python3, else python)",
    )
      .option(
        "--preamble <line>",
        "shell line run before Python starts, e.g. 'module load python' (repeatable)",
        collect,
      )
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
      .option("--attach <endpoint-dir>", "the same as: sremote attach <target> <endpoint-dir>"),
  ).action(async (target: string, opts: InstallCommandOptions) => {
    setStatus(
      opts.attach !== undefined
        ? await attachCommand(target, opts.attach, opts, io, signal)
        : await installCommand(target, opts, packageFlags, io, signal),
    );
  });

  common(
    addTargetOptions(
      program
        .command("uninstall")
        .description(
          "remove the endpoint of <target> (asks first; someone else's shared endpoint: only detach from it)",
        )
        .argument("<target>", TARGET_HELP),
      false,
    ),
  )
    .option("--dir <path>", "endpoint folder (default: the one ~/.sremote/.location names, else ~/.sremote)")
    .option("--keep-packages", "keep the venv and its packages for a later install; remove the agent and the rest")
    .option("-y, --yes", "do not ask for confirmation (needed when there is no terminal to ask on, and with --json)")
    .action(async (target: string, opts: UninstallCommandOptions) => {
      setStatus(await uninstallCommand(target, opts, io, signal));
    });

  common(
    addTargetOptions(
      program
        .command("attach")
        .description(
          "point this account of <target> at a shared endpoint another account installed (sremote install --shared)",
        )
        .argument("<target>", TARGET_HELP)
        .argument("<endpoint-dir>", "the shared endpoint's folder on the remote"),
      false,
    ),
  )
    .option("--tmp-dir <path>", "this account's private temp folder (default ~/.sremote/tmp)")
    .option("--work-dir <path>", "folder calls start in (default: the home folder)")
    .action(async (target: string, dir: string, opts: AttachCommandOptions) => {
      setStatus(await attachCommand(target, dir, opts, io, signal));
    });
}

// ---- running a command ------------------------------------------------------------------------

/** What every command of this file shares: the target, the progress display, the error report. */
interface Session {
  io: CliIO;
  opened: OpenedTarget;
  /** Progress events go here (the installer's `onProgress`). */
  listener(event: InstallEvent): void;
  /** The caller's Ctrl-C and `--timeout` in one signal: one deadline for the whole command. */
  signal: AbortSignal;
}

/**
 * Opens the target, connects (shown as the `connect` step, so that authentication is not
 * counted in the install's own duration), runs `body`, reports its result or error, and
 * closes everything. Returns the exit status.
 */
async function runCommand(
  name: "install" | "uninstall" | "attach",
  targetText: string,
  opts: CommonFlags,
  rawIO: CliIO,
  signal: AbortSignal | undefined,
  body: (s: Session) => Promise<{ json: Record<string, unknown>; text: string }>,
): Promise<number> {
  const password = opts.passwordEnv ? process.env[opts.passwordEnv] : undefined;
  const io = redactingIO(rawIO, password ? [password] : []);
  // With --json, stdout holds the one result object; progress stays on stderr as plain lines.
  const view = progressView(io.stderr, opts.quiet ? "none" : opts.json ? "plain" : progressModeFor(io.stderr));
  let failedStep: InstallStep | undefined;
  const listener = (event: InstallEvent) => {
    if (event.type === "step-end" && event.outcome === "failed") failedStep = event.step;
    view.listener(event);
  };
  let opened: OpenedTarget | undefined;
  let d: Deadline | undefined;
  try {
    d = deadline({ signal, timeoutMs: parseTimeout(opts.timeout) });
    // The Python is the installer's business: it is not looked up here.
    opened = await openTarget(targetText, { ...opts, python: opts.python ?? "python3" });
    if (opened.target.kind === "local" && !opened.target.endpointDir) {
      // `local:` calls run the client's own packaged agent and never read an endpoint.
      throw new UsageError(
        `local: without a folder runs the client's packaged agent and has nothing to ${name}: name an endpoint folder, e.g. sremote ${name} local:/path/to/endpoint`,
      );
    }
    const connector = opened.connector;
    const live = d.signal;
    await timedStep(listener, "connect", `connecting to ${targetText}`, async () => {
      await connector.connect({ signal: live });
      return `connected (${connector.name})`;
    });
    const out = await body({ io, opened, listener, signal: live });
    view.close();
    if (opts.json) io.stdout.write(`${JSON.stringify({ ok: true, target: targetText, ...out.json })}\n`);
    else io.stdout.write(out.text);
    return EXIT.ok;
  } catch (caught) {
    view.close();
    // Nested operations only see their signal fire: the deadline knows whether it was
    // --timeout (TIMEOUT, exit 124) or Ctrl-C (ABORTED, exit 130).
    const err =
      d?.signal.aborted && (hasErrorCode(caught, "ABORTED") || hasErrorCode(caught, "TIMEOUT"))
        ? d.error(name)
        : caught;
    reportInstallError(name, err, failedStep, io, opts.json);
    return installExitCodeFor(err);
  } finally {
    view.close();
    d?.dispose();
    await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

/** Runs a step of the CLI's own (connecting) with the same events the installer emits. */
async function timedStep(
  emit: (e: InstallEvent) => void,
  step: InstallStep,
  message: string,
  body: () => Promise<string>,
): Promise<void> {
  const t0 = performance.now();
  emit({ type: "step-start", step, message });
  try {
    const done = await body();
    emit({
      type: "step-end",
      step,
      outcome: "done",
      changed: false,
      message: done,
      durationMs: performance.now() - t0,
    });
  } catch (err) {
    const text = err instanceof Error ? (err.message.split("\n")[0] ?? "") : String(err);
    emit({
      type: "step-end",
      step,
      outcome: "failed",
      changed: false,
      message: text,
      durationMs: performance.now() - t0,
    });
    throw err;
  }
}

/** The layout a `local:/folder` target names (the installer then writes no `.location`). */
function targetLayout(opened: OpenedTarget, opts: { tmpDir?: string | undefined; workDir?: string | undefined }) {
  if (opened.target.kind !== "local" || !opened.target.endpointDir) return undefined;
  const dir = opened.target.endpointDir;
  return {
    endpointDir: dir,
    tmpDir: opts.tmpDir ?? `${dir}/tmp`,
    workDir: opts.workDir ?? homedir(),
  } satisfies RemoteLayout;
}

function checkNoDir(opened: OpenedTarget, dir: string | undefined): void {
  if (dir !== undefined && opened.target.kind === "local" && opened.target.endpointDir) {
    throw new UsageError(`the target ${opened.target.endpointDir} already names the endpoint folder: drop --dir`);
  }
}

// ---- install ----------------------------------------------------------------------------------

/** The package flags as installer inputs, checked (a malformed git URL is a usage error). */
export function packagesFromFlags(flags: readonly PackageFlag[]): PackageInput[] {
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
  return runCommand("install", targetText, opts, io, signal, async (s) => {
    checkNoDir(s.opened, opts.dir);
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
      packages: packagesFromFlags(packageFlags),
      index: indexOption(opts),
      findLinks: opts.findLinks,
      upgrade: opts.upgrade,
      force: opts.force,
      shared: opts.shared,
      loginEnv: opts.loginEnv,
      onProgress: s.listener,
    };
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

// ---- uninstall --------------------------------------------------------------------------------

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
  return runCommand("uninstall", targetText, opts, io, signal, async (s) => {
    checkNoDir(s.opened, opts.dir);
    const layout = targetLayout(s.opened, {});
    const connector = s.opened.connector;
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

// ---- attach -----------------------------------------------------------------------------------

/** `sremote attach <target> <endpoint-dir>`. Returns the exit status. */
export async function attachCommand(
  targetText: string,
  dir: string,
  opts: AttachCommandOptions,
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  return runCommand("attach", targetText, opts, io, signal, async (s) => {
    if (dir.trim() === "") throw new UsageError("attach needs the shared endpoint's folder, got an empty string");
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

// ---- errors -----------------------------------------------------------------------------------

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
