"""Big values through the agent without copies of the value (issue 16, bulk.py and
frames.FrameChannel._read_big): the bytes on the wire decode to the same result as the
usual encoding, and a real agent echoes big bytes, str and arrays intact, pipelined or not,
through both carriers."""

import os
import unittest

import support
from sremote_agent import bulk, codec
from sremote_agent.runner import encode_result

BIG = bulk.SPLIT_BYTES + 12345


def result_with(value):
    return {"v": 1, "kind": "result", "id": "x", "ok": True, "value": value, "stdout": "", "stderr": "", "durationNs": 7}


class SplitResultTest(unittest.TestCase):
    def assert_same_as_usual(self, value):
        split = encode_result(result_with(value), "x")
        self.assertIs(type(split), list, "a big value is framed by reference")
        usual = codec.packb(result_with(value), "result")
        joined = b"".join(bytes(p) for p in split)
        self.assertEqual(len(joined), bulk.body_length(split))
        self.assertEqual(len(joined), len(usual))
        self.assertTrue(support.same_value(codec.unpackb(joined), codec.unpackb(usual)))
        return split

    def test_bytes_bytearray_memoryview_are_sent_by_reference(self):
        data = os.urandom(BIG)
        split = self.assert_same_as_usual(data)
        self.assertIs(split[1], data)  # the value itself, not a copy
        self.assert_same_as_usual(bytearray(data))
        self.assert_same_as_usual(memoryview(data))
        self.assertIsNot(type(encode_result(result_with(memoryview(data)[::2]), "x")), list)  # not contiguous

    def test_a_big_str(self):
        self.assert_same_as_usual("é✓" * (BIG // 2))
        # a lone surrogate is not UTF-8: the usual path's serialization error, not bytes
        bad = encode_result(result_with("x" * BIG + "\ud800"), "x")
        self.assertIsNot(type(bad), list)
        self.assertEqual(codec.unpackb(bad)["error"]["kind"], "serialization")

    def test_a_contiguous_little_endian_array(self):
        np = support.numpy_or_none()
        if np is None:
            support.loud_skip(self, "numpy is not importable")
        for arr in (np.arange(BIG // 8, dtype="<f8").reshape(-1, 3 if (BIG // 8) % 3 == 0 else 1),
                    np.arange(BIG, dtype="u1"), np.zeros((BIG // 4,), dtype="<i4")):
            self.assert_same_as_usual(arr)
        # the usual path for what cannot be sent as it is
        for arr in (np.arange(BIG // 4, dtype=">i4"), np.arange(BIG // 4, dtype="<i4")[::2]):
            self.assertIsNot(type(encode_result(result_with(arr), "x")), list)

    def test_small_values_errors_and_frame_limits_take_the_usual_path(self):
        self.assertIsNot(type(encode_result(result_with(b"x" * 100), "x")), list)
        failed = result_with(b"x" * BIG)
        failed["ok"] = False
        self.assertIsNot(type(encode_result(failed, "x")), list)
        over = encode_result(result_with(b"x" * BIG), "x", max_bytes=BIG)
        self.assertEqual(codec.unpackb(over)["error"]["kind"], "serialization")


class BigValueAgentTest(support.TempDirTestCase):
    def test_the_session_echoes_big_values_intact_pipelined(self):
        agent = support.SessionAgent(self)
        agent.hello()
        data = os.urandom(3 * BIG)
        text = "ü" * BIG
        # pipelined: the second call is read while the first result is written
        agent.call("a", "agent_fixtures", "echo", data)
        agent.call("b", "agent_fixtures", "echo", text)
        agent.call("c", "agent_fixtures", "echo", b"small")
        self.assertEqual(agent.result("a")["value"], data)
        self.assertEqual(agent.result("b")["value"], text)
        self.assertEqual(agent.result("c")["value"], b"small")
        self.assertEqual(agent.roundtrip("d", "builtins", "bytes", data)["value"], data)
        agent.close()

    def test_the_file_carrier_writes_a_big_response_file(self):
        data = os.urandom(BIG)
        status, r, _, err = support.run_file_carrier(self, support.call_message("0" * 32, "builtins", "bytes", data))
        self.assertEqual((status, r["value"]), (0, data), err)


if __name__ == "__main__":
    unittest.main()


class NDArrayDecodeTest(unittest.TestCase):
    """An ndarray's data is decoded from a view into the ext payload (one copy, the array's
    own), with the same values and the same errors as the general path."""

    def test_the_view_path_agrees_with_the_general_one(self):
        from sremote_agent import codec_pure
        from sremote_agent.values import NDArrayData, ndarray_from_parts

        good = codec_pure.packb(["<f8", [3, 100], "C", os.urandom(2400)])
        for payload in (good, good[:-1], good + b"\x00", b"\x94" + good[1:].replace(b"<f8", b">f8"),
                        good.replace(b"\xa1C", b"\xa1F"), good.replace(b"\x92\x03\x64", b"\x92\x03\x65")):
            via_view = codec_pure._ndarray_parts_by_view(payload)
            try:
                general = ndarray_from_parts(codec_pure.unpack_payload(payload, 0))
            except Exception as exc:
                general = exc
            if via_view is None:
                continue  # the general path decides
            try:
                fast = ndarray_from_parts(via_view)
            except Exception as exc:
                fast = exc
            if isinstance(general, Exception):
                self.assertEqual((type(fast), str(fast)), (type(general), str(general)))
            else:
                self.assertTrue(support.same_value(fast, general))
        self.assertIsNotNone(codec_pure._ndarray_parts_by_view(good))
        value = codec.unpackb(codec.packb(NDArrayData("<f8", [3, 100], b"\x01" * 2400)))
        np = support.numpy_or_none()
        if np is not None:
            self.assertTrue(value.flags.writeable and value.flags.owndata)
            self.assertEqual(value.shape, (3, 100))


class CCodecChecksTest(unittest.TestCase):
    """The C codec's byte scans (non-canonical NaN, timestamp nanoseconds) also hit the
    insides of bin payloads: a hit is confirmed on the value, so random binary data stays on
    the C codec (it went through the pure one, several times slower, before)."""

    def setUp(self):
        if codec.unpackb_c is None:
            support.loud_skip(self, "msgpack is not importable: the C codec is tested in the /usr/bin/python3 run")

    def test_binary_data_with_the_scanned_patterns_stays_on_the_c_codec(self):
        from unittest import mock

        from sremote_agent import codec_pure

        # a timestamp-ext lookalike with nanoseconds > 10^9, and a NaN lookalike with a payload
        data = b"\xd7\xff\xff\xff\xff\xff\x00\x00\x00\x00" + b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x01" + os.urandom(64)
        msg = {"v": 1, "kind": "call", "id": "x", "module": "m", "function": "f", "args": [data]}
        with mock.patch.object(codec_pure, "unpackb", side_effect=AssertionError("pure decoder used")):
            with mock.patch.object(codec_pure, "packb", side_effect=AssertionError("pure encoder used")):
                body = codec.packb_c(msg, "message")
                self.assertEqual(codec.unpackb_c(body)["args"], [data])

    def test_real_bad_timestamps_and_nans_are_still_caught(self):
        import struct

        bad = b"\x81\xa1t\xd7\xff" + struct.pack(">I", 1000000000 << 2) + b"\x00\x00\x00\x00"
        with self.assertRaises(Exception) as caught:
            codec.unpackb_c(bad)
        self.assertEqual(type(caught.exception).__name__, "DecodeError")
        nan = struct.unpack(">d", b"\x7f\xf0\x00\x00\x00\x00\x00\x01")[0]
        self.assertEqual(codec.packb_c({"x": nan}, "message"), codec.packb_pure({"x": nan}, "message"))
