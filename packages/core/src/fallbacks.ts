import { randomBytes } from "node:crypto";
import type { ExecOptions, ExecResult } from "./connector.js";
import { type Deadline, deadline } from "./deadline.js";
import { ConnectorError, hasErrorCode } from "./errors.js";
import { defaultLayout, posixJoin } from "./layout.js";

/**
 * What {@link defineConnector} supplies when a transport lacks a primitive: each is built
 * from the transport's `exec` (and `putFile`), with portable tools only (`/bin/sh`,
 * `/bin/pwd`, `/bin/rm`, `/bin/mkdir`).
 */
export interface FallbackTransport {
  readonly name: string;
  exec(argv: readonly string[], options: ExecOptions, dl: Deadline): Promise<ExecResult>;
  /** Writes a file in a private (0700) folder; its mode need not be set. */
  putTempFile(path: string, data: Uint8Array, dl: Deadline): Promise<void>;
  homeDir(dl: Deadline): Promise<string>;
  /** The folder for stdin files, when the connector has one configured. */
  readonly tempDir: string | undefined;
  /** The owner's close: cleanup after a failure stops there. */
  readonly closeSignal: AbortSignal;
}

/** Bound on best-effort cleanup commands (removing a stdin file after a failure). */
const CLEANUP_TIMEOUT_MS = 60_000;
/** Bytes of paths given to one `rm` (far below any ARG_MAX). */
const RM_BATCH_BYTES = 64 * 1024;

/** Runs the command with stdin from the file in `$0`, removes the file, keeps the status. */
const STDIN_SCRIPT = '"$@" < "$0"; sremote_rc=$?; /bin/rm -f -- "$0"; exit "$sremote_rc"';

function oneLine(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

/** `homeDir` through `exec`: the folder `cd` goes to (else the command's own), physically. */
export async function homeDirByCommand(t: FallbackTransport, dl: Deadline): Promise<string> {
  const r = await t.exec(["/bin/sh", "-c", "cd 2>/dev/null; exec /bin/pwd"], {}, dl);
  const home = r.stdout.replace(/[\r\n]+$/, "");
  if (r.exitCode !== 0 || !home.startsWith("/") || home.includes("\n")) {
    throw new ConnectorError(
      "COMMAND_FAILED",
      t.name,
      `/bin/pwd did not print a home folder: ${oneLine(r.stderr) || JSON.stringify(r.stdout)}`,
    );
  }
  return home;
}

/** Deletes files with `rm -f --` (a missing file is success), as few commands as the paths allow. */
export async function deleteByCommand(t: FallbackTransport, paths: readonly string[], dl: Deadline): Promise<void> {
  let batch: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await t.exec(["/bin/rm", "-f", "--", ...batch], {}, dl);
    if (r.exitCode !== 0) {
      const which = batch.length === 1 ? batch[0] : `${batch.length} files`;
      throw new ConnectorError(
        /permission denied|not permitted/i.test(r.stderr) ? "PERMISSION_DENIED" : "REMOTE_IO",
        t.name,
        `cannot delete ${which}: ${oneLine(r.stderr) || `rm exited with ${r.exitCode}`}`,
        { details: { paths: [...batch], exitCode: r.exitCode } },
      );
    }
    batch = [];
    bytes = 0;
  };
  for (const path of paths) {
    if (bytes + path.length > RM_BATCH_BYTES) await flush();
    batch.push(path);
    bytes += path.length + 1;
  }
  await flush();
}

/** Uploads into the temp folder, creating it (0700) when it is missing. */
async function uploadIntoTemp(t: FallbackTransport, path: string, dir: string, data: Uint8Array, dl: Deadline) {
  try {
    await t.putTempFile(path, data, dl);
    return;
  } catch (err) {
    if (!hasErrorCode(err, "FILE_NOT_FOUND")) throw err;
  }
  const r = await t.exec(["/bin/mkdir", "-p", "-m", "700", dir], {}, dl);
  if (r.exitCode !== 0) {
    throw new ConnectorError("REMOTE_IO", t.name, `cannot create ${dir}: ${oneLine(r.stderr)}`, { details: { dir } });
  }
  await t.putTempFile(path, data, dl);
}

/**
 * `exec` with `stdin` for a transport that cannot stream it: the bytes go to a private file
 * in the temp folder (`~/.sremote/tmp` unless configured), the command reads it and the
 * wrapper deletes it; after any failure it is deleted here (best effort), so nothing is
 * left behind. A command ended by a signal reports `128 + n` through the wrapper's shell.
 */
export async function execWithStdinFile(
  t: FallbackTransport,
  argv: readonly string[],
  options: ExecOptions,
  stdin: Uint8Array | string,
  dl: Deadline,
): Promise<ExecResult> {
  const bytes = typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin;
  const dir = t.tempDir ?? defaultLayout(await t.homeDir(dl)).tmpDir;
  const file = posixJoin(dir, `stdin-${randomBytes(16).toString("hex")}.in`);
  try {
    await uploadIntoTemp(t, file, dir, bytes, dl);
    return await t.exec(["/bin/sh", "-c", STDIN_SCRIPT, file, ...argv], { ...options, stdin: undefined }, dl);
  } catch (err) {
    await removeQuietly(t, file);
    throw err;
  }
}

async function removeQuietly(t: FallbackTransport, path: string): Promise<void> {
  if (t.closeSignal.aborted) return;
  const dl = deadline({ timeoutMs: CLEANUP_TIMEOUT_MS }, t.closeSignal);
  try {
    await deleteByCommand(t, [path], dl);
  } catch {
    // best effort
  } finally {
    dl.dispose();
  }
}
