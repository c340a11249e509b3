import { randomBytes } from "node:crypto";
import { ConnectorError, isSremoteError } from "@sremote/core";
import type { OpenMode, SFTPWrapper } from "ssh2";
import type { Ssh2Connection } from "./connection.js";

// Whole-file SFTP operations on one connection's SFTP session, with SFTP status codes
// mapped to connector errors and a dropped connection reported as its loss.

/** What ssh2 passes to SFTP callbacks: an Error with the SFTP status code. */
type SftpError = Error & { code?: number };

const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
/** Bytes per SFTP read/write request; ssh2 splits further to the server's limits. */
const CHUNK = 256 * 1024;

function sftpError(err: SftpError, what: string, path: string, conn: Ssh2Connection): ConnectorError {
  if (conn.endError) return conn.endError;
  const details = { path, sftpCode: err.code };
  if (err.code === SFTP_NO_SUCH_FILE) {
    return new ConnectorError("FILE_NOT_FOUND", "ssh", `${what} ${path}: no such file or folder`, {
      cause: err,
      details,
    });
  }
  if (err.code === SFTP_PERMISSION_DENIED) {
    return new ConnectorError("PERMISSION_DENIED", "ssh", `${what} ${path}: permission denied`, {
      cause: err,
      details,
    });
  }
  return new ConnectorError("REMOTE_IO", "ssh", `${what} ${path}: ${err.message}`, { cause: err, details });
}

export function call<T>(
  conn: Ssh2Connection,
  what: string,
  path: string,
  fn: (cb: (err: SftpError | undefined | null, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const unsubscribe = conn.onLost((e) => reject(e));
    try {
      fn((err, value) => {
        unsubscribe();
        if (err) reject(sftpError(err, what, path, conn));
        else resolve(value);
      });
    } catch (err) {
      unsubscribe();
      reject(conn.endError ?? new ConnectorError("REMOTE_IO", "ssh", `${what} ${path}: ${(err as Error).message}`));
    }
  });
}

/** Writes `data` to an open handle: mode first (an existing file keeps its own on open), then the bytes. */
async function fillHandle(
  conn: Ssh2Connection,
  sftp: SFTPWrapper,
  handle: Buffer,
  path: string,
  data: Uint8Array,
  mode: number,
  signal: AbortSignal,
): Promise<void> {
  await call<void>(conn, "chmod", path, (cb) => sftp.fchmod(handle, mode, (err) => cb(err, undefined)));
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const writes: Promise<void>[] = [];
  for (let off = 0; off < buf.length; off += CHUNK) {
    const len = Math.min(CHUNK, buf.length - off);
    writes.push(
      call<void>(conn, "write", path, (cb) => sftp.write(handle, buf, off, len, off, (err) => cb(err, undefined))),
    );
    if (writes.length >= 8) await Promise.all(writes.splice(0));
    if (signal.aborted) {
      // Writes still in flight reject once the caller closes and removes the file: settle
      // them here, or each becomes an unhandled rejection.
      await Promise.allSettled(writes);
      throw signal.reason;
    }
  }
  await Promise.all(writes);
}

async function openForWrite(conn: Ssh2Connection, sftp: SFTPWrapper, path: string, flags: OpenMode, mode: number) {
  try {
    return await call<Buffer>(conn, "write", path, (cb) => sftp.open(path, flags, { mode }, cb));
  } catch (err) {
    if (isSremoteError(err) && err.code === "FILE_NOT_FOUND") {
      throw new ConnectorError("FILE_NOT_FOUND", "ssh", `write ${path}: its folder does not exist`, {
        cause: err,
        details: { path },
      });
    }
    throw err;
  }
}

/**
 * Writes a whole file so that readers see the old content or the new, never a mix: a
 * temporary file beside it (created exclusively, mode set before any byte), then OpenSSH's
 * `posix-rename` over the target — a running `interpreter.sh` being replaced keeps reading
 * its old copy. Servers without that extension, or folders where we may not create files,
 * get an in-place write. The temporary file is removed on failure.
 */
export async function writeAtomically(
  conn: Ssh2Connection,
  sftp: SFTPWrapper,
  path: string,
  data: Uint8Array,
  mode: number,
  signal: AbortSignal,
): Promise<void> {
  const slash = path.lastIndexOf("/");
  const temp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.sremote-${randomBytes(6).toString("hex")}.tmp`;
  const canRename =
    (sftp as unknown as { _extensions?: Record<string, string> })._extensions?.["posix-rename@openssh.com"] === "1";
  let handle: Buffer | undefined;
  if (canRename) {
    try {
      handle = await openForWrite(conn, sftp, temp, "wx", mode);
    } catch (err) {
      if (!(isSremoteError(err) && err.code === "PERMISSION_DENIED")) throw err;
    }
  }
  if (!handle) {
    const direct = await openForWrite(conn, sftp, path, "w", mode);
    try {
      await fillHandle(conn, sftp, direct, path, data, mode, signal);
    } finally {
      await closeHandle(conn, sftp, direct, path).catch(() => {});
    }
    return;
  }
  try {
    try {
      await fillHandle(conn, sftp, handle, path, data, mode, signal);
    } finally {
      await closeHandle(conn, sftp, handle, path);
    }
    await call<void>(conn, "rename", path, (cb) => sftp.ext_openssh_rename(temp, path, (err) => cb(err, undefined)));
  } catch (err) {
    if (conn.alive) sftp.unlink(temp, () => {});
    throw err;
  }
}

async function closeHandle(conn: Ssh2Connection, sftp: SFTPWrapper, handle: Buffer, path: string): Promise<void> {
  await call<void>(conn, "close", path, (cb) => sftp.close(handle, (err) => cb(err, undefined)));
}

/** Reads a whole file: its size first, then CHUNK-sized reads, growing if it grew meanwhile. */
export async function readWhole(conn: Ssh2Connection, sftp: SFTPWrapper, path: string): Promise<Uint8Array> {
  const handle = await call<Buffer>(conn, "read", path, (cb) => sftp.open(path, "r", {}, cb));
  try {
    const stats = await call<{ size: number }>(conn, "read", path, (cb) => sftp.fstat(handle, cb));
    let buf = Buffer.allocUnsafe(Math.max(stats.size, 1));
    let off = 0;
    for (;;) {
      if (off === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, off);
        buf = bigger;
      }
      const want = Math.min(buf.length - off, CHUNK);
      const n = await call<number>(conn, "read", path, (cb) => sftp.read(handle, buf, off, want, off, cb));
      if (n === 0) break;
      off += n;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, off);
  } finally {
    await closeHandle(conn, sftp, handle, path).catch(() => {});
  }
}

/** Deletes a file; a missing one is success. */
export async function unlinkQuietly(conn: Ssh2Connection, sftp: SFTPWrapper, path: string): Promise<void> {
  try {
    await call<void>(conn, "delete", path, (cb) => sftp.unlink(path, (err) => cb(err, undefined)));
  } catch (err) {
    if (isSremoteError(err) && err.code === "FILE_NOT_FOUND") return;
    throw err;
  }
}
