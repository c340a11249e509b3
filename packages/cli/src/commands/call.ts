import { type CallOptions, RemoteClient } from "@sremote/client";
import { isSremoteError, type LauncherEvent, RemoteExecError, UsageError } from "@sremote/core";
import type { SlurmLauncher } from "@sremote/launcher-slurm";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import type { CliIO } from "../io.js";
import { parseTimeout } from "../target-options.js";
import { type ConnectionFlags, openTarget } from "../targets.js";
import {
  formatJson,
  formatReadable,
  parseArgument,
  parseAssignment,
  parseByteCount,
  parseEnvOptions,
} from "../values.js";

/** Options of `sremote call`, as parsed from the command line. */
export interface CallCommandOptions extends ConnectionFlags {
  kw: string[];
  env: string[];
  envDefault: string[];
  pathAppend: string[];
  require: string[];
  mode: "auto" | "session" | "file";
  timeout?: string | undefined;
  cwd?: string | undefined;
  json: boolean;
  /** `--output-limit`: per-stream cap on captured output (bytes, `k`/`M`/`G` allowed). */
  outputLimit?: string | undefined;
  /** `--slurm`: run the agent on compute nodes through Slurm (`partition=debug,time=5,nodes=2`). */
  slurm?: string | undefined;
}

/** The agent's own cap on captured output per stream when `--output-limit` is not given. */
export const DEFAULT_OUTPUT_LIMIT = 8 * 1024 * 1024;

/**
 * The Slurm launcher for `--slurm SPEC`, loaded only when asked for.
 *
 * @throws UsageError for a bad spec (`parseSlurmSpec`'s message).
 */
export async function slurmLauncher(spec: string): Promise<SlurmLauncher> {
  const { parseSlurmSpec, slurm } = await import("@sremote/launcher-slurm");
  return slurm(parseSlurmSpec(spec));
}

/**
 * Prints a launcher's events on stderr (`sremote: slurm: job 42 pending (Resources)`), each
 * distinct line once in a row: a pending allocation reports the same state at every poll.
 */
export function launcherEventPrinter(io: CliIO): (event: LauncherEvent) => void {
  let last = "";
  return (event) => {
    const line = `sremote: ${event.launcher}: ${event.message}\n`;
    if (line === last) return;
    last = line;
    io.stderr.write(line);
  };
}

/** The stderr notice for output cut at `limit` bytes per stream. */
export function truncationNotice(limit: number | undefined): string {
  const bytes = limit ?? DEFAULT_OUTPUT_LIMIT;
  return `sremote: the call's printed output was cut at ${bytes} bytes per stream${limit === undefined ? " (the default limit)" : ""}; raise it with --output-limit BYTES\n`;
}

/**
 * Splits `module.function` at the last dot, or `module:attr.path` at the colon (for
 * functions that are attributes of classes: `qdo:Queue.valid_name`).
 */
export function splitCallable(text: string): { module: string; fn: string } {
  const colon = text.indexOf(":");
  if (colon >= 0) return { module: text.slice(0, colon), fn: text.slice(colon + 1) };
  const dot = text.lastIndexOf(".");
  if (dot <= 0 || dot === text.length - 1) {
    throw new UsageError(`expected module.function (or module:Class.method), got ${JSON.stringify(text)}`);
  }
  return { module: text.slice(0, dot), fn: text.slice(dot + 1) };
}

/** `sremote call <target> <module.function> [args…]`. Returns the exit status. */
export async function callCommand(
  targetText: string,
  callable: string,
  rawArgs: string[],
  opts: CallCommandOptions,
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  let stdout = "";
  let stderr = "";
  let opened: Awaited<ReturnType<typeof openTarget>> | undefined;
  let client: RemoteClient | undefined;
  try {
    const { module, fn } = splitCallable(callable);
    const args = rawArgs.map(parseArgument);
    const kwargs: Record<string, unknown> = {};
    for (const a of opts.kw) {
      const [k, v] = parseAssignment(a, "--kw", true);
      kwargs[k] = v;
    }
    const { env, envDefault } = parseEnvOptions(opts);
    const timeoutMs = parseTimeout(opts.timeout);
    const outputLimit = parseByteCount(opts.outputLimit, "--output-limit");
    const launcher = opts.slurm === undefined ? undefined : await slurmLauncher(opts.slurm);
    opened = await openTarget(targetText, opts);
    client = new RemoteClient({
      connector: opened.connector,
      ...opened.clientOptions,
      mode: opts.mode,
      launcher,
      onEvent: launcher ? launcherEventPrinter(io) : undefined,
    });
    for (const r of opts.require) client.registerModule(r);
    const callOptions: CallOptions = {
      kwargs: Object.keys(kwargs).length > 0 ? kwargs : undefined,
      env,
      envDefault,
      pathAppend: opts.pathAppend,
      cwd: opts.cwd,
      timeoutMs,
      signal,
      outputLimit,
    };
    const result = await client.call(module, fn, args, callOptions);
    stdout = result.stdout;
    stderr = result.stderr;
    const { truncated } = result;
    if (opts.json) {
      io.stdout.write(
        `${formatJson({ ok: true, value: result.value, stdout, stderr, truncated, durationMs: round(result.durationMs) })}\n`,
      );
    } else {
      if (stdout) io.stdout.write(stdout);
      if (stderr) io.stderr.write(stderr);
      const text = formatReadable(result.value);
      if (text !== undefined) io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    }
    // Never silent: a cut is reported on stderr, with --json too (stdout stays one object).
    if (truncated) io.stderr.write(truncationNotice(outputLimit));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof RemoteExecError) {
      stdout = err.stdout;
      stderr = err.stderr;
    }
    reportError(err, io, opts.json, stdout, stderr);
    if (err instanceof RemoteExecError && err.truncated) {
      io.stderr.write(truncationNotice(parseByteCount(opts.outputLimit, "--output-limit")));
    }
    return exitCodeFor(err);
  } finally {
    // A call that timed out may still run remotely: do not wait long for it.
    await client?.close({ graceMs: 200 }).catch(() => {});
    if (!client) await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

/** The `error` object of `--json` output and of `sremote map` lines. */
export function errorJson(err: unknown): {
  code: string;
  kind: string | null;
  type: string;
  message: string;
  traceback: string | null;
} {
  const e = err as Partial<Error> | undefined;
  return {
    code: isSremoteError(err) ? err.code : "INTERNAL",
    kind: err instanceof RemoteExecError ? err.kind : null,
    type: err instanceof RemoteExecError ? err.type : (e?.name ?? "Error"),
    message: err instanceof RemoteExecError ? err.remoteMessage : String(e?.message ?? err),
    traceback: err instanceof RemoteExecError ? err.traceback : null,
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Prints an error as `--json` or as text (the remote traceback on stderr). */
export function reportError(err: unknown, io: CliIO, json: boolean, stdout = "", stderr = ""): void {
  const e = err as Partial<RemoteExecError> & Error;
  const code = isSremoteError(err) ? err.code : "INTERNAL";
  if (json) {
    const truncated = err instanceof RemoteExecError && err.truncated;
    io.stdout.write(`${JSON.stringify({ ok: false, error: errorJson(err), stdout, stderr, truncated })}\n`);
    return;
  }
  if (stdout) io.stdout.write(stdout);
  if (stderr) io.stderr.write(stderr);
  if (err instanceof RemoteExecError && err.traceback)
    io.stderr.write(err.traceback.endsWith("\n") ? err.traceback : `${err.traceback}\n`);
  io.stderr.write(`sremote: ${e?.message ?? String(err)}${isSremoteError(err) ? ` [${code}]` : ""}\n`);
}
