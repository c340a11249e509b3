import { randomBytes } from "node:crypto";
import { type RecordOptions, recordedRun, shCommand, shQuote } from "@sremote/core";

/** Everything needed to build one wrapped command line. */
export interface WrapperInput {
  argv: readonly string[];
  cwd?: string | undefined;
  env?: Readonly<Record<string, string>> | undefined;
  /** Remote file to read stdin from; the script deletes it once the command has ended. */
  stdinFile?: string | undefined;
  /**
   * Run at most once for `record.nonce`, with start and exit markers (core's `recordedRun`),
   * so that an ambiguous failure can be resolved by asking. Idempotent commands go without.
   */
  record?: Omit<RecordOptions, "nonce"> | undefined;
}

/** A wrapped command: what to send as `executable`, and the marker to look for. */
export interface WrappedCommand {
  executable: string;
  nonce: string;
}

/** Environment variable carrying a command's nonce into every process it starts. */
export const EXEC_ENV = "SREMOTE_NEWT_EXEC";

/**
 * Ends every process whose environment carries one of the nonces given as arguments
 * (`SREMOTE_NEWT_EXEC=<nonce>`), found through `/proc/<pid>/environ` — so background
 * children and orphans are caught too, wherever their process group is. Repeated while it
 * finds something, for processes forked during a scan. Linux only; elsewhere it finds nothing.
 */
export const KILL_SCRIPT = `pat=""; for n in "$@"; do case "$n" in *[!a-z0-9-]*) exit 2;; esac; pat="$pat -e ${EXEC_ENV}=$n"; done
for round in 1 2 3 4 5; do
  pids=$(grep -lsF $pat /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\\([0-9]*\\)/environ$|\\1|p')
  [ -z "$pids" ] && exit 0
  kill -KILL $pids 2>/dev/null
done`;

/** A fresh marker: unguessable, so a command's own output cannot fake an exit status. */
export function newNonce(): string {
  return `sremote-exit-${randomBytes(12).toString("hex")}`;
}

/**
 * Builds the spec's §4 recipe: `/bin/sh -c <script>` where the script runs the quoted argv
 * (with `cd`/`env` from core's {@link shCommand}) in a subshell — recorded under `nonce`
 * when `input.record` is given — stdin from the uploaded file or `/dev/null`, then prints
 * `\n<nonce> <status>\n` on stderr. NEWT does not report
 * exit statuses; the marker does, and its absence means the command was killed or never ran.
 */
export function wrapCommand(input: WrapperInput, nonce = newNonce()): WrappedCommand {
  // The nonce also goes into the environment, which every descendant inherits: that is how
  // a cancelled command and all it started are found again (see KILL_SCRIPT).
  const inner = shCommand(input.argv, { cwd: input.cwd, env: { ...input.env, [EXEC_ENV]: nonce } });
  const source = input.stdinFile === undefined ? "/dev/null" : shQuote(input.stdinFile);
  const cleanup = input.stdinFile === undefined ? "" : `/bin/rm -f -- ${shQuote(input.stdinFile)}; `;
  const run = input.record
    ? recordedRun(inner, source, { ...input.record, nonce })
    : `( ${inner} ) < ${source}; sremote_rc=$?`;
  const script = `${run}; ${cleanup}printf '\\n%s %d\\n' ${nonce} "$sremote_rc" >&2`;
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
