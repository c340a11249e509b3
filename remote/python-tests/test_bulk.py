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

    def test_a_big_str(self):
        self.assert_same_as_usual("é✓" * (BIG // 2))

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
