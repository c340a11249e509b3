import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type CallOptions, RemoteClient } from "@sremote/client";
import { AbortError, isSremoteError, RemoteExecError, type SremoteError, UsageError } from "@sremote/core";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import type { CliIO } from "../io.js";
import { parseTimeout } from "../target-options.js";
import { openTarget } from "../targets.js";
import { formatJson, parseByteCount, parseEnvOptions, parseInputLine, parsePositiveInt } from "../values.js";
import {
  type CallCommandOptions,
  DEFAULT_OUTPUT_LIMIT,
  errorJson,
  launcherEventPrinter,
  reportError,
  slurmLauncher,
  splitCallable,
} from "./call.js";

/** Options of `sremote map`, as parsed from the command line. */
export interface MapCommandOptions extends Omit<CallCommandOptions, "kw" | "json"> {
  /** `--inputs FILE`: JSON lines, one input each; `-` reads stdin. */
  inputs: string;
  /** `--concurrency N`: calls in flight (default: twice the sessions). */
  concurrency?: string | undefined;
  /** `--sessions N`: agent sessions (default: the Slurm allocation's nodes, else 1). */
  sessions?: string | undefined;
}

/**
 * Failures that say the target itself cannot run any input (not set up, refused by the
 * scheduler, a requirement unmet, bad credentials): the run stops at the first instead of
 * failing — and, through a scheduler, requesting resources for — every remaining input.
 */
const FATAL_CODES: ReadonlySet<string> = new Set([
  "NOT_SET_UP",
  "VERSION_MISMATCH",
  "MODULES",
  "AUTH_FAILED",
  "HOST_KEY_UNKNOWN",
  "HOST_KEY_MISMATCH",
  "SCHEDULER",
]);

function isFatal(error: unknown): error is SremoteError {
  // Whatever `retryable` says (nothing ran): the same request would be refused again.
  return isSremoteError(error) && FATAL_CODES.has(error.code);
}

/** The printed-output keys of an output line: only those that say something. */
function printed(stdout: string, stderr: string, truncated: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (stdout) out.stdout = stdout;
  if (stderr) out.stderr = stderr;
  if (truncated) out.truncated = true;
  return out;
}

/** One input, or the reason its line could not be read as one. */
type LineInput = { args: unknown[] | Record<string, unknown> } | { bad: UsageError };

/** The non-blank lines of `stream` as inputs, read lazily (one line per input). */
async function* readInputs(stream: NodeJS.ReadableStream): AsyncGenerator<LineInput> {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === "") continue;
      try {
        yield { args: parseInputLine(line, n) };
      } catch (err) {
        yield { bad: err as UsageError };
      }
    }
  } finally {
    lines.close();
  }
}

/** Writes `text`, waiting while the stream's buffer is full (a slow reader of 100,000 lines). */
async function writeLine(io: CliIO, text: string): Promise<void> {
  const out = io.stdout as CliIO["stdout"] & { once?: (event: string, listener: () => void) => unknown };
  if (out.write(text) === false && typeof out.once === "function") {
    await new Promise<void>((resolve) => out.once?.("drain", resolve));
  }
}

/**
 * `sremote map <target> <module.function> --inputs FILE`: one call per input line, one JSON
 * line per input on stdout in input order (`{"ok":true,"value":…}` or
 * `{"ok":false,"error":{…}}`). Exit 0 when all succeeded, 1 when any failed.
 */
export async function mapCommand(
  targetText: string,
  callable: string,
  opts: MapCommandOptions,
  io: CliIO,
  signal?: AbortSignal,
): Promise<number> {
  let opened: Awaited<ReturnType<typeof openTarget>> | undefined;
  let client: RemoteClient | undefined;
  let input: NodeJS.ReadableStream | undefined;
  try {
    const { module, fn } = splitCallable(callable);
    const { env, envDefault } = parseEnvOptions(opts);
    const timeoutMs = parseTimeout(opts.timeout);
    const outputLimit = parseByteCount(opts.outputLimit, "--output-limit");
    const concurrency = parsePositiveInt(opts.concurrency, "--concurrency");
    const launcher = opts.slurm === undefined ? undefined : await slurmLauncher(opts.slurm);
    const poolSize = parsePositiveInt(opts.sessions, "--sessions") ?? launcher?.options.nodes ?? 1;
    input = opts.inputs === "-" ? (io.stdin ?? process.stdin) : await openInputFile(opts.inputs);
    opened = await openTarget(targetText, opts);
    client = new RemoteClient({
      connector: opened.connector,
      ...opened.clientOptions,
      mode: opts.mode,
      poolSize,
      launcher,
      onEvent: launcher ? launcherEventPrinter(io) : undefined,
    });
    for (const r of opts.require) client.registerModule(r);
    const callOptions: Omit<CallOptions, "signal"> = {
      env,
      envDefault,
      pathAppend: opts.pathAppend,
      cwd: opts.cwd,
      timeoutMs,
      outputLimit,
    };
    // A line that is not an input fails as itself: it is sent as no call (null is no
    // argument list), and its result carries the line's own error.
    const badLines = new Map<number, UsageError>();
    let index = 0;
    async function* inputs() {
      for await (const item of readInputs(input as NodeJS.ReadableStream)) {
        if ("bad" in item) {
          badLines.set(index++, item.bad);
          yield null;
        } else {
          index++;
          yield item.args;
        }
      }
    }
    let failed = 0;
    let total = 0;
    let truncatedInputs = 0;
    let fatal: SremoteError | undefined;
    const stop = new AbortController();
    const mapSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    try {
      for await (const r of client.map(module, fn, inputs(), { ...callOptions, concurrency, signal: mapSignal })) {
        total++;
        let line: string | undefined;
        let error: unknown;
        if (r.ok) {
          try {
            line = formatJson({ ok: true, value: r.value, ...printed(r.stdout, r.stderr, r.truncated) });
          } catch (err) {
            error = err; // a value with no JSON form
          }
          if (r.truncated) truncatedInputs++;
        } else {
          error = badLines.get(r.index) ?? r.error;
          badLines.delete(r.index);
          if (!fatal && isFatal(r.error)) {
            fatal = r.error;
            stop.abort(fatal);
          }
        }
        if (line === undefined) {
          failed++;
          const out = error instanceof RemoteExecError ? printed(error.stdout, error.stderr, error.truncated) : {};
          if (error instanceof RemoteExecError && error.truncated) truncatedInputs++;
          line = JSON.stringify({ ok: false, error: errorJson(error), ...out });
        }
        await writeLine(io, `${line}\n`);
      }
    } catch (err) {
      if (fatal && !signal?.aborted) {
        io.stderr.write(
          `sremote: map stopped after ${total} results: ${fatal.message} [${fatal.code}] (the remaining inputs were not read)\n`,
        );
        return exitCodeFor(fatal);
      }
      if (err instanceof AbortError || signal?.aborted) {
        io.stderr.write(`sremote: map interrupted after ${total} results (${failed} failed)\n`);
        return EXIT.interrupted;
      }
      throw err;
    }
    if (truncatedInputs > 0) {
      io.stderr.write(
        `sremote: the printed output of ${truncatedInputs} input(s) was cut at ${outputLimit ?? DEFAULT_OUTPUT_LIMIT} bytes per stream ("truncated": true on their lines); raise it with --output-limit BYTES\n`,
      );
    }
    if (failed > 0) io.stderr.write(`sremote: ${failed} of ${total} inputs failed\n`);
    return failed > 0 ? EXIT.remoteFailed : EXIT.ok;
  } catch (err) {
    reportError(err, io, false);
    return exitCodeFor(err);
  } finally {
    if (input && input !== process.stdin && input !== io.stdin)
      (input as NodeJS.ReadableStream & { destroy?(): void }).destroy?.();
    await client?.close({ graceMs: 200 }).catch(() => {});
    if (!client) await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

/** Opens the inputs file, or fails with a usage error naming it. */
function openInputFile(path: string): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    const stream = createReadStream(path, { encoding: "utf8" });
    stream.once("open", () => resolve(stream));
    stream.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new UsageError(`--inputs ${path}: ${err.code === "ENOENT" ? "no such file" : err.message}`, { cause: err }),
      ),
    );
  });
}
