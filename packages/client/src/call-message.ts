/**
 * The call message of `client.call()`: arguments checked and split, registrations merged in.
 * Runs once per call, so a plain call allocates nothing it does not send.
 */
import { assertEnv, UsageError } from "@sremote/core";
import type { CallMessage } from "@sremote/protocol";
import type { CallOptions } from "./options.js";
import type { Requirement } from "./requirements.js";

/** What every call carries, from `registerEnv`/`registerPath`/`registerModule`. */
export interface Registrations {
  env: Record<string, string>;
  envDefault: Record<string, string>;
  pathAppend: string[];
  requirements: Requirement[];
}

/** A dotted Python import or attribute path. */
export const IDENT_PATH = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * The call message for `module.fn(args)`, with the id `id`.
 *
 * @throws UsageError for a bad module or function name, arguments, kwargs, env or timeout.
 */
export function buildCallMessage(
  id: string,
  module: string,
  fn: string,
  args: readonly unknown[] | Record<string, unknown>,
  options: CallOptions,
  reg: Registrations,
): CallMessage {
  if (typeof module !== "string" || !IDENT_PATH.test(module)) {
    throw new UsageError(`invalid module name ${JSON.stringify(module)} (a dotted Python import path)`);
  }
  if (typeof fn !== "string" || !IDENT_PATH.test(fn)) {
    throw new UsageError(`invalid function name ${JSON.stringify(fn)} (a dotted attribute path)`);
  }
  let positional: unknown[] | undefined;
  let kwargs: Record<string, unknown> | undefined;
  if (Array.isArray(args)) positional = [...args];
  else if (isPlainObject(args)) kwargs = { ...args };
  else {
    throw new UsageError(
      `args must be an array (positional) or a plain object (keyword arguments), got ${describeValue(args)}`,
    );
  }
  assertTimeout(options.timeoutMs);
  if (options.kwargs !== undefined) {
    if (!isPlainObject(options.kwargs))
      throw new UsageError(`kwargs must be a plain object, got ${describeValue(options.kwargs)}`);
    kwargs = { ...(kwargs ?? {}), ...options.kwargs };
  }
  const message: CallMessage = { v: 1, kind: "call", id, module, function: fn };
  if (positional && positional.length > 0) message.args = positional;
  if (kwargs) message.kwargs = kwargs;
  // Registrations were checked when made; the merged maps are built only when there is
  // something to merge (the per-call path of a plain call allocates nothing here).
  const env = merged(reg.env, options.env, "env");
  if (env) message.env = env;
  const envDefault = merged(reg.envDefault, options.envDefault, "envDefault");
  if (envDefault) message.envDefault = envDefault;
  if (reg.pathAppend.length > 0 || (options.pathAppend?.length ?? 0) > 0) {
    message.pathAppend = [...reg.pathAppend, ...(options.pathAppend ?? [])];
  }
  if (options.cwd !== undefined) message.cwd = options.cwd;
  if (options.onOutput) message.stream = true;
  if (options.outputLimit !== undefined) message.outputLimit = options.outputLimit;
  return message;
}

export function assertTimeout(timeoutMs: unknown): void {
  if (timeoutMs !== undefined && (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
    throw new UsageError(`timeoutMs must be a non-negative finite number of milliseconds, got ${String(timeoutMs)}`);
  }
}

/** `registered` overridden by `extra` (checked), or undefined when both are empty. */
function merged(
  registered: Record<string, string>,
  extra: Record<string, string> | null | undefined,
  what: string,
): Record<string, string> | undefined {
  if (extra != null) {
    assertEnv(extra, what);
    if (hasKeys(extra)) return { ...registered, ...extra };
  }
  return hasKeys(registered) ? { ...registered } : undefined;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return `a ${(v as object).constructor?.name ?? "object"}`;
  return `a ${typeof v}`;
}
