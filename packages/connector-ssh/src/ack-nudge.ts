import type { Socket } from "node:net";
import type { Client as Ssh2Client } from "ssh2";

/** How long after authentication, and how many times at most, a silent client answers. */
export interface AckNudgeOptions {
  windowMs?: number;
  max?: number;
}

/** The forward a nudge "cancels": none is ever requested on these connections. */
const NUDGE_ADDRESS = "127.0.0.1";
const NUDGE_PORT = 65535;

/**
 * Makes the client's TCP ACKs leave at once for a short while after authentication.
 *
 * OpenSSH's sshd leaves Nagle's algorithm on for sessions without a pty, and right after
 * authentication it sends packets a client has nothing to answer to (`SSH_MSG_DEBUG`
 * "key options" lines, the `hostkeys-00` notice). The client's kernel then delays its ACK
 * (~40 ms on Linux) and sshd holds its next packet — the first channel's confirmation —
 * until that ACK arrives: every new connection's first channel waited ~40 ms for nothing
 * (seen with tcpdump on loopback; docs/performance.md).
 *
 * While the window lasts, whenever data arrived and the client wrote nothing in the same
 * turn of the event loop, it sends a global request that asks for no reply and changes
 * nothing (`cancel-tcpip-forward` of a forward never made): the ACK travels with it.
 * Only a TCP socket is watched (the first hop; later hops' bytes travel over it).
 */
export function nudgeAcksAfterAuth(client: Ssh2Client, sock: Socket, options: AckNudgeOptions = {}): void {
  const { windowMs = 2_000, max = 16 } = options;
  let left = max;
  let pending = false;
  const onData = () => {
    if (pending) return;
    pending = true;
    const before = sock.bytesWritten;
    setImmediate(() => {
      pending = false;
      // The client answered (its ACK went with the answer), or the socket is going away.
      if (sock.bytesWritten !== before || sock.destroyed || !sock.writable) return;
      try {
        client.unforwardIn(NUDGE_ADDRESS, NUDGE_PORT);
      } catch {
        stop();
        return;
      }
      if (--left <= 0) stop();
    });
  };
  const timer = setTimeout(() => stop(), windowMs);
  timer.unref();
  function stop(): void {
    clearTimeout(timer);
    sock.off("data", onData);
  }
  // First in line: the count of bytes written is taken before ssh2 handles the chunk.
  sock.prependListener("data", onData);
  sock.once("close", stop);
}
