import { randomBytes } from "node:crypto";
import { ConnectorError, shQuote } from "@sremote/core";
import { findPidMarker, PID_MARKER } from "../remote-command.js";

// Whole-file operations as shell scripts run over the master: each prints the PID marker
// first (login scripts may print before it; everything up to the marker is dropped), then
// answers with an exit status the transport maps to connector errors.

const NOT_FOUND = 2;
const DENIED = 13;
const IS_FOLDER = 21;
const SHORT_WRITE = 5;

/** `cat`s a file; missing → 2, unreadable → 13, a folder → 21. */
export function readScript(path: string): string {
  return (
    `echo ${PID_MARKER}$$; p=${shQuote(path)}; ` +
    `if [ -d "$p" ]; then exit ${IS_FOLDER}; fi; ` +
    `if [ ! -e "$p" ]; then exit ${NOT_FOUND}; fi; ` +
    `if [ ! -r "$p" ]; then exit ${DENIED}; fi; exec cat -- "$p"`
  );
}

/**
 * Writes stdin to `path` so that readers see the old content or the new, never a mix: a
 * temporary file beside it (created exclusively, mode set before any byte), its size
 * checked (a cut connection must not publish half a file), then `mv` over the target.
 * Where no file may be created in the folder, it writes in place, as the SFTP path does.
 */
export function writeScript(path: string, size: number, mode: number): string {
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : slash === 0 ? "/" : path.slice(0, slash);
  const temp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.sremote-${randomBytes(6).toString("hex")}.tmp`;
  const m = (mode & 0o7777).toString(8).padStart(4, "0");
  // Modes within 0666 are given by the umask at creation (no chmod process); others get a chmod.
  const byUmask = (mode & ~0o666) === 0;
  const umask = byUmask ? (~mode & 0o777).toString(8).padStart(4, "0") : "0077";
  const chmod = byUmask ? "" : `chmod ${m} "$t" && `;
  // Every external program is a process start: only cat, wc and mv (chmod for x bits). The
  // exclusive create uses `true`, not `:` — a failed redirection of a *special* built-in
  // makes dash exit.
  return (
    `echo ${PID_MARKER}$$; p=${shQuote(path)}; t=${shQuote(temp)}; ` +
    `[ -d ${shQuote(dir)} ] || exit ${NOT_FOUND}; [ -d "$p" ] && exit ${IS_FOLDER}; umask ${umask}; ` +
    `if { set -C; true > "$t"; } 2>/dev/null; then set +C; ` +
    `if ${chmod}cat > "$t" && n=$(wc -c < "$t") && [ $n -eq ${size} ] && mv -f -- "$t" "$p"; then exit 0; fi; ` +
    `rm -f -- "$t"; exit ${SHORT_WRITE}; fi; set +C; ` +
    `{ [ ! -e "$p" ] || [ -w "$p" ]; } || exit ${DENIED}; ` +
    `chmod ${m} "$p" 2>/dev/null; cat > "$p" || exit ${DENIED}; chmod ${m} "$p"`
  );
}

/** Removes a file; a missing one is success; a folder → 21. */
export function deleteScript(path: string): string {
  return (
    `echo ${PID_MARKER}$$; p=${shQuote(path)}; ` +
    `if [ -d "$p" ] && [ ! -L "$p" ]; then exit ${IS_FOLDER}; fi; rm -f -- "$p"`
  );
}

/** The login folder, symlinks resolved (as SFTP's realpath "."). */
export function homeScript(): string {
  return `echo ${PID_MARKER}$$; pwd -P`;
}

/** stdout after the marker line. */
export function afterMarker(stdout: Buffer): Buffer {
  const found = findPidMarker(stdout);
  return found ? stdout.subarray(found.end) : stdout;
}

/** Maps a file script's exit status to the operation's error (undefined for success). */
export function fileError(
  what: "read" | "write" | "delete",
  path: string,
  status: number,
  stderr: string,
): ConnectorError | undefined {
  if (status === 0) return undefined;
  const details = { path, status, stderr: stderr.trim().slice(-300) };
  if (status === NOT_FOUND) {
    return new ConnectorError(
      "FILE_NOT_FOUND",
      "ssh",
      what === "write" ? `write ${path}: its folder does not exist` : `${what} ${path}: no such file or folder`,
      { details },
    );
  }
  if (status === DENIED || /Permission denied|Operation not permitted/i.test(stderr)) {
    return new ConnectorError("PERMISSION_DENIED", "ssh", `${what} ${path}: permission denied`, { details });
  }
  if (status === IS_FOLDER) return new ConnectorError("REMOTE_IO", "ssh", `${what} ${path}: is a folder`, { details });
  if (status === SHORT_WRITE) {
    return new ConnectorError("REMOTE_IO", "ssh", `write ${path}: the file could not be written completely`, {
      details,
    });
  }
  return new ConnectorError("REMOTE_IO", "ssh", `${what} ${path} failed (status ${status}): ${details.stderr}`, {
    details,
  });
}
