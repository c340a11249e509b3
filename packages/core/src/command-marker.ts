import { randomBytes } from "node:crypto";
import { shQuote } from "./quoting.js";

/**
 * Start and exit markers for remote commands sent over at-least-once transports (REST
 * gateways that may answer 503 or drop the answer after the command ran). A command runs
 * inside {@link recordedRun}: it first claims its nonce by creating `<dir>/<nonce>/`
 * (atomic `mkdir`), records its output and, atomically, its exit status, so that a safe
 * second request ({@link markerQueryScript}) can later tell whether it ran, recover what it
 * printed, or fence the nonce so that a late delivery of the lost request runs nothing.
 * See docs/exactly-once.md.
 */

/** Name of the marker folder inside the remote temp folder. */
export const MARKER_DIR_NAME = "once";

/** Nonces are `sremote-` and 24 lower-case hex digits: safe in paths and shell words. */
const NONCE = /^sremote-[0-9a-f]{24}$/;

/** A fresh, unguessable command nonce (`sremote-` + 24 hex digits). */
export function newCommandNonce(): string {
  return `sremote-${randomBytes(12).toString("hex")}`;
}

/** True for a string {@link newCommandNonce} could have made. */
export function isCommandNonce(nonce: string): boolean {
  return NONCE.test(nonce);
}

function checkNonce(nonce: string): string {
  if (!isCommandNonce(nonce)) throw new TypeError(`not a command nonce: ${JSON.stringify(nonce)}`);
  return nonce;
}

/**
 * The marker folder as a shell word: `<tempDir>/once` when the connector has a temp folder
 * configured, else `"$HOME"/.cache/sremote/once` (expanded remotely: no round trip to learn
 * the home folder). Per user, on the shared home file system, so that every login node a
 * gateway may pick sees the same markers; outside `~/.sremote`, which the installer owns
 * and whose `tmp` folder clients keep empty between calls.
 */
export function markerDir(tempDir?: string): string {
  if (tempDir !== undefined) return shQuote(`${tempDir.replace(/\/+$/, "")}/${MARKER_DIR_NAME}`);
  return `"$HOME"/.cache/sremote/${MARKER_DIR_NAME}`;
}

/** The host name, without a process where Linux exposes it (`read` is a shell builtin). */
const HOST =
  '{ read -r sremote_h < /proc/sys/kernel/hostname; } 2>/dev/null && printf %s "$sremote_h" || uname -n 2>/dev/null';

/** What {@link recordedRun} needs. */
export interface RecordOptions {
  /** The command's nonce (from {@link newCommandNonce}). */
  nonce: string;
  /** The marker folder, a shell word (see {@link markerDir}). */
  dir: string;
  /** Markers no longer needed, handled before the command runs (see {@link MarkerLedger}). */
  cleanup?: MarkerCleanup | undefined;
}

/**
 * Markers a command removes before it runs: `remove`'s entirely (commands answered
 * normally), `shrink`'s down to a **tombstone** — the folder with only `rc` or `fenced` —
 * for nonces whose request met an ambiguous failure: the gateway may still deliver that
 * request late, and the tombstone makes it run nothing. Tombstones are swept after
 * {@link TOMBSTONE_MAX_AGE_MINUTES} by {@link markerCleanupScript}.
 */
export interface MarkerCleanup {
  remove: readonly string[];
  shrink: readonly string[];
}

/** Tombstones older than this (minutes) are removed: no gateway delivers a request that late. */
export const TOMBSTONE_MAX_AGE_MINUTES = 60;

function cleanupText(c: MarkerCleanup | undefined, d: string): string {
  const remove = (c?.remove ?? []).map(checkNonce);
  const shrink = (c?.shrink ?? []).map(checkNonce);
  let out = "";
  if (remove.length > 0) out += `/bin/rm -rf -- ${remove.map((n) => `${d}/${n}`).join(" ")} 2>/dev/null; `;
  if (shrink.length > 0) {
    out += `/bin/rm -f -- ${shrink.flatMap((n) => [`${d}/${n}/out`, `${d}/${n}/err`, `${d}/${n}/start`]).join(" ")} 2>/dev/null; `;
  }
  return out;
}

/**
 * Shell text that runs `inner` (a command list, run in a subshell with stdin from
 * `stdinSource`, a shell word) at most once for `nonce` and leaves its exit status in
 * `$sremote_rc`, its stdout and stderr on the shell's own, as if run directly:
 *
 * 1. `mkdir <dir>/<nonce>` claims the nonce (the start marker; it also holds `uname -n`
 *    and the shell's pid, so that a query can tell a killed command from a running one);
 * 2. the command runs with stdout and stderr into files there;
 * 3. its status is written to `rc.tmp` and renamed to `rc` (the exit marker, atomic);
 * 4. both outputs are printed.
 *
 * A second delivery of the same request finds the folder: it prints the recorded outputs
 * and status if there are some, else exits 0 without setting `$sremote_rc` and without
 * running anything (the connector sees no exit marker and asks). When the marker folder
 * cannot be created at all (read-only home), the command runs unrecorded.
 */
export function recordedRun(inner: string, stdinSource: string, options: RecordOptions): string {
  const n = checkNonce(options.nonce);
  const d = '"$sremote_d"';
  const rm = cleanupText(options.cleanup, d);
  const replay = `/bin/cat ${d}/${n}/out 2>/dev/null; /bin/cat ${d}/${n}/err >&2 2>/dev/null`;
  return [
    // umask 077: every folder created on the way is private, not only the last one.
    `sremote_d=${options.dir}; ${rm}[ -d ${d} ] || (umask 077 && /bin/mkdir -p ${d}) 2>/dev/null; `,
    `if /bin/mkdir ${d}/${n} 2>/dev/null; then `,
    `printf '%s %s\\n' "$(${HOST})" "$$" > ${d}/${n}/start; `,
    `( ${inner} ) < ${stdinSource} > ${d}/${n}/out 2> ${d}/${n}/err; sremote_rc=$?; `,
    `printf '%d\\n' "$sremote_rc" > ${d}/${n}/rc.tmp && /bin/mv -f ${d}/${n}/rc.tmp ${d}/${n}/rc; `,
    `${replay}; `,
    `elif [ -f ${d}/${n}/rc ]; then ${replay}; sremote_rc=$(/bin/cat ${d}/${n}/rc); `,
    `elif [ -e ${d}/${n} ]; then exit 0; `,
    `else ( ${inner} ) < ${stdinSource}; sremote_rc=$?; fi`,
  ].join("");
}

/** What a query found out about a nonce. */
export type MarkerState =
  /** It ran to its end: its status and outputs, as it printed them. */
  | { state: "done"; exitCode: number; stdout: string; stderr: string }
  /** It never started, and now never will (the nonce is fenced): safe to send again. */
  | { state: "not-run" }
  /** It started and has not ended (or ended on another host without a status). */
  | { state: "running" }
  /** It started on this host, its shell is gone, and it left no status: killed. */
  | { state: "died" }
  /** The markers could not be read or written (folder not writable): nothing can be said. */
  | { state: "unknown"; detail: string };

/**
 * A read-mostly shell script answering "did `nonce` run?" — safe to send any number of
 * times. If the nonce's folder is missing it creates it with a `fenced` file (so a late
 * delivery of the original request will not run it) and answers `not-run`. Its last stderr
 * line is `\n<queryNonce> <state>[ <status>]\n`; for `done`, stdout and the rest of stderr
 * are the command's recorded outputs. Read it with {@link parseMarkerQuery}.
 */
export function markerQueryScript(nonce: string, dir: string, queryNonce: string): string {
  const n = checkNonce(nonce);
  const q = checkNonce(queryNonce);
  const d = `"$sremote_d"/${n}`;
  const say = (s: string) => `printf '\\n%s %s\\n' ${q} "${s}" >&2`;
  return [
    `sremote_d=${dir}; `,
    `if [ -f ${d}/rc ]; then /bin/cat ${d}/out; /bin/cat ${d}/err >&2; ${say(`done $(/bin/cat ${d}/rc)`)}; `,
    `elif (umask 077 && /bin/mkdir -p "$sremote_d") 2>/dev/null && /bin/mkdir ${d} 2>/dev/null; then : > ${d}/fenced; ${say("not-run")}; `,
    `elif [ -f ${d}/fenced ]; then ${say("not-run")}; `,
    `elif [ -f ${d}/start ]; then set -- $(/bin/cat ${d}/start 2>/dev/null); `,
    `if [ "$1" = "$(${HOST})" ] && [ -n "$2" ] && ! kill -0 "$2" 2>/dev/null && [ ! -f ${d}/rc ]; then ${say("died")}; `,
    `else ${say("running")}; fi; `,
    `elif [ -d ${d} ]; then ${say("running")}; `,
    `else ${say("unknown")}; fi`,
  ].join("");
}

/**
 * Reads the answer of {@link markerQueryScript}. An answer without the query's own marker
 * (cut, or the shell failed) is `unknown`.
 */
export function parseMarkerQuery(stdout: string, stderr: string, queryNonce: string): MarkerState {
  const needle = `\n${queryNonce} `;
  const at = stderr.lastIndexOf(needle);
  if (at < 0) return { state: "unknown", detail: "the query printed no answer" };
  const line = stderr.slice(at + needle.length).split("\n")[0] ?? "";
  const [state, rc] = line.trim().split(/\s+/);
  switch (state) {
    case "done": {
      const exitCode = Number(rc);
      if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) {
        return { state: "unknown", detail: `unreadable exit status ${JSON.stringify(rc)}` };
      }
      return { state: "done", exitCode, stdout, stderr: stderr.slice(0, at) };
    }
    case "not-run":
    case "running":
    case "died":
      return { state };
    default:
      return { state: "unknown", detail: "the marker folder cannot be read or written" };
  }
}

/** Markers older than this (minutes) are swept by {@link markerCleanupScript}: no call lasts that long. */
export const MARKER_MAX_AGE_MINUTES = 24 * 60;

/**
 * A shell script (idempotent) run on close: it handles `cleanup` like a command's prefix;
 * turns the markers of `unsettled` nonces (commands whose fate was not known) into
 * tombstones if they have ended; removes tombstones older than
 * {@link TOMBSTONE_MAX_AGE_MINUTES} and any marker older than {@link MARKER_MAX_AGE_MINUTES}
 * (left by a client that died).
 */
export function markerCleanupScript(cleanup: MarkerCleanup, dir: string, unsettled: readonly string[] = []): string {
  const maybe = unsettled.map(checkNonce);
  return [
    `sremote_d=${dir}; [ -d "$sremote_d" ] || exit 0; `,
    cleanupText(cleanup, '"$sremote_d"'),
    maybe.length > 0
      ? `for n in ${maybe.join(" ")}; do if [ -f "$sremote_d/$n/rc" ]; then /bin/rm -f -- "$sremote_d/$n/out" "$sremote_d/$n/err" "$sremote_d/$n/start"; fi; done; `
      : "",
    // Tombstones: no `out` (never ran, or shrunk); their age is that of their last change.
    `for t in "$sremote_d"/sremote-*; do [ -d "$t" ] && [ ! -e "$t/out" ] && [ -n "$(find "$t" -maxdepth 0 -mmin +${TOMBSTONE_MAX_AGE_MINUTES} 2>/dev/null)" ] && /bin/rm -rf -- "$t"; done; `,
    `find "$sremote_d" -mindepth 1 -maxdepth 1 -name 'sremote-*' -mmin +${MARKER_MAX_AGE_MINUTES} -exec /bin/rm -rf -- {} + 2>/dev/null; `,
    "exit 0",
  ].join("");
}

/**
 * Nonces whose markers can go: each recorded command hands the ones it finds to the next
 * command it sends ({@link take}), which removes them (or shrinks them to tombstones)
 * before running; a command that did not run gives them back ({@link restore}). Whatever
 * is left is handled on close, with {@link markerCleanupScript}.
 */
export class MarkerLedger {
  /** nonce → remove entirely, or shrink to a tombstone. */
  readonly #done = new Map<string, "remove" | "shrink">();
  readonly #unsettled = new Set<string>();
  /** Most nonces handed to one command (keeps the command line short). */
  readonly #perCommand: number;

  constructor(perCommand = 64) {
    this.#perCommand = perCommand;
  }

  /** Nonces waiting for removal or shrinking. */
  get size(): number {
    return this.#done.size;
  }

  /** Notes that `nonce`'s command was answered normally: its markers can go entirely. */
  add(nonce: string): void {
    this.#done.set(checkNonce(nonce), "remove");
  }

  /** Notes that `nonce`'s request met an ambiguous failure: its markers shrink to a tombstone. */
  addTombstone(nonce: string): void {
    this.#done.set(checkNonce(nonce), "shrink");
  }

  /** Up to `max` nonces, taken out of the ledger: give them back if the command carrying them did not run. */
  take(max = this.#perCommand): MarkerCleanup {
    const remove: string[] = [];
    const shrink: string[] = [];
    for (const [n, how] of this.#done) {
      if (remove.length + shrink.length >= max) break;
      (how === "remove" ? remove : shrink).push(n);
    }
    for (const n of [...remove, ...shrink]) this.#done.delete(n);
    return { remove, shrink };
  }

  /** Gives back what a command did not get to handle. */
  restore(cleanup: MarkerCleanup): void {
    for (const n of cleanup.remove) if (!this.#done.has(n)) this.#done.set(n, "remove");
    for (const n of cleanup.shrink) this.#done.set(n, "shrink");
  }

  /** Notes a nonce whose command may still be running: shrunk on close only if it ended. */
  addUnsettled(nonce: string): void {
    this.#unsettled.add(checkNonce(nonce));
  }

  /** Nonces noted by {@link addUnsettled}, taken out of the ledger. */
  takeUnsettled(): string[] {
    const out = [...this.#unsettled];
    this.#unsettled.clear();
    return out;
  }

  /** Nonces of either kind waiting. */
  get pending(): number {
    return this.#done.size + this.#unsettled.size;
  }
}

const IDEMPOTENT_PROGRAMS = new Set(["pwd", "true", "cat", "mkdir", "rm", "chmod"]);

function programName(argv0: string): string | undefined {
  const m = /^(?:\/usr)?(?:\/bin\/)?([a-z]+)$/.exec(argv0);
  return m?.[1];
}

/**
 * True when running `argv` twice has the effect of running it once, by construction:
 * `pwd`, `true`, `cat`, `mkdir -p`, `rm -f`, `chmod <octal mode>` (as `/bin/x`,
 * `/usr/bin/x` or bare), and core's home-folder probe. Such commands need no markers:
 * a connector simply sends them again after an ambiguous failure. Anything else is not.
 */
export function isIdempotentCommand(argv: readonly string[]): boolean {
  const [first, ...args] = argv;
  if (first === undefined) return false;
  if (first === "/bin/sh" && args.length === 2 && args[0] === "-c" && args[1] === "cd 2>/dev/null; exec /bin/pwd") {
    return true;
  }
  const prog = programName(first);
  if (prog === undefined || !IDEMPOTENT_PROGRAMS.has(prog)) return false;
  const flags: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i] as string;
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") break;
    flags.push(a);
  }
  const has = (letter: string) => flags.some((f) => /^-[a-zA-Z]+$/.test(f) && f.includes(letter));
  switch (prog) {
    case "pwd":
      return flags.every((f) => f === "-L" || f === "-P") && i === args.length;
    case "true":
      return true;
    case "cat":
      return flags.length === 0;
    case "mkdir": {
      // -p, and -m with its mode as the next word.
      let p = false;
      for (let k = 0; k < args.length; k++) {
        const a = args[k] as string;
        if (a === "--" || !a.startsWith("-")) break;
        if (a === "-m") k++;
        else if (/^-p+$/.test(a)) p = true;
        else return false;
      }
      return p;
    }
    case "rm":
      return has("f") && flags.every((f) => /^-[frR]+$/.test(f));
    case "chmod":
      return flags.every((f) => f === "-R") && /^[0-7]{3,4}$/.test(args[i] ?? "");
    default:
      return false;
  }
}
