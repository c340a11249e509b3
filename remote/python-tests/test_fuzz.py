"""Mutation fuzz of what a client's bytes reach in the agent (issue 15): the session's frame
reader (frames.FrameChannel.read_frame), then the codec (pure and C), then message
validation (messages.parse_client_message), exactly as session.py chains them. Every mutated
stream must end in frames that parse, a typed protocol error (ProtocolFailure, DecodeError,
MessageError) or a clean end of input: never another exception, never a hang (each case runs
under an alarm). Fixed seeds; $SREMOTE_FUZZ_ITERATIONS raises the number of cases (CI: 1500
per codec). A few mutated streams also go to a real `--serve` agent, which must answer with
frames and exit 0 or 3."""

import datetime
import os
import random
import signal
import struct
import subprocess
import unittest

import support
from sremote_agent import PROTOCOL_VERSION, codec
from sremote_agent.frames import FrameChannel, ProtocolFailure
from sremote_agent.messages import MessageError, parse_client_message
from sremote_agent.values import DecodeError, NDArrayData

ITERATIONS = int(os.environ.get("SREMOTE_FUZZ_ITERATIONS") or 1500)
MAX_FRAME = 1 << 20
CASE_SECONDS = 5  # per case: far above what a case takes, so only a hang trips it
INTERESTING = (0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xC0, 0xC1, 0xC4, 0xC6, 0xC7, 0xC9, 0xCF, 0xD3, 0xD4, 0xD8,
               0xD9, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE0, 0xFF)


def _seeds():
    v = PROTOCOL_VERSION
    big = {"a": [1, -1, 2 ** 40, -(2 ** 63), 1.5, float("nan"), None, True, "x" * 40, b"\x00\xff" * 20]}
    return [
        {"v": v, "kind": "call", "id": "c1", "module": "math", "function": "sqrt", "args": [2]},
        {"v": v, "kind": "call", "id": "c2", "module": "m", "function": "f", "args": [big, [[[]]], {1: "x"}],
         "kwargs": {"k": set([1, 2]), "t": datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)}},
        {"v": v, "kind": "call", "id": "c3", "module": "m", "function": "f", "env": {"A": "b"}, "envDefault": {},
         "pathAppend": ["/x"], "cwd": "/", "stream": True, "outputLimit": 10, "timeoutMs": 5, "requires": ["q"]},
        {"v": v, "kind": "call", "id": "c4", "module": "m", "function": "f",
         "args": [NDArrayData("<i4", [2, 300], bytes(range(256)) * 9 + bytes(96))]},
        {"v": v, "kind": "probe", "id": "p", "requires": ["a", "b"]},
        {"v": v, "kind": "cancel", "id": "c1"},
        {"v": v, "kind": "ping", "id": "x"},
        {"v": v, "kind": "shutdown"},
    ]


SEEDS = [codec.packb(m, "message") for m in _seeds()]


def _frame(body):
    return struct.pack(">I", len(body)) + body


def mutate(data, rnd):
    out = bytearray(data)
    for _ in range(1 + rnd.randrange(4)):
        at = rnd.randrange(len(out) + 1)
        op = rnd.randrange(8)
        if op == 0 and out:
            out[min(at, len(out) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and out:
            out[min(at, len(out) - 1)] = rnd.choice(INTERESTING)
        elif op == 2:
            out[at:at] = bytes([rnd.randrange(256)])
        elif op == 3:
            del out[at : at + 1 + rnd.randrange(4)]
        elif op == 4:
            out[at:at] = out[at : at + 1 + rnd.randrange(8)]
        elif op == 5:
            del out[at:]
        elif op == 6 and len(out) >= 4:
            # a length header that lies: small, large, or past the limit
            struct.pack_into(">I", out, 0, rnd.choice((0, 1, len(out), len(out) + 7, MAX_FRAME, MAX_FRAME + 1, 2 ** 32 - 1)))
        else:
            out[at:at] = rnd.choice(SEEDS)[: rnd.randrange(16)]
    return bytes(out)


def stream_case(rnd):
    """A stream of 1-3 frames of seed messages, then mutated."""
    frames = b"".join(_frame(rnd.choice(SEEDS)) for _ in range(1 + rnd.randrange(3)))
    return mutate(frames, rnd)


class _Alarm(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Alarm()


def read_all(data, unpackb):
    """Feeds `data` through the session's reading chain; the outcome's name."""
    r, w = os.pipe()
    try:
        with os.fdopen(w, "wb") as f:  # cases are far below a pipe's buffer
            f.write(data)
        channel = FrameChannel(r, -1, MAX_FRAME, lambda message: None)
        outcome = "end"
        for _ in range(100):  # a case holds at most a few dozen frames
            body = channel.read_frame()
            if body is None:
                return outcome
            msg = unpackb(body)
            parse_client_message(msg)
            outcome = "parsed"
        raise AssertionError("more frames than a case can hold")
    finally:
        os.close(r)


class FrameReaderFuzzTest(unittest.TestCase):
    def fuzz(self, unpackb, seed):
        rnd = random.Random(seed)
        seen = {}
        old = signal.signal(signal.SIGALRM, _alarm)
        try:
            for i in range(ITERATIONS):
                data = stream_case(rnd)
                signal.alarm(CASE_SECONDS)
                try:
                    outcome = read_all(data, unpackb)
                except (ProtocolFailure, DecodeError, MessageError) as exc:
                    outcome = type(exc).__name__
                except _Alarm:
                    self.fail("case %d hangs: %s" % (i, data[:200].hex()))
                except Exception as exc:
                    self.fail("case %d: untyped %s: %s (input %s)" % (i, type(exc).__name__, exc, data[:200].hex()))
                finally:
                    signal.alarm(0)
                seen[outcome] = seen.get(outcome, 0) + 1
        finally:
            signal.signal(signal.SIGALRM, old)
        # The mutations reach every outcome (else the fuzzer tests little).
        for outcome in ("parsed", "ProtocolFailure", "DecodeError", "MessageError"):
            self.assertGreater(seen.get(outcome, 0), 0, "%s never reached: %r" % (outcome, seen))
        print("\nfuzz (%s codec, %d cases, seed %d): %s" % (unpackb.__name__, ITERATIONS, seed, seen))

    def test_pure_codec(self):
        self.fuzz(codec.unpackb_pure, 1)

    def test_c_codec(self):
        if codec.unpackb_c is None:
            support.loud_skip(self, "msgpack is not importable: the C codec is fuzzed in the /usr/bin/python3 run")
        self.fuzz(codec.unpackb_c, 2)


class AgentProcessFuzzTest(support.TempDirTestCase):
    def test_a_real_agent_answers_mutated_streams_with_frames_and_exits_0_or_3(self):
        rnd = random.Random(3)
        for i in range(int(os.environ.get("SREMOTE_FUZZ_PROCESSES") or 6)):
            data = stream_case(rnd)
            proc = subprocess.run(
                [support.SH, support.INTERPRETER, "--serve", support.REMOTE_DIR, os.path.join(self.tmp, "t"),
                 support.FIXTURES, "--max-frame", str(MAX_FRAME), "--grace-ms", "100"],
                input=data, capture_output=True, env=self.agent_env(), timeout=support.TIMEOUT,
            )
            self.assertIn(proc.returncode, (0, 1, 3), "case %d: %s" % (i, proc.stderr[-500:]))
            self.assertNotIn(b"Traceback", proc.stderr, "case %d" % i)
            self.assertNotIn(b"internal error", proc.stderr, "case %d" % i)
            out = proc.stdout
            kinds = []
            while out:  # the output is whole frames of messages, from hello on
                (size,) = struct.unpack_from(">I", out)
                kinds.append(codec.unpackb(out[4 : 4 + size])["kind"])
                self.assertEqual(len(out[4 : 4 + size]), size, "case %d: a cut frame" % i)
                out = out[4 + size :]
            self.assertEqual(kinds[:1], ["hello"], "case %d" % i)


if __name__ == "__main__":
    unittest.main()
