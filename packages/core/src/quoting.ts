import { UsageError } from "./errors.js";

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one word for a POSIX shell (`sh`, `bash`, `dash`, `zsh` in sh mode) so that it
 * arrives verbatim as one argv element. Words made only of safe characters are left bare
 * for readability; everything else is single-quoted, with `'` written as `'\''`.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for a word containing a NUL byte, which no
 *   POSIX argv can carry.
 */
export function shQuote(word: string): string {
  if (typeof word !== "string") {
    throw new UsageError(`shell word must be a string, got ${typeof word}`);
  }
  if (word.includes("\0")) {
    throw new UsageError("shell word contains a NUL byte, which a command line cannot carry");
  }
  if (word.length > 0 && SAFE.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Quotes every element of `argv` with {@link shQuote} and joins them with spaces. */
export function shJoin(argv: readonly string[]): string {
  if (!Array.isArray(argv) || argv.length === 0) {
    throw new UsageError("argv must be a non-empty array of strings");
  }
  return argv.map(shQuote).join(" ");
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** True when `name` is a portable environment variable name. */
export function isEnvName(name: string): boolean {
  return ENV_NAME.test(name);
}

/**
 * Checks an environment map: names must be portable (`[A-Za-z_][A-Za-z0-9_]*`), values
 * strings without NUL bytes.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) naming the offending variable.
 */
export function assertEnv(env: Readonly<Record<string, string>>, what = "env"): void {
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) {
      throw new UsageError(`${what}: invalid environment variable name ${JSON.stringify(name)}`);
    }
    if (typeof value !== "string") {
      throw new UsageError(`${what}: value of ${name} must be a string, got ${typeof value}`);
    }
    if (value.includes("\0")) {
      throw new UsageError(`${what}: value of ${name} contains a NUL byte`);
    }
  }
}

/**
 * Builds `cd DIR && env K=V … argv…` as one shell command line, every piece quoted.
 * Connectors that can only run a command line (SSH exec, REST gateways) use this so that
 * cwd and env reach the remote program without any string concatenation of user data.
 */
export function shCommand(
  argv: readonly string[],
  options: { cwd?: string | undefined; env?: Readonly<Record<string, string>> | undefined } = {},
): string {
  const parts: string[] = [];
  if (options.cwd !== undefined) parts.push(`cd ${shQuote(options.cwd)} &&`);
  const env = options.env ?? {};
  assertEnv(env);
  const assignments = Object.entries(env).map(([k, v]) => `${k}=${shQuote(v)}`);
  if (assignments.length > 0) parts.push("env", ...assignments);
  // `exec` replaces the shell so signals and exit status belong to the program itself.
  if (assignments.length === 0) parts.push("exec");
  parts.push(shJoin(argv));
  return parts.join(" ");
}
