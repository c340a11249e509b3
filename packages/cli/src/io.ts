/** Where a command writes; tests pass buffers. */
export interface CliIO {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  /** Progress and diagnostics; a live progress display is drawn when it is a terminal. */
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  /** Where a confirmation is read from (`sremote uninstall`); absent or not a terminal: never asked. */
  stdin?: (NodeJS.ReadableStream & { isTTY?: boolean }) | undefined;
}

/**
 * Wraps `io` so that none of `secrets` is ever written: each occurrence becomes `***`.
 * A safety net — secrets are not meant to reach any message in the first place.
 */
export function redactingIO(io: CliIO, secrets: readonly string[]): CliIO {
  const hidden = secrets.filter((s) => s.length > 0);
  if (hidden.length === 0) return io;
  const clean = (text: string) => hidden.reduce((t, s) => t.split(s).join("***"), text);
  return {
    stdout: { write: (t: string) => io.stdout.write(clean(t)), isTTY: io.stdout.isTTY },
    stderr: { write: (t: string) => io.stderr.write(clean(t)), isTTY: io.stderr.isTTY, columns: io.stderr.columns },
    stdin: io.stdin,
  };
}
