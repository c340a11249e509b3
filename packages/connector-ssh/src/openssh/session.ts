import { spawn } from "node:child_process";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectorError, openSocketStdout } from "@sremote/core";
import type { ChannelEnd, CommandChannel } from "../transport.js";
import { type SshArgsInput, sessionArgs } from "./args.js";
import { isMuxFailure, isSessionRefusal, tail } from "./errors.js";
import { type OpensshMaster, quietEnv } from "./master.js";
import { StatusScanner, wrapWithStatus } from "./status.js";

/** The master refused the session (the server's MaxSessions): nothing ran, queue again. */
export class SessionRefused extends Error {}

/** How long a session that ended without its status waits to learn whether the master died too. */
const MASTER_DEATH_GRACE_MS = 300;

/**
 * Runs `command` as one `ssh` process multiplexed over `master`, wrapped so that its real
 * exit status comes back ({@link wrapWithStatus}). Resolves once the remote shell started
 * (the wrapper's first stderr line), so a refused or failed open is known to have run nothing.
 */
export async function openSession(
  sshPath: string,
  args: SshArgsInput,
  master: OpensshMaster,
  command: string,
  /** Called once an opened session has ended (frees its slot). */
  onClosed: () => void,
  /** The caller reads stdout as it comes (a spawned process): give it `readStdoutInto`. */
  stream = false,
): Promise<CommandChannel> {
  const wrapped = wrapWithStatus(command);
  // For a stream, stdout as a socket read with `onread`, so a reader can have a large message
  // land in its own buffer (core's openSocketStdout); a plain pipe when the pair cannot be
  // made, and for commands whose output is collected (the pair costs ~1 ms, ~7 ms in a fresh
  // process).
  const pair = stream ? await openSocketStdout().catch(() => undefined) : undefined;
  const child = spawn(sshPath, sessionArgs(args, master.socket, wrapped.line), {
    stdio: ["pipe", pair?.childEnd ?? "pipe", "pipe"],
    env: quietEnv(),
  });
  pair?.childEnd.destroy(); // ssh has its own copy (and hands it to the master)
  const stdin = child.stdin!;
  // Node discards unread output of a child that exited ("flushStdio") before anyone
  // listened: a quick command could end between the open marker and the caller's first
  // read. Piping at once keeps every byte (with backpressure) for a late reader. (The socket
  // is not the child's stream: Node never discards what it holds.)
  const stdout = pair?.stdout.stream ?? child.stdout!.pipe(new PassThrough());
  const stderrIn = child.stderr!;
  const stderr = new PassThrough();
  // Writes after the remote end closed raise EPIPE: the channel's end reports what happened.
  stdin.on("error", () => {});
  let rawTail = "";
  let openedResolve: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    openedResolve = resolve;
  });
  const scanner = new StatusScanner(wrapped.nonce, () => openedResolve());
  stderrIn.on("data", (chunk: Buffer) => {
    rawTail = (rawTail + chunk.toString("utf8")).slice(-2048);
    const out = scanner.push(chunk);
    if (out.length > 0) stderr.write(out);
  });
  stderrIn.on("end", () => {
    const rest = scanner.end();
    if (rest.length > 0) stderr.write(rest);
    stderr.end();
  });
  let spawnError: Error | undefined;
  child.on("error", (err) => {
    spawnError = err;
  });
  // Over when ssh has exited and closed its stdio, ours included (the master holds a copy of
  // our socket while the session lasts).
  const closed = Promise.all([
    new Promise<{ code: number | null }>((resolve) => {
      child.once("close", (code) => resolve({ code }));
    }),
    pair?.stdout.closed,
  ]).then(([exit]) => exit);
  const done: Promise<ChannelEnd> = closed.then(async ({ code }) => {
    // A session that never opened is the opener's to account for (refused: queue again).
    if (scanner.opened) onClosed();
    if (scanner.status !== undefined) return { exitCode: scanner.status, signal: null };
    if (!scanner.opened) return { exitCode: null, signal: null, lost: master.endError };
    // No status: the remote shell was killed, or the connection (master) went away.
    if (master.alive && code === 255) {
      await Promise.race([master.exited, sleep(MASTER_DEATH_GRACE_MS, undefined, { ref: false })]);
    }
    if (!master.alive || isMuxFailure(rawTail)) {
      return {
        exitCode: null,
        signal: null,
        lost:
          master.endError?.code === "CONNECTION_LOST"
            ? master.endError
            : new ConnectorError("CONNECTION_LOST", "ssh", `connection to ${master.label} lost: ${tail(rawTail, 300)}`),
      };
    }
    return { exitCode: null, signal: null };
  });
  const channel: CommandChannel = {
    stdin,
    stdout,
    stderr,
    done,
    // The ssh client cannot send signal requests: the connector kills by process group.
    signal: () => {},
    close: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
    readStdoutInto: pair && ((reader) => pair.stdout.readInto(reader)),
  };
  return Promise.race([opened.then(() => channel), closed.then(() => undefined)]).then(async (ready) => {
    if (ready) return ready;
    pair?.stdout.destroy();
    await done;
    if (spawnError) {
      throw new ConnectorError("UNAVAILABLE", "ssh", `cannot run ${sshPath}: ${spawnError.message}`, {
        cause: spawnError,
      });
    }
    if (isSessionRefusal(rawTail)) throw new SessionRefused(tail(rawTail, 300));
    if (!master.alive || isMuxFailure(rawTail)) {
      throw (
        master.endError ??
        new ConnectorError("CONNECTION_LOST", "ssh", `connection to ${master.label} lost: ${tail(rawTail, 300)}`, {
          retryable: true,
        })
      );
    }
    throw new ConnectorError(
      "UNAVAILABLE",
      "ssh",
      `cannot open a session on ${master.label}: ${tail(rawTail, 300) || "ssh ended without a message"}`,
      { retryable: true },
    );
  });
}
