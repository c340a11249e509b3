import { inspect } from "node:util";
import { UsageError } from "@sremote/core";
import { fromTaggedJson, toTaggedJson } from "@sremote/protocol";

/**
 * Turns one command-line argument into a value: valid JSON (tagged objects included,
 * `{"$bytes":"…"}`, `{"$date":"…"}`…) is parsed, anything else is taken as a string.
 * So `2` is a number, `"2"` (with the quotes reaching the program) a string, `abc` a string.
 */
export function parseArgument(text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return text;
  }
  try {
    return fromTaggedJson(json);
  } catch (err) {
    throw new UsageError(`argument ${JSON.stringify(text)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Splits `key=value` (value parsed by {@link parseArgument} when `parse` is true). */
export function parseAssignment(text: string, what: string, parse: boolean): [string, unknown] {
  const i = text.indexOf("=");
  if (i <= 0) throw new UsageError(`${what} expects KEY=VALUE, got ${JSON.stringify(text)}`);
  const key = text.slice(0, i);
  const raw = text.slice(i + 1);
  return [key, parse ? parseArgument(raw) : raw];
}

/** JSON text of a value in the tagged form (the `--json` output and the default printing). */
export function formatJson(value: unknown, indent?: number): string {
  return JSON.stringify(toTaggedJson(value), null, indent);
}

/**
 * How a value is printed without `--json`: strings as they are, null as nothing, numbers
 * and booleans as text, everything else as indented tagged JSON (readable and parseable).
 */
export function formatReadable(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  try {
    return formatJson(value, 2);
  } catch {
    return inspect(value, { depth: 8, colors: false });
  }
}

const BYTE_UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * A byte count from the command line: a whole number, optionally with a binary unit
 * (`512`, `64k`, `100M`, `1G`, `16MiB`). Undefined when `text` is undefined.
 *
 * @throws UsageError for anything else.
 */
export function parseByteCount(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const m = /^\s*(\d+)\s*([kmg]?)(?:i?b)?\s*$/i.exec(text);
  const n = m ? Number(m[1]) * (BYTE_UNITS[(m[2] as string).toLowerCase()] as number) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(
      `${what} expects a number of bytes (e.g. 1048576, 64k, 100M, 1G), got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** A positive whole number from the command line, or undefined when not given. */
export function parsePositiveInt(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`${what} expects a positive whole number, got ${JSON.stringify(text)}`);
  }
  return n;
}

/**
 * One input line of `sremote map` as the call's arguments: tagged JSON; an array is the
 * positional arguments, an object the keyword arguments, any other value the only argument.
 *
 * @throws UsageError when the line is not valid (tagged) JSON.
 */
export function parseInputLine(line: string, lineNumber: number): unknown[] | Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch (err) {
    throw new UsageError(`input line ${lineNumber} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = fromTaggedJson(json);
  } catch (err) {
    throw new UsageError(`input line ${lineNumber}: ${(err as Error).message}`, { cause: err });
  }
  if (Array.isArray(value)) return value;
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return value as Record<string, unknown>;
  }
  return [value];
}

/** `--env K=V` and `--env-default K=V` (repeatable), as the client's per-call maps of strings. */
export function parseEnvOptions(opts: { env: readonly string[]; envDefault: readonly string[] }): {
  env: Record<string, string>;
  envDefault: Record<string, string>;
} {
  const strings = (list: readonly string[], what: string) =>
    Object.fromEntries(list.map((a) => parseAssignment(a, what, false))) as Record<string, string>;
  return { env: strings(opts.env, "--env"), envDefault: strings(opts.envDefault, "--env-default") };
}
