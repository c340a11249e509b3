"""streaming.py: how a streaming call's pieces of output become `output` frames."""

import threading
import unittest

import support
from sremote_agent import streaming


class StreamingTest(unittest.TestCase):
    def setUp(self):
        self.frames = []
        self.sent = threading.Event()

        def send_output(call_id, index, text):
            self.frames.append((call_id, index, text))
            self.sent.set()

        self.logged = []
        self.streamer = streaming.OutputStreamer(send_output, self.logged.append)

    def test_pieces_of_one_stream_leave_together_and_a_switch_of_stream_sends_what_waits(self):
        sink = self.streamer.sink("c")
        for piece in ("a", "\n", "b", "\n"):
            sink(0, piece)
        sink(1, "err\n")
        sink(0, "c\n")
        sink.close()
        self.assertEqual(self.frames, [("c", 0, "a\nb\n"), ("c", 1, "err\n"), ("c", 0, "c\n")])

    def test_what_waits_leaves_on_its_own_while_the_call_runs(self):
        sink = self.streamer.sink("c")
        sink(0, "progress\n")
        self.assertTrue(self.sent.wait(support.TIMEOUT), "nothing sent while the call ran")
        self.assertEqual(self.frames, [("c", 0, "progress\n")])
        sink.close()
        self.assertEqual(len(self.frames), 1)

    def test_a_big_piece_leaves_at_once(self):
        sink = self.streamer.sink("c")
        sink(0, "x" * streaming._FLUSH_CHARS)
        self.assertEqual(self.frames, [("c", 0, "x" * streaming._FLUSH_CHARS)])
        sink.close()

    def test_nothing_is_sent_after_close(self):
        sink = self.streamer.sink("c")
        sink(0, "last\n")
        sink.close()
        sink(0, "from a thread the call left behind\n")
        sink.flush()
        self.assertEqual(self.frames, [("c", 0, "last\n")])

    def test_a_lone_surrogate_is_escaped_as_in_the_result(self):
        sink = self.streamer.sink("c")
        sink(0, "a\ud800")
        sink(0, "b\n")
        sink.close()
        self.assertEqual(self.frames, [("c", 0, "a\\ud800b\n")])

    def test_calls_are_kept_apart(self):
        a, b = self.streamer.sink("a"), self.streamer.sink("b")
        a(0, "1")
        b(0, "2")
        a(0, "3")
        b.close()
        a.close()
        self.assertEqual(self.frames, [("b", 0, "2"), ("a", 0, "13")])


if __name__ == "__main__":
    unittest.main()
