import type { ExecOptions } from "./connector.js";
import { UsageError } from "./errors.js";
import { assertEnv } from "./quoting.js";

/**
 * Argument checks every connector needs, done once by {@link defineConnector} so a
 * transport only ever sees well-formed input. Each throws a {@link UsageError}
 * (`INVALID_ARGUMENT`) whose message starts with the connector's name.
 */

/** argv: a non-empty array of strings without NUL bytes, whose program is not empty. */
export function checkArgv(name: string, argv: readonly string[]): void {
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new UsageError(`${name}: argv must be a non-empty array of strings`);
  }
  for (const [i, word] of argv.entries()) {
    if (typeof word !== "string") throw new UsageError(`${name}: argv[${i}] must be a string, got ${typeof word}`);
    if (word.includes("\0")) {
      throw new UsageError(`${name}: argv[${i}] contains a NUL byte, which a command line cannot carry`);
    }
  }
  if (argv[0] === "") throw new UsageError(`${name}: argv[0] (the program) must not be empty`);
}

/** A remote path: a non-empty string without NUL bytes. */
export function checkPath(name: string, path: string, what = "path"): void {
  if (typeof path !== "string" || path === "") throw new UsageError(`${name}: ${what} must be a non-empty string`);
  if (path.includes("\0")) throw new UsageError(`${name}: ${what} contains a NUL byte`);
}

/** POSIX permission bits: an integer in [0, 0o7777]. */
export function checkMode(name: string, mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw new UsageError(`${name}: mode must be an integer between 0 and 0o7777, got ${mode}`);
  }
}

/** File contents: a Uint8Array. */
export function checkData(name: string, data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) throw new UsageError(`${name}: putFile data must be a Uint8Array`);
}

/** `exec`/`spawn` options: `cwd`, `env` and (for exec) `stdin`. */
export function checkExecOptions(name: string, options: ExecOptions): void {
  if (options.cwd !== undefined) checkPath(name, options.cwd, "cwd");
  if (options.env !== undefined) assertEnv(options.env, `${name}: env`);
  const { stdin } = options;
  if (stdin !== undefined && typeof stdin !== "string" && !(stdin instanceof Uint8Array)) {
    throw new UsageError(`${name}: stdin must be a string or a Uint8Array`);
  }
}
