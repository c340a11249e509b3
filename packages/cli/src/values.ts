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
