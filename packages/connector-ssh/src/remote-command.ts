import { Readable } from "node:stream";
import { shCommand, shQuote } from "@sremote/core";

/** The line every command prints first on stdout, so the connector can end it later. */
export const PID_MARKER = "SREMOTE_PID=";
const MARKER = Buffer.from(PID_MARKER);
/** Bytes of stdout searched for the marker before giving up (login scripts may print first). */
const MARKER_SEARCH_LIMIT = 64 * 1024;

/**
 * The command line sent to sshd, which runs it with the user's login shell (`$SHELL -c`):
 *
 *     echo SREMOTE_PID=$$; cd DIR && exec ARGV…            (or: env K=V ARGV…)
 *     echo SREMOTE_PID=$$; exec "${SHELL:-/bin/sh}" -l -c 'cd DIR && exec ARGV…'   (loginEnv)
 *
 * Every argv element, the folder and each value are quoted by core's `shCommand`; with
 * `loginEnv` the whole inner command is quoted once more for the login shell. `$$` is the
 * shell sshd started, which sshd made a session (and process-group) leader, so the PID is
 * also the group to kill. The login shell must be POSIX-like (bash, zsh, ksh, dash, sh).
 */
export function remoteCommandLine(
  argv: readonly string[],
  options: {
    cwd?: string | undefined;
    env?: Readonly<Record<string, string>> | undefined;
    loginEnv?: boolean | undefined;
  } = {},
): string {
  const inner = shCommand(argv, { cwd: options.cwd, env: options.env });
  const body = options.loginEnv ? `exec "\${SHELL:-/bin/sh}" -l -c ${shQuote(inner)}` : inner;
  return `echo ${PID_MARKER}$$; ${body}`;
}

/**
 * A shell command that sends `signal` to the process group of `pid` (falling back to the
 * group `ps` reports, e.g. under a `ForceCommand` wrapper, then to the process alone).
 */
export function killCommandLine(pid: number, signal: string): string {
  if (!Number.isInteger(pid) || pid <= 1) throw new RangeError(`bad pid ${pid}`);
  const sig = signal.replace(/^SIG/, "");
  if (!/^[A-Z0-9]+$/.test(sig)) throw new RangeError(`bad signal ${signal}`);
  return (
    `kill -s ${sig} -- -${pid} 2>/dev/null || ` +
    `{ g=$(ps -o pgid= -p ${pid} 2>/dev/null | tr -d ' '); [ -n "$g" ] && [ "$g" -gt 1 ] && kill -s ${sig} -- -"$g"; } 2>/dev/null || ` +
    `kill -s ${sig} ${pid} 2>/dev/null; true`
  );
}

/** Where the marker line is in `buf`: its PID, start and the index after its newline. */
export function findPidMarker(buf: Buffer): { pid: number; start: number; end: number } | undefined {
  let from = 0;
  for (;;) {
    const start = buf.indexOf(MARKER, from);
    if (start < 0) return undefined;
    if (start === 0 || buf[start - 1] === 0x0a) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) return undefined;
      const text = buf.subarray(start + MARKER.length, nl).toString("latin1");
      if (/^\d+$/.test(text)) return { pid: Number(text), start, end: nl + 1 };
    }
    from = start + 1;
  }
}

/** Collects a command's stdout and finds the PID marker in it as early as possible. */
export class PidScanner {
  private head: Buffer = Buffer.alloc(0);
  private readonly chunks: Buffer[] = [];
  private found: { pid: number; start: number; end: number } | undefined;
  private done = false;

  constructor(private readonly onPid: (pid: number | undefined) => void) {}

  /** Feeds stdout bytes; calls `onPid` once the marker (or the search limit) was reached. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    if (this.done) return;
    this.head = this.head.length === 0 ? chunk : Buffer.concat([this.head, chunk]);
    this.found = findPidMarker(this.head);
    if (this.found) {
      this.done = true;
      this.onPid(this.found.pid);
    } else if (this.head.length > MARKER_SEARCH_LIMIT) {
      this.done = true;
      this.onPid(undefined);
    }
  }

  /** stdout ended: the bytes without the marker line. */
  finish(): Buffer {
    if (!this.done) {
      this.done = true;
      this.onPid(undefined);
    }
    const all = Buffer.concat(this.chunks);
    if (!this.found) return all;
    return Buffer.concat([all.subarray(0, this.found.start), all.subarray(this.found.end)]);
  }
}

/** What {@link takePidMarker} found. */
export interface TakenMarker {
  pid: number | undefined;
  /** Set when stdout ended before the marker: the bytes it carried (the stream is spent). */
  ended?: Readable | undefined;
}

/**
 * Reads `stream` (in paused mode) up to and including the PID marker line, then puts
 * back whatever came with it or before it, so the caller hands on the very same stream
 * with nothing consumed but the marker: no extra stream, no copy on the data path.
 */
export function takePidMarker(stream: Readable): Promise<TakenMarker> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: TakenMarker, rest: Buffer | undefined) => {
      if (settled) return;
      settled = true;
      stream.off("readable", onReadable);
      stream.off("end", onEnd);
      stream.off("close", onEnd);
      if (rest && rest.length > 0) stream.unshift(rest);
      resolve(result);
    };
    const onReadable = () => {
      for (;;) {
        const chunk = stream.read() as Buffer | null;
        if (chunk === null) return;
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        const found = findPidMarker(buffered);
        if (found) {
          finish({ pid: found.pid }, Buffer.concat([buffered.subarray(0, found.start), buffered.subarray(found.end)]));
          return;
        }
        if (buffered.length > MARKER_SEARCH_LIMIT) {
          finish({ pid: undefined }, buffered);
          return;
        }
      }
    };
    const onEnd = () =>
      finish({ pid: undefined, ended: Readable.from(buffered.length > 0 ? [buffered] : []) }, undefined);
    stream.on("readable", onReadable);
    stream.on("end", onEnd);
    stream.on("close", onEnd);
  });
}
