import { homedir } from "node:os";
import { type Deadline, deadline, hasErrorCode, type RemoteLayout, UsageError } from "@sremote/core";
import type { InstallEvent, InstallStep } from "@sremote/installer";
import type { Command } from "commander";
import { EXIT, installExitCodeFor } from "../exit-codes.js";
import { type CliIO, redactingIO } from "../io.js";
import { progressModeFor, progressView } from "../progress.js";
import { addTargetOptions, parseTimeout, TARGET_HELP } from "../target-options.js";
import { type ConnectionFlags, type OpenedTarget, openTarget } from "../targets.js";
import { reportInstallError } from "./install-error-report.js";

/*
 * What `sremote install`, `uninstall` and `attach` share: their common flags, opening and
 * connecting the target, the progress display, one deadline, and the result or error report.
 */

/** Flags shared by install, uninstall and attach. */
export interface CommonFlags extends ConnectionFlags {
  json: boolean;
  quiet: boolean;
  timeout?: string | undefined;
  loginEnv?: boolean | undefined;
}

/** What a command's registration needs besides the program: where it writes, its exit status, Ctrl-C. */
export interface CommandHost {
  io: CliIO;
  /** Receives the exit status of the command that ran. */
  setStatus: (status: number) => void;
  signal?: AbortSignal | undefined;
}

/**
 * Adds `sremote <name> <target> [args…]` to `program`: its description and arguments,
 * then `configure`'s options, the target's connection flags (`--python` described by
 * `python`, `false`: none) and the flags install, uninstall and attach share. The caller
 * adds its own options after these.
 */
export function addEndpointCommand(
  program: Command,
  name: string,
  description: string,
  options: {
    args?: readonly (readonly [string, string])[];
    python?: string | false;
    configure?: (cmd: Command) => void;
  } = {},
): Command {
  const cmd = program.command(name).description(description).argument("<target>", TARGET_HELP);
  for (const [arg, help] of options.args ?? []) cmd.argument(arg, help);
  options.configure?.(cmd);
  return addTargetOptions(cmd, options.python ?? false)
    .option("--login-env", "run the remote commands in a login environment (profile and modules loaded)")
    .option("--timeout <ms>", "give up after this many milliseconds (exit status 124)")
    .option("-q, --quiet", "no progress display", false)
    .option(
      "--json",
      "print one JSON object on stdout: the result, or {ok:false,error}; progress goes to stderr as plain lines",
      false,
    );
}

/** What install, uninstall and attach share while they run: the target, the progress display, one deadline. */
export interface EndpointCommandContext {
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
export async function runEndpointCommand(
  name: "install" | "uninstall" | "attach",
  targetText: string,
  opts: CommonFlags,
  rawIO: CliIO,
  signal: AbortSignal | undefined,
  body: (s: EndpointCommandContext) => Promise<{ json: Record<string, unknown>; text: string }>,
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

/**
 * The layout a `local:/folder` target names (the installer then writes no `.location`), or
 * `undefined` for other targets.
 *
 * @throws UsageError when `opts.dir` is given too: the target already names the folder.
 */
export function targetLayout(
  opened: OpenedTarget,
  opts: { dir?: string | undefined; tmpDir?: string | undefined; workDir?: string | undefined },
): RemoteLayout | undefined {
  if (opened.target.kind !== "local" || !opened.target.endpointDir) return undefined;
  const dir = opened.target.endpointDir;
  if (opts.dir !== undefined) throw new UsageError(`the target ${dir} already names the endpoint folder: drop --dir`);
  return { endpointDir: dir, tmpDir: opts.tmpDir ?? `${dir}/tmp`, workDir: opts.workDir ?? homedir() };
}
