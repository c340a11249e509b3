"""Frame I/O of the session carrier (docs/protocol.md section 3): 4-byte big-endian
length-prefixed MessagePack frames, read from the client's input into a buffer and
written to its output, with results of pipelined calls held for one write.

Scheduling (who reads, who runs which call) is session.py's; Session extends FrameChannel
rather than holding one, so that the per-call path reaches these methods and their state
as attributes of the session itself (no extra attribute hop per frame).
"""

import os
import struct
import threading

from .bigread import BIG_FRAME, Truncated, read_body
from .fdio import readiness_check, write_all

_header = struct.Struct(">I")
# Most result bytes / frames held for one write (see FrameChannel.hold). Not more frames:
# the client works on the results of one write while the agent runs the next calls, and
# with 64 calls in flight a write of every 64 results left each side idle while the other
# worked (docs/performance.md, "Batching"). When one read brought between _SPLIT_FROM and
# _HOLD_ALL_FROM calls (~16 calls in flight), groups of _HOLD_SPLIT: held as one group of
# 16, those calls kept both sides in lock-step (~27 k calls/s over SSH); in two groups of 8
# each side works while the other does (~36-50 k). Fewer calls in a read gain nothing from
# a second write; more already form several groups of _HOLD_FRAMES.
_HOLD_BYTES = 64 * 1024
_HOLD_FRAMES = 16
_HOLD_SPLIT = 8
_SPLIT_FROM = 12
_HOLD_ALL_FROM = 24


class ProtocolFailure(Exception):
    """The input stream can no longer be trusted: report and exit 3."""


class FrameChannel(object):
    """Frames in from `frame_in` (buffered in `inbuf` by the thread holding the reader
    role) and out to `frame_out` (any thread, under `write_lock`). `log(message)` reports
    a client that went away before the agent exits."""

    def __init__(self, frame_in, frame_out, max_frame, log):
        self.frame_in = frame_in
        self.frame_out = frame_out
        self.max_frame = max_frame
        self.log = log
        self.inbuf = bytearray()
        self.input_waiting = readiness_check([frame_in])
        self.write_lock = threading.Lock()
        # Result frames not yet written (see hold); guarded by write_lock.
        self.held = []
        self.held_bytes = 0
        # Results held for one write at most, set from each read's frame count (_batch_read).
        self.hold_limit = _HOLD_FRAMES

    # -- output ------------------------------------------------------------

    def send_bytes(self, body):
        """Writes one frame (after any held results, in one write when it is small). `body`:
        bytes-like, or a list of buffers (a big value framed by reference: bulk.py)."""
        if type(body) is list:
            header = _header.pack(sum(len(part) for part in body))
            with self.write_lock:
                if self.held:
                    self._write_held()
                self._write_vector(header, *body)
            return
        header = _header.pack(len(body))
        with self.write_lock:
            if len(body) >= 65536:
                if self.held:
                    self._write_held()
                self._write_vector(header, body)  # no copy of a big body
                return
            frame = header + body
            if self.held:
                self.held.append(frame)
                self._write_held()
            else:
                self._write(frame)

    def hold(self, body):
        """Keeps a result frame to write together with the next ones: while the reader runs
        calls that are already buffered one after another (pipelined calls), their results
        leave in one write instead of one each (fewer system calls here, fewer wake-ups and
        packets for the reader on the other side). Held results are written before the
        reader blocks for input, before any other frame, when they reach _HOLD_BYTES or
        _HOLD_FRAMES, and by the standby when it takes reading over from a call that runs
        longer than session._TAKEOVER_SECONDS: no result waits behind a long call for
        longer."""
        if type(body) is list:
            self.send_bytes(body)  # big: never held
            return
        frame = _header.pack(len(body)) + body
        with self.write_lock:
            self.held.append(frame)
            self.held_bytes += len(frame)
            if self.held_bytes >= _HOLD_BYTES or len(self.held) >= self.hold_limit:
                self._write_held()

    def flush_held(self):
        """Writes the held results, if any."""
        if self.held:
            with self.write_lock:
                if self.held:
                    self._write_held()

    def _write_held(self):
        # Called with write_lock held.
        frames = self.held
        self.held = []
        self.held_bytes = 0
        self._write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _write(self, data):
        # Called with write_lock held.
        try:
            n = os.write(self.frame_out, data)
            if n < len(data):  # the pipe was full
                write_all(self.frame_out, memoryview(data)[n:])
        except OSError as exc:
            self._client_gone(exc)

    def _write_vector(self, *parts):
        # Called with write_lock held. One writev, then what a full pipe left over.
        try:
            n = os.writev(self.frame_out, parts)
            for part in parts:
                size = len(part)
                if n >= size:
                    n -= size
                    continue
                write_all(self.frame_out, memoryview(part)[n:])
                n = 0
        except OSError as exc:
            self._client_gone(exc)

    def _client_gone(self, exc):
        # Nobody will read results any more.
        self.log("cannot write to the client (%s): exiting" % exc)
        os._exit(1)

    # -- input -------------------------------------------------------------

    def _fill(self, want):
        """Reads more input into `inbuf` (blocking); False at the end of input."""
        self.flush_held()  # before waiting for input
        data = os.read(self.frame_in, max(want, 65536))
        if not data:
            return False
        self.inbuf += data
        self._batch_read()
        return True

    def _batch_read(self):
        """After a read: sets how many results may be held for one write from the number of
        whole frames now buffered (counted up to _HOLD_ALL_FROM)."""
        buf = self.inbuf
        end = len(buf)
        pos = n = 0
        unpack = _header.unpack_from
        while n < _HOLD_ALL_FROM and pos + 4 <= end:
            pos += 4 + unpack(buf, pos)[0]
            if pos > end:
                break
            n += 1
        self.hold_limit = _HOLD_SPLIT if _SPLIT_FROM <= n < _HOLD_ALL_FROM else _HOLD_FRAMES

    def read_frame(self):
        """The next frame's body (bytes-like, or for a big frame possibly a
        bigread.SplitBody: decode it with its own `decode()`), or None at a clean end of
        input."""
        buf = self.inbuf
        if not buf:
            # Nothing buffered (calls one after another): one read usually brings exactly one
            # whole frame, which needs no buffering at all.
            self.flush_held()  # before waiting for input
            data = os.read(self.frame_in, 65536)
            if not data:
                return None
            if len(data) >= 4:
                (size,) = _header.unpack_from(data)
                if len(data) == 4 + size and size <= self.max_frame:
                    return data[4:]
            buf += data
            self._batch_read()
        while len(buf) < 4:
            if not self._fill(4 - len(buf)):
                raise ProtocolFailure("the input ended inside a frame header")
        (size,) = _header.unpack_from(buf)
        if size > self.max_frame:
            raise ProtocolFailure("a frame of %d bytes exceeds the limit of %d bytes" % (size, self.max_frame))
        if size >= BIG_FRAME and len(buf) < 4 + size:
            return self._read_big(size)
        while len(buf) < 4 + size:
            have = len(buf) - 4
            if not self._fill(min(size - have, 1 << 20)):
                raise ProtocolFailure("the input ended inside a frame (%d of %d bytes)" % (have, size))
        with memoryview(buf) as view:
            body = bytes(view[4 : 4 + size])
        del buf[: 4 + size]
        return body

    def _read_big(self, size):
        """A big frame's body, read as it arrives (bigread.py): its big values straight into
        the bytes objects the call gets (a SplitBody), or, without any, the frame into one
        buffer of its size. No growing input buffer, no copy of a value out of the frame:
        each fresh buffer of a big value costs its page faults, which on some VMs cost more
        than the copy."""
        buf = self.inbuf
        arrived = bytearray(memoryview(buf)[4:])
        del buf[:]
        self.flush_held()  # before waiting for input
        try:
            return read_body(self.frame_in, arrived, size)
        except Truncated as exc:
            raise ProtocolFailure("the input ended inside a frame (%d of %d bytes)" % (exc.args[0], size))

    def frame_buffered(self):
        """True when `inbuf` holds a whole frame (read by this thread as the reader)."""
        buf = self.inbuf
        return len(buf) >= 4 and len(buf) >= 4 + _header.unpack_from(buf)[0]
