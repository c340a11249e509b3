"""The benchmark's peers: execnet and mitogen calling math.sqrt(2) over SSH.

Driven by bench/src/peers.ts over stdin/stdout, one JSON object per line each way, so that
their blocks interleave with the session carrier's in one benchmark process:

  {"op": "connect", "peer": "execnet"|"mitogen"}
      -> {"ms": time from nothing to the first result (ssh, remote Python, first call)}
         and keeps that connection for the blocks that follow.
  {"op": "block", "peer": ..., "count": N, "inFlight": K, "timed": bool}
      -> {"elapsedMs": ..., "latencies": [ms, ...]} (latencies only when timed)
  {"op": "close"} -> {} and the connections end.

Each peer is used the way its documentation shows: execnet with a persistent channel whose
remote side is `for x in channel: channel.send(math.sqrt(x))`, mitogen with
`context.call_async(math.sqrt, 2)`. K calls in flight: K sent, then one more sent as each
result arrives (both answer in order: one channel, one remote thread).
"""

import collections
import json
import sys
import time

SSH_CONFIG = sys.argv[1]  # an ssh_config with Host "sremote-bench" (user, port, key, known_hosts)
REMOTE_PYTHON = sys.argv[2]

EXECNET_REMOTE = """
import math
sqrt = math.sqrt
for x in channel:
    channel.send(sqrt(x))
"""


class Execnet:
    def __init__(self):
        import execnet

        self.gw = execnet.makegateway(
            "ssh=sremote-bench//ssh_config=%s//python=%s" % (SSH_CONFIG, REMOTE_PYTHON)
        )
        self.ch = self.gw.remote_exec(EXECNET_REMOTE)

    def first(self):
        self.ch.send(2)
        return self.ch.receive()

    def block(self, count, in_flight, latencies):
        ch = self.ch
        clock = time.perf_counter
        sent = collections.deque()
        n = min(count, in_flight)
        for _ in range(n):
            sent.append(clock())
            ch.send(2)
        done = 0
        while done < count:
            ch.receive()
            t = clock()
            if latencies is not None:
                latencies.append((t - sent.popleft()) * 1000)
            else:
                sent.popleft()
            done += 1
            if n < count:
                n += 1
                sent.append(clock())
                ch.send(2)

    def close(self):
        self.ch.close()
        self.gw.exit()


class Mitogen:
    def __init__(self):
        import math

        import mitogen.master

        self.sqrt = math.sqrt
        self.broker = mitogen.master.Broker()
        self.router = mitogen.master.Router(self.broker)
        self.ctx = self.router.ssh(
            hostname="sremote-bench",
            ssh_args=["-F", SSH_CONFIG],
            python_path=[REMOTE_PYTHON],
        )

    def first(self):
        return self.ctx.call(self.sqrt, 2)

    def block(self, count, in_flight, latencies):
        ctx = self.ctx
        sqrt = self.sqrt
        clock = time.perf_counter
        sent = collections.deque()
        n = min(count, in_flight)
        for _ in range(n):
            sent.append((clock(), ctx.call_async(sqrt, 2)))
        done = 0
        while done < count:
            t0, recv = sent.popleft()
            recv.get().unpickle()
            if latencies is not None:
                latencies.append((clock() - t0) * 1000)
            done += 1
            if n < count:
                n += 1
                sent.append((clock(), ctx.call_async(sqrt, 2)))

    def close(self):
        self.ctx.shutdown(wait=True)
        self.broker.shutdown()
        self.broker.join()


PEERS = {"execnet": Execnet, "mitogen": Mitogen}


def main():
    live = {}
    out = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        op = req["op"]
        if op == "connect":
            peer = req["peer"]
            old = live.pop(peer, None)
            if old is not None:
                old.close()
            t0 = time.perf_counter()
            conn = PEERS[peer]()
            value = conn.first()
            ms = (time.perf_counter() - t0) * 1000
            if abs(value - 2**0.5) > 1e-12:
                raise SystemExit("%s returned %r" % (peer, value))
            live[peer] = conn
            reply = {"ms": ms}
        elif op == "block":
            conn = live[req["peer"]]
            latencies = [] if req.get("timed", True) else None
            t0 = time.perf_counter()
            conn.block(req["count"], req["inFlight"], latencies)
            reply = {"elapsedMs": (time.perf_counter() - t0) * 1000, "latencies": latencies or []}
        elif op == "close":
            for conn in live.values():
                conn.close()
            live.clear()
            reply = {}
        else:
            raise SystemExit("unknown op %r" % op)
        out.write(json.dumps(reply) + "\n")
        out.flush()
        if op == "close":
            return


if __name__ == "__main__":
    main()
