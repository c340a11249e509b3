import { randomBytes } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ConnectorError, type Deadline } from "@sremote/core";

const NAME = "local";

/** Maps a Node fs error to the connector error a caller can act on. */
export function fsError(err: unknown, op: string, path: string): ConnectorError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = err instanceof Error ? err.message : String(err);
  const details = { path, op, errno: code };
  if (code === "ENOENT" || code === "ENOTDIR") {
    return new ConnectorError("FILE_NOT_FOUND", NAME, `${op} ${path}: no such file or folder`, {
      cause: err,
      details,
    });
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new ConnectorError("PERMISSION_DENIED", NAME, `${op} ${path}: permission denied`, { cause: err, details });
  }
  return new ConnectorError("REMOTE_IO", NAME, `${op} ${path}: ${reason}`, { cause: err, details });
}

/**
 * Writes `data` to `path` atomically: a private temporary file in the same folder, its mode
 * set with chmod (so the umask does not matter), then renamed over `path`. A reader sees the
 * old file or the whole new one, never a part. The temporary file is removed on any failure.
 */
export async function writeFileAtomic(path: string, data: Uint8Array, mode: number, dl: Deadline): Promise<void> {
  // The name stays well under NAME_MAX (255) whatever the target's length.
  const stem = basename(path).slice(0, 100);
  const tmp = join(dirname(path), `.${stem}.${randomBytes(6).toString("hex")}.sremote-tmp`);
  let created = false;
  try {
    // O_EXCL: never write through a file (or symlink) someone else put at the temporary name.
    const handle = await open(tmp, "wx", 0o600);
    created = true;
    try {
      await handle.writeFile(data, { signal: dl.signal });
      await handle.chmod(mode);
    } finally {
      await handle.close();
    }
    dl.throwIfDone(`putFile ${path}`);
    await rename(tmp, path);
    created = false;
  } catch (err) {
    if (created) await unlink(tmp).catch(() => {});
    if (dl.signal.aborted) throw dl.error(`putFile ${path}`);
    throw fsError(err, "putFile", path);
  }
}

/** Reads a whole file as bytes. */
export async function readWholeFile(path: string, dl: Deadline): Promise<Uint8Array> {
  try {
    const buf = await readFile(path, { signal: dl.signal });
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    if (dl.signal.aborted) throw dl.error(`getFile ${path}`);
    throw fsError(err, "getFile", path);
  }
}

/** Deletes a file; a file that is already gone is success. */
export async function deleteWholeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a parent is a plain file, so the file cannot exist either.
    if (code === "ENOENT" || code === "ENOTDIR") return;
    throw fsError(err, "deleteFile", path);
  }
}
