import { randomBytes } from "node:crypto";

/**
 * The system `ssh` exits 255 for its own failures, for a remote `exit 255` and for a remote
 * death by signal alike. Each command therefore runs inside a small POSIX-shell wrapper
 * that reports, behind a per-command nonce, first that the session opened and last the
 * command's real exit status — both on stderr, where {@link StatusScanner} takes them out
 * again, so the caller sees exactly the command's own bytes.
 */
export interface StatusWrapper {
  /** The line to send: `printf OPEN >&2; exec 3>&2 2>/dev/null; (exec 2>&3 3>&-; COMMAND); s=$?; printf STATUS >&3; exit $s`. */
  line: string;
  nonce: string;
}

/** Wraps one remote command line; `$$` inside `command` still names the shell sshd started. */
export function wrapWithStatus(command: string): StatusWrapper {
  const nonce = `SREMOTE-${randomBytes(9).toString("hex")}`;
  // The subshell (not `exec`) keeps the outer shell alive to report the status; the newline
  // after COMMAND keeps a trailing comment in it from swallowing the closing parenthesis.
  // The outer shell's own stderr goes to /dev/null (bash would print "Killed" for a child
  // killed by a signal) and the real one is kept on fd 3: the subshell takes it back before
  // COMMAND runs, the status line goes there at the end. (`exec` redirections, not
  // redirections of a compound command: dash loses the inner `2>&3` of the latter.)
  const line =
    `printf '%s:open\\n' ${nonce} >&2; exec 3>&2 2>/dev/null; (exec 2>&3 3>&-\n${command}\n); s=$?; ` +
    `printf '\\n%s:%d\\n' ${nonce} "$s" >&3; exit "$s"`;
  return { line, nonce };
}

/**
 * Scans a wrapped command's stderr for the wrapper's two lines and removes them, passing
 * every other byte on unchanged (bytes that might begin a marker are held back until the
 * next chunk or the end).
 */
export class StatusScanner {
  private pending: Buffer = Buffer.alloc(0);
  private readonly openLine: Buffer;
  private readonly statusPrefix: Buffer;
  /** True once the session opened (the wrapper started). */
  opened = false;
  /** The command's exit status, once the wrapper reported it. */
  status: number | undefined;

  constructor(
    nonce: string,
    private readonly onOpen: () => void = () => {},
  ) {
    this.openLine = Buffer.from(`${nonce}:open\n`);
    this.statusPrefix = Buffer.from(`\n${nonce}:`);
  }

  /** How many trailing bytes of `buf` could begin `marker` (held back until more arrives). */
  private static partial(buf: Buffer, marker: Buffer): number {
    for (let k = Math.min(buf.length, marker.length - 1); k > 0; k--) {
      if (buf.subarray(buf.length - k).equals(marker.subarray(0, k))) return k;
    }
    return 0;
  }

  /** Feeds stderr bytes; returns the bytes to pass on. */
  push(chunk: Buffer): Buffer {
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (!this.opened) {
      const at = buf.indexOf(this.openLine);
      if (at >= 0) {
        this.opened = true;
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + this.openLine.length)]);
        this.onOpen();
      }
    }
    if (this.opened && this.status === undefined) {
      const at = buf.indexOf(this.statusPrefix);
      if (at >= 0) {
        const nl = buf.indexOf(0x0a, at + this.statusPrefix.length);
        if (nl >= 0) {
          const text = buf.subarray(at + this.statusPrefix.length, nl).toString("latin1");
          if (/^\d+$/.test(text)) {
            this.status = Number(text);
            buf = Buffer.concat([buf.subarray(0, at), buf.subarray(nl + 1)]);
          }
        } else {
          // The marker's end has not arrived: hold back from its start.
          this.pending = buf.subarray(at);
          return buf.subarray(0, at);
        }
      }
    }
    if (this.status !== undefined) {
      this.pending = Buffer.alloc(0);
      return buf;
    }
    const keep = StatusScanner.partial(buf, this.opened ? this.statusPrefix : this.openLine);
    this.pending = keep === 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(buf.length - keep));
    return buf.subarray(0, buf.length - keep);
  }

  /** stderr ended: whatever was held back. */
  end(): Buffer {
    const rest = this.pending;
    this.pending = Buffer.alloc(0);
    return rest;
  }
}
