"""Output frames of streaming calls (`stream: true`, docs/protocol.md section 3).

What a streaming call prints reaches its client while the call runs: the pieces of one
stream written within _FLUSH_SECONDS of the first go in one `output` frame (sooner once
_FLUSH_CHARS wait, or when the call switches to the other stream, so that the order of
stdout and stderr pieces is kept), and every piece is sent before the call's result.
A frame per piece cost ~17 µs each on this VM: a call printing 100,000 lines took 3.3 s
streamed against 0.2 s captured only (docs/performance.md).
"""

import threading
import time

from .capture import clean_text

_FLUSH_SECONDS = 0.01
_FLUSH_CHARS = 64 * 1024
_monotonic = time.monotonic


class OutputStreamer(object):
    """The streaming calls of one session: `sink(call_id)` makes a call's sink, and a thread
    (started by the first streaming call) sends what waits once it is _FLUSH_SECONDS old.
    `send_output(call_id, stream_index, text)` sends one frame; `log(message)` reports what
    went wrong sending one (the result still carries all of the call's output)."""

    def __init__(self, send_output, log):
        self.send_output = send_output
        self.log = log
        self.cond = threading.Condition(threading.Lock())
        self.due = {}  # CallSink -> when its waiting pieces leave (monotonic)
        self.thread = None

    def sink(self, call_id):
        return CallSink(self, call_id)

    def _schedule(self, sink, when):
        with self.cond:
            if sink in self.due:
                return  # due sooner already
            self.due[sink] = when
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="sremote-output-stream", daemon=True)
                self.thread.start()
            self.cond.notify()

    def _unschedule(self, sink):
        with self.cond:
            self.due.pop(sink, None)

    def _loop(self):
        while True:
            with self.cond:
                while True:
                    now = _monotonic()
                    ready = [s for s, when in self.due.items() if when <= now]
                    if ready:
                        for s in ready:
                            del self.due[s]
                        break
                    # Nothing due: wait for the earliest, or for a first piece.
                    self.cond.wait(min(self.due.values()) - now if self.due else None)
            for s in ready:
                try:
                    s.flush()
                except Exception as exc:  # an agent bug: the thread must go on for other calls
                    self.log("cannot send the output of call %s: %r" % (s.call_id, exc))


class CallSink(object):
    """`sink(stream_index, text)` for one streaming call (capture.CallOutput calls it with
    each piece, after the output limit's cut); `close()` when the call has ended, before
    its result is sent."""

    __slots__ = ("streamer", "call_id", "lock", "index", "parts", "size", "closed")

    def __init__(self, streamer, call_id):
        self.streamer = streamer
        self.call_id = call_id
        # Held while a frame is sent too: two flushes of one call cannot swap their frames.
        self.lock = threading.Lock()
        self.index = 0
        self.parts = []
        self.size = 0
        self.closed = False

    def __call__(self, index, text):
        with self.lock:
            if self.closed:
                return  # the result has gone (a thread the call left behind): it has the rest
            if self.parts and index != self.index:
                self._send_locked()
            self.index = index
            self.parts.append(text)
            self.size += len(text)
            if self.size >= _FLUSH_CHARS:
                self._send_locked()
                return
            first = len(self.parts) == 1
        if first:
            self.streamer._schedule(self, _monotonic() + _FLUSH_SECONDS)

    def flush(self):
        """Sends what waits, if anything."""
        with self.lock:
            if self.parts:
                self._send_locked()

    def close(self):
        """Sends what waits; nothing is sent after this (the result comes next)."""
        self.streamer._unschedule(self)
        with self.lock:
            if self.parts:
                self._send_locked()
            self.closed = True

    def _send_locked(self):
        # Lone surrogates escaped, as in the result's stdout/stderr (UTF-8 cannot carry them).
        text = clean_text("".join(self.parts))
        self.parts = []
        self.size = 0
        self.streamer.send_output(self.call_id, self.index, text)
