"""Big request frames read as they arrive (bigread.py): each big value straight into the
bytes object the call gets, the rest of the frame as a small head. Whatever the arrival
pattern, the result decodes to exactly what the whole frame decodes to, with the same
errors, through both codecs."""

import os
import random
import struct
import threading
import unittest
from unittest import mock

import support
from sremote_agent import bigread, bulk, codec
from sremote_agent.values import DecodeError

BIG = bulk.SPLIT_BYTES + 4321


def call(*args, **kwargs):
    return {"v": 1, "kind": "call", "id": "x", "module": "m", "function": "f", "args": list(args), "kwargs": kwargs}


def codecs():
    """(name, unpackb) of each codec this Python has."""
    found = [("pure", codec.unpackb_pure)]
    if codec.unpackb_c is not None:
        found.append(("c", codec.unpackb_c))
    return found


def read(body, arrived=0, chunks=None, cut=None):
    """bigread.read_body over a pipe: `arrived` bytes already read, the rest (up to `cut`)
    written by a thread in `chunks` sizes (a function of the remaining length)."""
    end = len(body) if cut is None else cut
    r, w = os.pipe()

    def writer():
        try:
            pos = arrived
            for _ in range(end + 1):  # bounded: every pass writes at least one byte
                if pos >= end:
                    break
                size = max(1, min(end - pos, chunks(end - pos) if chunks else 1 << 20))
                os.write(w, body[pos : pos + size])
                pos += size
        except OSError:
            pass  # the reader gave up
        finally:
            os.close(w)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        return bigread.read_body(r, bytearray(body[:arrived]), len(body))
    finally:
        os.close(r)
        thread.join()


def decoded(got, unpackb):
    with mock.patch.object(codec, "unpackb", unpackb):
        return got.decode() if type(got) is bigread.SplitBody else unpackb(got)


def outcome(fn):
    try:
        return ("value", fn())
    except DecodeError as exc:
        return ("DecodeError", str(exc))


class ReadBodyTest(unittest.TestCase):
    def cases(self):
        data, data2 = os.urandom(BIG), os.urandom(2 * BIG)
        text = "ü✓" * (BIG // 2)
        np = support.numpy_or_none()
        cases = [
            ("one big argument", call(data), 1),
            ("several, in args and kwargs", call(text, 7, data2, None, x=data, y=[1.5, "s"]), 3),
            ("nested", call([1, {"k": data, "n": [True, data2]}], -3), 2),
            ("a big bytes map key", call({data: 1}), 0),
            ("just under the split size", call(os.urandom(bulk.SPLIT_BYTES - 1), os.urandom(BIG)), 1),
            ("many small values", call([b"x" * 1000] * 1100), 0),
            ("more tokens than the walk takes before it", call(list(range(bigread._TOKENS)), data), 0),
        ]
        if np is not None:
            cases.append(("an ndarray", call(np.arange(BIG // 8, dtype="<f8"), data), 2))
        return cases

    def test_big_values_are_read_apart_and_decode_as_the_whole_frame(self):
        for name, msg, parts in self.cases():
            body = codec.packb(msg, "message")
            for arrived in (0, 3, 40, 5000, 70000):
                got = read(body, arrived, chunks=lambda n: 65536)
                self.assertEqual(len(got.parts) if type(got) is bigread.SplitBody else 0, parts, name)
                for cname, unpackb in codecs():
                    self.assertTrue(
                        support.same_value(decoded(got, unpackb), unpackb(bytes(body))),
                        "%s (arrived %d, %s codec)" % (name, arrived, cname),
                    )

    def test_a_big_value_is_the_bytes_object_read_not_a_copy(self):
        data = os.urandom(BIG)
        got = read(codec.packb(call(1, data), "message"), 100)
        self.assertIs(type(got), bigread.SplitBody)
        for _, unpackb in codecs():
            self.assertIs(decoded(got, unpackb)["args"][1], got.parts[0][2])
        self.assertLess(len(got.head), 200)

    def test_an_ndarray_is_read_into_its_own_writable_array(self):
        np = support.numpy_or_none()
        if np is None:
            support.loud_skip(self, "numpy is not importable")
        arr = np.arange(BIG // 8 * 3, dtype="<f8").reshape(3, -1)
        body = codec.packb(call(arr, 1), "message")
        for arrived in (0, 60, 3000):
            got = read(body, arrived, chunks=lambda n: 65536)
            self.assertEqual([p[0] for p in got.parts], ["v"])
            for cname, unpackb in codecs():
                value = decoded(got, unpackb)["args"][0]
                self.assertIs(value, got.parts[0][2], cname)
                self.assertTrue(value.flags.writeable and value.flags.owndata and value.flags.c_contiguous)
                self.assertEqual((value.dtype.str, value.shape), ("<f8", arr.shape))
                self.assertTrue(np.array_equal(value, arr))
        # What the general path refuses still goes through it, with its error.
        good = codec.packb(call(np.zeros(BIG, dtype="u1")), "message")
        for bad in (good.replace(b"\xa3|u1", b"\xa3|O8", 1), good.replace(b"\xa1C", b"\xa1F", 1)):
            for cname, unpackb in codecs():
                whole = outcome(lambda: unpackb(bytes(bad)))
                split = outcome(lambda: decoded(read(bad, 50), unpackb))
                self.assertEqual(split, whole, cname)
                self.assertEqual(whole[0], "DecodeError")

    def test_any_arrival_pattern(self):
        data = os.urandom(BIG)
        msg = call("a" * 100, data, {"k": os.urandom(BIG), "s": "é" * BIG}, 2**40, -1.25, kw=data)
        body = codec.packb(msg, "message")
        want = codec.unpackb(bytes(body))
        for seed in range(12):
            rnd = random.Random(seed)
            arrived = rnd.choice([0, 1, 4, rnd.randrange(len(body) // 3)])
            got = read(body, arrived, chunks=lambda n, rnd=rnd: rnd.choice([1, 7, 4096, 65536, rnd.randrange(1, n + 1)]))
            for cname, unpackb in codecs():
                self.assertTrue(support.same_value(decoded(got, unpackb), want), "seed %d, %s codec" % (seed, cname))

    def test_the_input_ending_inside_the_frame_says_how_much_arrived(self):
        data = os.urandom(BIG)
        body = codec.packb(call("x", data, "tail" * 10), "message")
        at = body.index(data[:64])
        for cut in (10, at - 2, at + 1000, at + len(data) + 5, len(body) - 1):
            with self.assertRaises(bigread.Truncated) as caught:
                read(body, min(cut, 8), chunks=lambda n: 4096, cut=cut)
            self.assertEqual(caught.exception.args[0], cut)

    def test_bad_frames_fail_as_the_whole_frame_does(self):
        data = os.urandom(BIG)
        good = codec.packb(call(data, 1), "message")
        at = good.index(data[:64])
        bad_frames = {
            "extra bytes after the value": good + b"\x00\x01",
            "a reserved byte in the head": good.replace(b"\xa6module", b"\xc1module", 1),
            "a length past the frame's end": good[:-3] + b"\xc6\xff\xff",
            "the frame ends inside a big value's length": good[: at - 6] + b"\xc6\x00\x00",
        }
        for name, body in bad_frames.items():
            body = body + b"\x00" * max(0, (1 << 20) - len(body))  # a big frame either way
            for cname, unpackb in codecs():
                whole = outcome(lambda: unpackb(bytes(body)))
                split = outcome(lambda: decoded(read(body, 50), unpackb))
                self.assertEqual(split[0], whole[0], "%s, %s codec: %s vs %s" % (name, cname, split, whole))
                self.assertEqual(whole[0], "DecodeError", name)

    def test_a_client_ext_127_is_an_unknown_extension_even_beside_big_values(self):
        data = os.urandom(BIG)
        fake = b"\xc7\x0c\x7f" + bigread._NONCE[:7] + b"\x00" + struct.pack(">I", 0)
        body = codec.packb(call(data, "PLACEHOLDER"), "message").replace(b"\xabPLACEHOLDER", fake, 1)
        got = read(body, 10)
        self.assertIs(type(got), bigread.SplitBody)
        for cname, unpackb in codecs():
            for how, decode in (("split", lambda: decoded(got, unpackb)), ("whole", lambda: unpackb(bytes(body)))):
                with self.assertRaises(DecodeError, msg="%s, %s codec" % (how, cname)) as caught:
                    decode()
                self.assertIn("unknown extension type 127", str(caught.exception))


class AgentTest(support.TempDirTestCase):
    def test_pipelined_big_frames_and_the_small_ones_behind_them_arrive_intact(self):
        # The walk reads no byte past its frame: the frames behind it stay whole.
        agent = support.SessionAgent(self)
        agent.hello()
        data, text = os.urandom(2 << 20), "ü" * (1 << 20)
        agent.call("a", "agent_fixtures", "echo", data, 1)
        agent.call("b", "agent_fixtures", "echo", text)
        agent.call("c", "agent_fixtures", "echo", b"small")
        agent.call("d", "agent_fixtures", "echo", [data, {"k": text}])
        self.assertEqual(agent.result("a")["value"], [data, 1])
        self.assertEqual(agent.result("b")["value"], text)
        self.assertEqual(agent.result("c")["value"], b"small")
        self.assertEqual(agent.result("d")["value"], [data, {"k": text}])
        agent.close()


    def test_a_64_mib_echo_costs_the_agent_one_buffer_of_the_value(self):
        # Before bigread the agent held the frame and the decoded value: ~2.2x the payload.
        if not os.path.exists("/proc/self/status"):
            support.loud_skip(self, "no /proc: the agent's peak RSS cannot be read")
        agent = support.SessionAgent(self)
        pid = agent.hello()["agent"]["pid"]
        data = os.urandom(64 << 20)
        self.assertEqual(agent.roundtrip("e", "builtins", "bytes", data)["value"], data)
        with open("/proc/%d/status" % pid) as f:
            hwm = int([line for line in f if line.startswith("VmHWM:")][0].split()[1]) * 1024
        agent.close()
        self.assertLess(hwm, 1.6 * len(data), "agent peak RSS %.2fx the payload" % (hwm / len(data)))

    def test_a_64_mib_array_echo_costs_the_agent_one_array(self):
        # Before bigread: the frame, the ext payload copied out of it, then the array.
        np = support.numpy_or_none()
        if np is None:
            support.loud_skip(self, "numpy is not importable")
        if not os.path.exists("/proc/self/status"):
            support.loud_skip(self, "no /proc: the agent's peak RSS cannot be read")
        agent = support.SessionAgent(self)
        pid = agent.hello()["agent"]["pid"]
        arr = np.arange(8 << 20, dtype="<f8")
        value = agent.roundtrip("e", "agent_fixtures", "echo", arr)["value"]
        self.assertTrue(np.array_equal(value, arr))
        with open("/proc/%d/status" % pid) as f:
            hwm = int([line for line in f if line.startswith("VmHWM:")][0].split()[1]) * 1024
        agent.close()
        self.assertLess(hwm, 1.6 * arr.nbytes, "agent peak RSS %.2fx the payload" % (hwm / arr.nbytes))

    def test_the_file_carrier_reads_a_big_request_file_the_same_way(self):
        data, text = os.urandom(3 * BIG), "ß" * BIG
        request = support.call_message("0" * 32, "agent_fixtures", "echo", data, 5, text)
        status, r, _, err = support.run_file_carrier(self, request)
        self.assertEqual(status, 0, err)
        self.assertEqual(r["value"], [data, 5, text])


if __name__ == "__main__":
    unittest.main()
