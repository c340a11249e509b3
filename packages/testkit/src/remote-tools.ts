import { createHash } from "node:crypto";
import type { Connector, ExecOptions, ExecResult } from "@sremote/core";

/**
 * Runs `argv` through `connector.exec` and returns its stdout; a non-zero exit (or a signal)
 * throws an error that shows the command, its status and its stderr.
 */
export async function execOk(connector: Connector, argv: readonly string[], options?: ExecOptions): Promise<string> {
  const result = await connector.exec(argv, options);
  if (result.exitCode !== 0) {
    throw new Error(`command ${JSON.stringify(argv)} failed: ${describeExit(result)}\nstderr: ${result.stderr}`);
  }
  return result.stdout;
}

/** `exit 3`, `signal SIGKILL`… for messages. */
export function describeExit(result: Pick<ExecResult, "exitCode" | "signal">): string {
  return result.signal !== null ? `signal ${result.signal}` : `exit ${result.exitCode}`;
}

/**
 * The argv a remote program receives, reported by `printf '%s\0'`: the reference oracle
 * for argument passing (printf is POSIX and, as a shell builtin or `/usr/bin/printf`, present
 * everywhere).
 */
export async function remoteArgv(connector: Connector, words: readonly string[]): Promise<string[]> {
  const out = await execOk(connector, ["printf", "%s\\0", ...words]);
  // printf reuses its format for every word and prints it once with no word at all.
  const parts = out.split("\0");
  parts.pop();
  return words.length === 0 ? [] : parts;
}

/** Parses `od -An -v -tx1` output into bytes. */
export function parseOdHex(text: string): Uint8Array {
  const hex = text.match(/[0-9a-fA-F]{2}/g) ?? [];
  return Uint8Array.from(hex, (h) => Number.parseInt(h, 16));
}

/**
 * The bytes of a remote file as `od` dumps them: an oracle that does not depend on the
 * connector's own file transfer or on stdout decoding.
 */
export async function remoteFileBytes(connector: Connector, path: string): Promise<Uint8Array> {
  return parseOdHex(await execOk(connector, ["od", "-An", "-v", "-tx1", path]));
}

/** The size of a remote file in bytes, from `wc -c`. */
export async function remoteFileSize(connector: Connector, path: string): Promise<number> {
  const out = await execOk(connector, ["sh", "-c", 'wc -c < "$1"', "sh", path]);
  return Number.parseInt(out.trim(), 10);
}

/**
 * The permission bits of a remote path, from `stat` (GNU `stat -c %a`, BSD `stat -f %Lp`),
 * as a number (`0o600`).
 */
export async function remoteMode(connector: Connector, path: string): Promise<number> {
  const out = await execOk(connector, ["sh", "-c", 'stat -c %a "$1" 2>/dev/null || stat -f %Lp "$1"', "sh", path]);
  return Number.parseInt(out.trim(), 8);
}

/** True when a remote path exists (`test -e`, symlinks not followed to a missing target). */
export async function remoteExists(connector: Connector, path: string): Promise<boolean> {
  const result = await connector.exec(["sh", "-c", 'test -e "$1" || test -L "$1"', "sh", path]);
  if (result.exitCode === 0) return true;
  if (result.exitCode === 1) return false;
  throw new Error(`test -e ${path} failed: ${describeExit(result)}\nstderr: ${result.stderr}`);
}

/**
 * Waits until a remote path exists, polling through `exec`; throws after `timeoutMs`.
 * Used to know that a remote command has really started before cancelling it.
 */
export async function waitForRemoteFile(
  connector: Connector,
  path: string,
  timeoutMs: number,
  what = path,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await remoteExists(connector, path)) return;
    if (Date.now() > end) throw new Error(`${what} did not appear within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** SHA-256 of bytes or text (as UTF-8), hex. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Deterministic printable text of exactly `size` bytes, in lines — for tests of large
 * stdout, where random bytes would not survive UTF-8 decoding.
 */
export function largeText(size: number, seed = 7): string {
  const lines: string[] = [];
  let total = 0;
  let x = seed >>> 0;
  for (let i = 0; total < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const line = `line ${i} ${x.toString(36)} ${"abcdefghijklmnopqrstuvwxyz".slice(x % 26)}\n`;
    lines.push(line);
    total += line.length;
  }
  return lines.join("").slice(0, size);
}
