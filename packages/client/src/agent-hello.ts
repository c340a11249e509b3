import { type Deadline, ProtocolError, RemoteNotSetupError, type RemoteProcess } from "@sremote/core";
import { type AgentInfo, type AgentMessage, decodeAgentMessage } from "@sremote/protocol";
import type { Logger } from "./logger.js";

/** Bytes of stray output tolerated before the agent's hello frame. */
const MAX_NOISE_BYTES = 64 * 1024;
/** A hello frame is small; anything announcing more is not one. */
const MAX_HELLO_BYTES = 64 * 1024;

/**
 * Finds the agent's hello frame in `buf`, which may start with stray output: the first
 * offset holding a length header followed by a MessagePack map that decodes as a hello.
 * Returns undefined when no complete hello is there (yet).
 *
 * @throws ProtocolError when the first complete frame is a valid message other than hello.
 */
function findHello(buf: Buffer): { offset: number; end: number; agent: AgentInfo } | undefined {
  for (let k = 0; k + 5 <= buf.length; k++) {
    const first = buf[k + 4] as number;
    if (first < 0x80 || first > 0x8f) continue; // a message is a fixmap
    const size = buf.readUInt32BE(k);
    if (size === 0 || size > MAX_HELLO_BYTES || k + 4 + size > buf.length) continue;
    let msg: AgentMessage;
    try {
      msg = decodeAgentMessage(buf.subarray(k + 4, k + 4 + size));
    } catch {
      continue;
    }
    if (msg.kind !== "hello") throw new ProtocolError(`expected a hello frame first, got ${msg.kind}`);
    return { offset: k, end: k + 4 + size, agent: msg.agent };
  }
  return undefined;
}

/**
 * Waits for a just-started agent's hello frame on `proc.stdout`. Login shells and profiles
 * sometimes print to stdout before the agent starts (a banner, a `module load` message):
 * such bytes are skipped, and logged, up to the hello. Listens to `stdout` only until it
 * settles; the agent must send nothing after its hello until asked.
 *
 * @param stderrTail the agent's stderr so far, quoted in the errors.
 * @throws RemoteNotSetupError when the agent exits first or prints something else;
 *   ProtocolError when its first frame is not a hello or more follow; the deadline's error.
 */
export async function awaitHello(
  proc: RemoteProcess,
  d: Deadline,
  logger: Logger,
  stderrTail: () => string,
): Promise<AgentInfo> {
  let onData: ((chunk: Buffer) => void) | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<AgentInfo>((resolve, reject) => {
      const tail = stderrTail;
      let pre: Buffer = Buffer.alloc(0);
      onData = (chunk: Buffer) => {
        pre = pre.length === 0 ? chunk : Buffer.concat([pre, chunk]);
        let found: { offset: number; end: number; agent: AgentInfo } | undefined;
        try {
          found = findHello(pre);
        } catch (err) {
          reject(err);
          return;
        }
        if (!found) {
          if (pre.length > MAX_NOISE_BYTES) {
            reject(
              new RemoteNotSetupError(
                `the agent did not start cleanly: its output is not the SRemote protocol (first bytes: ${JSON.stringify(pre.subarray(0, 200).toString("utf8"))})${tail() ? `; stderr: ${tail()}` : ""}`,
                { details: { stderr: tail() } },
              ),
            );
          }
          return;
        }
        if (found.offset > 0) {
          logger.warn?.("output before the agent started was ignored (a login shell or profile printing?)", {
            text: pre.subarray(0, Math.min(found.offset, 2000)).toString("utf8"),
          });
        }
        if (found.end < pre.length) {
          reject(new ProtocolError("the agent sent frames before the client asked for anything"));
          return;
        }
        resolve(found.agent);
      };
      proc.stdout.on("data", onData);
      onAbort = () => reject(d.error("starting the agent session"));
      d.signal.addEventListener("abort", onAbort, { once: true });
      proc.exited.then((exit) =>
        reject(
          new RemoteNotSetupError(
            `the agent exited before it was ready (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`})${tail() ? `: ${tail()}` : ""}`,
            { details: { exitCode: exit.exitCode, signal: exit.signal, stderr: tail() } },
          ),
        ),
      );
    });
  } finally {
    if (onData) proc.stdout.off("data", onData);
    if (onAbort) d.signal.removeEventListener("abort", onAbort);
  }
}
