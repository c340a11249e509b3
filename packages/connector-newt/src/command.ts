import { randomBytes } from "node:crypto";
import { shCommand, shQuote } from "@sremote/core";

/** Everything needed to build one wrapped command line. */
export interface WrapperInput {
  argv: readonly string[];
  cwd?: string | undefined;
  env?: Readonly<Record<string, string>> | undefined;
  /** Remote file to read stdin from; the script deletes it once the command has ended. */
  stdinFile?: string | undefined;
}

/** A wrapped command: what to send as `executable`, and the marker to look for. */
export interface WrappedCommand {
  executable: string;
  nonce: string;
}

/** A fresh marker: unguessable, so a command's own output cannot fake an exit status. */
export function newNonce(): string {
  return `sremote-exit-${randomBytes(12).toString("hex")}`;
}

/**
 * Builds the spec's §4 recipe: `/bin/sh -c <script>` where the script runs the quoted argv
 * (with `cd`/`env` from core's {@link shCommand}) in a subshell, stdin from the uploaded
 * file or `/dev/null`, then prints `\n<nonce> <status>\n` on stderr. NEWT does not report
 * exit statuses; the marker does, and its absence means the command was killed or never ran.
 */
export function wrapCommand(input: WrapperInput, nonce = newNonce()): WrappedCommand {
  const inner = shCommand(input.argv, { cwd: input.cwd, env: input.env });
  const source = input.stdinFile === undefined ? "/dev/null" : shQuote(input.stdinFile);
  const cleanup = input.stdinFile === undefined ? "" : `/bin/rm -f -- ${shQuote(input.stdinFile)}; `;
  const script = `( ${inner} ) < ${source}; sremote_rc=$?; ${cleanup}printf '\\n%s %d\\n' ${nonce} "$sremote_rc" >&2`;
  return { executable: `/bin/sh -c ${shQuote(script)}`, nonce };
}

/** What {@link parseMarker} found. */
export type MarkerResult = { found: true; exitCode: number; stderr: string } | { found: false; stderr: string };

/**
 * Takes the exit marker out of a command's stderr. The marker is the last line written
 * by the wrapper, but a background child may write after it, so the last occurrence
 * counts; the leading newline the wrapper added is removed with it, giving back stderr
 * exactly as the command wrote it.
 */
export function parseMarker(stderr: string, nonce: string): MarkerResult {
  const needle = `\n${nonce} `;
  const at = stderr.lastIndexOf(needle);
  if (at < 0) return { found: false, stderr };
  const rest = stderr.slice(at + needle.length);
  const m = /^(\d{1,3})\n/.exec(rest);
  if (!m) return { found: false, stderr };
  return {
    found: true,
    exitCode: Number(m[1]),
    stderr: stderr.slice(0, at) + rest.slice(m[0].length),
  };
}
