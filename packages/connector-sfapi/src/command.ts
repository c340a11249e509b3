import { randomBytes } from "node:crypto";
import { type RecordOptions, recordedRun, shCommand, shQuote } from "@sremote/core";

/** A file operation that rides along with a command: `chmod` after an upload, or `rm -f`. */
export type SideStep = { kind: "chmod"; path: string; mode: number } | { kind: "rm"; paths: readonly string[] };

/** Everything needed to build one wrapped command line. */
export interface WrapperInput {
  argv: readonly string[];
  cwd?: string | undefined;
  env?: Readonly<Record<string, string>> | undefined;
  loginEnv?: boolean | undefined;
  /** Steps run before the command, each reported separately in the marker. */
  steps?: readonly SideStep[] | undefined;
  /**
   * Run at most once for the nonce, with start and exit markers (core's `recordedRun`), so
   * that an ambiguous failure of the POST can be resolved by asking.
   */
  record?: Omit<RecordOptions, "nonce"> | undefined;
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

function stepCommand(step: SideStep): string {
  return step.kind === "chmod"
    ? `/bin/chmod ${step.mode.toString(8).padStart(4, "0")} -- ${shQuote(step.path)}`
    : `/bin/rm -f -- ${step.paths.map(shQuote).join(" ")}`;
}

/**
 * `/bin/sh -c <script>`: SFAPI does not run the executable through a shell (spec §3.1),
 * so the shell is explicit. The script first runs the side steps (noting which failed and
 * the first failure's message), then the quoted argv (with `cd`/`env` from core's
 * {@link shCommand}) in a subshell with stdin from `/dev/null`, and prints
 * `\n<nonce> <status>[ <failed step>…]|<message>\n` on stderr: the real exit status even
 * when the API's `exit_code` is missing, and its absence means the command was killed.
 */
export function wrapCommand(input: WrapperInput, nonce = newNonce()): WrappedCommand {
  const inner = shCommand(input.argv, { cwd: input.cwd, env: input.env });
  const steps = (input.steps ?? [])
    .map(
      (s, i) =>
        `if ! sremote_e=$(${stepCommand(s)} 2>&1); then sremote_bad="$sremote_bad ${i}"; sremote_msg="\${sremote_msg:-$sremote_e}"; fi; `,
    )
    .join("");
  const pre = steps === "" ? "" : `sremote_bad=""; sremote_msg=""; ${steps}`;
  const report =
    steps === ""
      ? `printf '\\n%s %d|\\n' ${nonce} "$sremote_rc" >&2`
      : `printf '\\n%s %d%s|%s\\n' ${nonce} "$sremote_rc" "$sremote_bad" "$(printf %s "$sremote_msg" | tr '\\n' ' ')" >&2`;
  const run = input.record
    ? recordedRun(inner, "/dev/null", { ...input.record, nonce })
    : `( ${inner} ) < /dev/null; sremote_rc=$?`;
  const script = `${pre}${run}; ${report}`;
  return { executable: `/bin/sh ${input.loginEnv ? "-lc" : "-c"} ${shQuote(script)}`, nonce };
}

/** What {@link parseMarker} found. */
export type MarkerResult =
  | { found: true; exitCode: number; stderr: string; failedSteps: number[]; stepMessage: string }
  | { found: false; stderr: string };

/**
 * Takes the exit marker out of a command's stderr (its last occurrence: a background child
 * may write after it), giving back stderr exactly as the command wrote it.
 */
export function parseMarker(stderr: string, nonce: string): MarkerResult {
  const needle = `\n${nonce} `;
  const at = stderr.lastIndexOf(needle);
  if (at < 0) return { found: false, stderr };
  const rest = stderr.slice(at + needle.length);
  const m = /^(\d{1,3})((?: \d+)*)\|([^\n]*)\n/.exec(rest);
  if (!m) return { found: false, stderr };
  return {
    found: true,
    exitCode: Number(m[1]),
    failedSteps: (m[2] ?? "")
      .split(" ")
      .filter((s) => s !== "")
      .map(Number),
    stepMessage: (m[3] ?? "").trim(),
    stderr: stderr.slice(0, at) + rest.slice(m[0].length),
  };
}
