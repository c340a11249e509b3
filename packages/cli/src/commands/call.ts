import { type CallOptions, RemoteClient } from "@sremote/client";
import { isSremoteError, RemoteExecError, UsageError } from "@sremote/core";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import type { CliIO } from "../io.js";
import { parseTimeout } from "../target-options.js";
import { type ConnectionFlags, openTarget } from "../targets.js";
import { formatJson, formatReadable, parseArgument, parseAssignment } from "../values.js";

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
    const env = Object.fromEntries(opts.env.map((a) => parseAssignment(a, "--env", false))) as Record<string, string>;
    const envDefault = Object.fromEntries(
      opts.envDefault.map((a) => parseAssignment(a, "--env-default", false)),
    ) as Record<string, string>;
    const timeoutMs = parseTimeout(opts.timeout);
    opened = await openTarget(targetText, opts);
    client = new RemoteClient({ connector: opened.connector, ...opened.clientOptions, mode: opts.mode });
    for (const r of opts.require) client.registerModule(r);
    const callOptions: CallOptions = {
      kwargs: Object.keys(kwargs).length > 0 ? kwargs : undefined,
      env,
      envDefault,
      pathAppend: opts.pathAppend,
      cwd: opts.cwd,
      timeoutMs,
      signal,
    };
    const result = await client.call(module, fn, args, callOptions);
    stdout = result.stdout;
    stderr = result.stderr;
    if (opts.json) {
      io.stdout.write(
        `${formatJson({ ok: true, value: result.value, stdout, stderr, durationMs: round(result.durationMs) })}\n`,
      );
    } else {
      if (stdout) io.stdout.write(stdout);
      if (stderr) io.stderr.write(stderr);
      const text = formatReadable(result.value);
      if (text !== undefined) io.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    if (err instanceof RemoteExecError) {
      stdout = err.stdout;
      stderr = err.stderr;
    }
    reportError(err, io, opts.json, stdout, stderr);
    return exitCodeFor(err);
  } finally {
    // A call that timed out may still run remotely: do not wait long for it.
    await client?.close({ graceMs: 200 }).catch(() => {});
    if (!client) await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Prints an error as `--json` or as text (the remote traceback on stderr). */
export function reportError(err: unknown, io: CliIO, json: boolean, stdout = "", stderr = ""): void {
  const e = err as Partial<RemoteExecError> & Error;
  const code = isSremoteError(err) ? err.code : "INTERNAL";
  if (json) {
    io.stdout.write(
      `${JSON.stringify({
        ok: false,
        error: {
          code,
          kind: err instanceof RemoteExecError ? err.kind : null,
          type: err instanceof RemoteExecError ? err.type : (e?.name ?? "Error"),
          message: err instanceof RemoteExecError ? err.remoteMessage : String(e?.message ?? err),
          traceback: err instanceof RemoteExecError ? err.traceback : null,
        },
        stdout,
        stderr,
      })}\n`,
    );
    return;
  }
  if (stdout) io.stdout.write(stdout);
  if (stderr) io.stderr.write(stderr);
  if (err instanceof RemoteExecError && err.traceback)
    io.stderr.write(err.traceback.endsWith("\n") ? err.traceback : `${err.traceback}\n`);
  io.stderr.write(`sremote: ${e?.message ?? String(err)}${isSremoteError(err) ? ` [${code}]` : ""}\n`);
}
