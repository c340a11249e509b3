"""The session carrier: a long-lived agent speaking 4-byte big-endian length-prefixed
MessagePack frames on stdin/stdout (docs/protocol.md sections 2 and 3).

One thread at a time reads frames and answers ping/cancel/shutdown itself; `call` and
`probe` run on at most `workers` threads, in arrival order (see "threads" below). A call
that changes process state (env, PATH, cwd) waits until nothing else runs and runs alone.
"""

import collections
import os
import struct
import threading
import time

from . import PROTOCOL_VERSION, capture, codec
from .main import agent_info
from .messages import MessageError, error_result, parse_client_message, protocol_error
from .runner import CallState, encode_result, execute
from .values import DecodeError

_header = struct.Struct(">I")
_QUEUED, _STARTED = 0, 1
_READ = object()  # the reader role, as returned by Session._next_role
# A call run on the reading thread holds up reading for at most this long: then an idle
# thread takes the reader role over (so cancels, pings and concurrent calls get read).
_TAKEOVER_SECONDS = 0.002
# While calls keep coming, one idle thread waits in steps of _TAKEOVER_SECONDS (the
# standby); after this long without a call it waits until it is woken.
_ACTIVE_SECONDS = 1.0
# Most result bytes / frames held for one write (see Session._hold). Not more frames: the
# client works on the results of one write while the agent runs the next calls, and with
# 64 calls in flight a write of every 64 results left each side idle while the other
# worked (docs/performance.md, "Batching").
_HOLD_BYTES = 64 * 1024
_HOLD_FRAMES = 16


class _Job(CallState):
    """A call or probe in this session: its request, where it is, and (as a CallState)
    whether a cancel can interrupt it."""

    __slots__ = ("req", "phase")

    def __init__(self, req):
        CallState.__init__(self)
        self.req = req
        self.phase = _QUEUED


class ProtocolFailure(Exception):
    """The input stream can no longer be trusted: report and exit 3."""


class Session(object):
    def __init__(self, router, frame_in, frame_out, workers, max_frame):
        self.router = router
        self.frame_out = frame_out
        self.frame_in = frame_in
        self.inbuf = bytearray()
        self._frame_in_ready = capture.readiness_check([frame_in])
        self.workers = workers
        self.max_frame = max_frame
        self.write_lock = threading.Lock()
        # `with self.lock` holds the condition's lock: the same as `with self.cond`, without
        # the Python-level __enter__/__exit__ of Condition on every call.
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.queue = collections.deque()
        self.jobs = {}
        self.running = 0
        self.exclusive_running = False
        self.reader_active = False
        self.input_done = False
        self.finished = threading.Event()
        self.exit_code = 0
        # The call the reader runs itself while keeping the reader role; None once it ends
        # or once another thread took the reader role over.
        self.inline_job = None
        self.inline_since = 0.0
        self.last_call = 0.0
        self.standby = 0  # idle threads waiting in steps of _TAKEOVER_SECONDS
        # Result frames not yet written (see _hold); guarded by write_lock.
        self.held = []
        self.held_bytes = 0
        self.threads = []
        self.info = agent_info(workers, max_frame)

    # -- output ------------------------------------------------------------

    def send_bytes(self, body):
        """Writes one frame (after any held results, in one write when it is small)."""
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

    def _hold(self, body):
        """Keeps a result frame to write together with the next ones: while the reader runs
        calls that are already buffered one after another (pipelined calls), their results
        leave in one write instead of one each (fewer system calls here, fewer wake-ups and
        packets for the reader on the other side). Held results are written before the
        reader blocks for input, before any other frame, when they reach _HOLD_BYTES or
        _HOLD_FRAMES, and by the standby when it takes reading over from a call that runs
        longer than _TAKEOVER_SECONDS: no result waits behind a long call for longer."""
        frame = _header.pack(len(body)) + body
        with self.write_lock:
            self.held.append(frame)
            self.held_bytes += len(frame)
            if self.held_bytes >= _HOLD_BYTES or len(self.held) >= _HOLD_FRAMES:
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
                capture.write_all(self.frame_out, memoryview(data)[n:])
        except OSError as exc:
            self._client_gone(exc)

    def _write_vector(self, header, body):
        # Called with write_lock held.
        try:
            n = os.writev(self.frame_out, [header, body])
            if n < len(header):
                capture.write_all(self.frame_out, memoryview(header)[n:])
                n = len(header)
            if n - len(header) < len(body):
                capture.write_all(self.frame_out, memoryview(body)[n - len(header) :])
        except OSError as exc:
            self._client_gone(exc)

    def _client_gone(self, exc):
        # Nobody will read results any more.
        self.router.log("cannot write to the client (%s): exiting" % exc)
        os._exit(1)

    def send(self, message):
        self.send_bytes(codec.packb(message, "message"))

    def send_result(self, result, call_id):
        self.send_bytes(encode_result(result, call_id, self.max_frame))

    # -- threads -----------------------------------------------------------
    #
    # Leader/follower: `workers + 1` threads share two roles. At most one thread reads
    # frames (the reader); at most `workers` run calls. A reader that receives a call it may
    # start at once runs it itself:
    # - when more input is already waiting, it first hands the reader role to an idle
    #   thread, so that concurrent calls start at once;
    # - otherwise it keeps the reader role while the call runs ("inline") and reads on
    #   afterwards: no thread wakes for a short call. A call that runs longer than
    #   _TAKEOVER_SECONDS loses the reader role to the standby (an idle thread that waits in
    #   steps of that length while calls keep coming), so cancels and pings are still read.
    # Waking a thread costs a context switch and GIL hand-offs on the call's critical path;
    # on the measured VM that was most of a short call's time.
    # Calls that cannot start yet wait in `queue`, in arrival order, for a thread that
    # finishes its call.

    def _can_start(self, job):
        return (self.running == 0) if job.req.exclusive else not self.exclusive_running

    def _start(self, job):
        """Marks `job` running (called with `cond` held)."""
        self.running += 1
        self.exclusive_running = job.req.exclusive
        job.phase = _STARTED

    def _next_role(self):
        """Waits until this thread has something to do: a job to run, the reader role, or
        nothing more ever (None)."""
        with self.lock:
            while True:
                if self.exit_code != 0:
                    return None
                if self.queue and self.running < self.workers and self._can_start(self.queue[0]):
                    job = self.queue.popleft()
                    self._start(job)
                    return job
                if not self.reader_active and not self.input_done:
                    self.reader_active = True
                    return _READ
                if self.input_done and not self.queue and self.running == 0:
                    self.finished.set()
                    self.cond.notify_all()
                    return None
                now = time.monotonic()
                job = self.inline_job
                if job is not None and now - self.inline_since >= _TAKEOVER_SECONDS:
                    # The reader has been running a call for a while: read in its place
                    # (and write the results it held back to send with this call's: _loop).
                    self.inline_job = None
                    return _READ
                if self.standby == 0 and now - self.last_call < _ACTIVE_SECONDS:
                    self.standby += 1
                    try:
                        wait = _TAKEOVER_SECONDS
                        if job is not None:
                            wait = max(_TAKEOVER_SECONDS - (now - self.inline_since), 0.0001)
                        self.cond.wait(wait)
                    finally:
                        self.standby -= 1
                    continue
                self.cond.wait()

    def _loop(self):
        while True:
            role = self._next_role()
            if role is None:
                return
            if role is not _READ:
                self._run(role)
                continue
            # A new reader: results another reader held back for one write leave now (a
            # reader that took over from a long call must not keep them waiting for it).
            self.flush_held()
            while True:
                job = self._read_until_job()
                if job is None or not self._run(job):
                    break  # input over, or reader role handed over before the call or taken over while it ran

    def _run(self, job):
        """Runs `job` and sends its result. True when this thread ran it as the reader and
        still holds the reader role (nobody took it over meanwhile)."""
        req = job.req
        try:
            sink = self._sink_for(req.id) if req.stream else None
            result = execute(req, self.router, job, self.info if req.kind == "probe" else None, sink)
            body = encode_result(result, req.id, self.max_frame)
        except BaseException as exc:  # an agent bug: still answer the call
            self.router.log("internal error in call %s: %r" % (req.id, exc))
            body = codec.packb(
                dict(error_result(req.id, "internal", type(exc).__name__, str(exc)), id=req.id), "message"
            )
        with self.lock:
            self.jobs.pop(req.id, None)
            self.running -= 1
            if job.req.exclusive:
                self.exclusive_running = False
            still_reader = self.inline_job is job
            if still_reader:
                self.inline_job = None
            if self.queue or self.input_done or not self.reader_active:
                self._wake_for_work()  # else nobody has anything new to do
        if still_reader and self._frame_buffered():
            self._hold(body)  # the next call is here already: its result can leave with this one
        else:
            self.send_bytes(body)
        return still_reader

    def _frame_buffered(self):
        """True when `inbuf` holds a whole frame (read by this thread as the reader)."""
        buf = self.inbuf
        return len(buf) >= 4 and len(buf) >= 4 + _header.unpack_from(buf)[0]

    def _wake_for_work(self):
        """After a call ended (called with `cond` held): wakes only the threads that now have
        something to do. Waking every idle thread after every call cost each call several
        context switches and GIL hand-offs for nothing."""
        if self.input_done and not self.queue and self.running == 0:
            self.cond.notify_all()  # the session is over: every thread must see it
            return
        wanted = 0
        if self.queue and self._can_start(self.queue[0]):
            # After an exclusive call, several queued calls may start at once.
            wanted = 1 if self.queue[0].req.exclusive else min(len(self.queue), self.workers - self.running)
        if not self.reader_active and not self.input_done:
            wanted += 1
        # This thread comes back for work itself once its result is sent.
        if wanted > 1:
            self.cond.notify(wanted - 1)

    def _read_until_job(self):
        """Reads frames as the reader. Returns a job this thread must run now (having given
        up the reader role), or None when the input has ended or failed."""
        try:
            while True:
                body = self._read_frame()
                if body is None:
                    return self._end_input(0)
                try:
                    msg = codec.unpackb(body)
                except DecodeError as exc:
                    raise ProtocolFailure("undecodable frame: %s" % exc)
                try:
                    kind, parsed = parse_client_message(msg)
                    if kind == "call" or kind == "probe":
                        job = self._admit(parsed)
                        if job is not None:
                            return job
                    elif kind == "cancel":
                        self._cancel(parsed)
                    elif kind == "ping":
                        self.send({"v": PROTOCOL_VERSION, "kind": "pong", "id": parsed})
                    elif kind == "shutdown":
                        return self._end_input(0)
                except MessageError as exc:
                    self.router.log("protocol error: %s" % exc)
                    self.send(protocol_error(exc.call_id, str(exc)))
        except ProtocolFailure as exc:
            self.router.log("protocol error: %s" % exc)
            self.send(protocol_error("", str(exc)))
            self.exit_code = 3
            self.finished.set()
            return self._end_input(3)
        except BaseException as exc:  # an agent bug while reading: the stream is lost
            self.router.log("internal error while reading: %r" % (exc,))
            self.exit_code = 3
            self.finished.set()
            return self._end_input(3)

    def _admit(self, req):
        """Registers a call; returns it when this thread should run it now."""
        job = _Job(req)
        with self.lock:
            if req.id in self.jobs:
                raise MessageError("a call with id %r is already in progress" % req.id, req.id)
            self.jobs[req.id] = job
            if not self.queue and self.running < self.workers and self._can_start(job):
                self._start(job)
                now = time.monotonic()
                self.last_call = now
                if self._input_pending():
                    self.reader_active = False
                    self.cond.notify()  # an idle thread becomes the reader
                else:
                    self.inline_job = job
                    self.inline_since = now
                    if self.standby == 0:
                        self.cond.notify()  # an idle thread becomes the standby
                return job
            self.queue.append(job)
            return None

    def _end_input(self, code):
        self.flush_held()
        with self.lock:
            self.input_done = True
            self.reader_active = False
            self.cond.notify_all()
        return None

    def _sink_for(self, call_id):
        names = capture.STREAM_NAMES

        def sink(index, text):
            self.send({"v": PROTOCOL_VERSION, "kind": "output", "id": call_id, "stream": names[index], "data": text})

        return sink

    # -- input -------------------------------------------------------------

    def _fill(self, want):
        """Reads more input into `inbuf` (blocking); False at the end of input."""
        self.flush_held()  # before waiting for input
        data = os.read(self.frame_in, max(want, 65536))
        if not data:
            return False
        self.inbuf += data
        return True

    def _input_pending(self):
        """True when another frame (or part of one) has arrived and is not yet handled, and
        a second worker could start it now.

        With one worker the reader always runs the call itself: a call that arrives next
        waits for this one anyway, and a ping or cancel behind a long call is read by the
        standby after _TAKEOVER_SECONDS. Handing reading over would cost every pipelined
        call two thread hand-offs (and the check, a system call per call)."""
        if self.workers == 1:
            return False
        return bool(self.inbuf) or self._frame_in_ready()

    def _read_frame(self):
        """The next frame's body, or None at a clean end of input."""
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
        while len(buf) < 4:
            if not self._fill(4 - len(buf)):
                raise ProtocolFailure("the input ended inside a frame header")
        (size,) = _header.unpack_from(buf)
        if size > self.max_frame:
            raise ProtocolFailure("a frame of %d bytes exceeds the limit of %d bytes" % (size, self.max_frame))
        while len(buf) < 4 + size:
            have = len(buf) - 4
            if not self._fill(min(size - have, 1 << 20)):
                raise ProtocolFailure("the input ended inside a frame (%d of %d bytes)" % (have, size))
        with memoryview(buf) as view:
            body = bytes(view[4 : 4 + size])
        del buf[: 4 + size]
        return body

    def _cancel(self, call_id):
        with self.lock:
            job = self.jobs.get(call_id)
            if job is None:
                return
            if job.phase == _QUEUED:
                self.queue.remove(job)
                del self.jobs[call_id]
                answer = True
            else:
                answer = False
                job.interrupt()
        if answer:
            self.send(error_result(call_id, "cancelled", "Cancelled", "the call was cancelled before it started"))

    def run(self):
        self.send({"v": PROTOCOL_VERSION, "kind": "hello", "agent": self.info})
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name="sremote-thread-%d" % (n + 1), daemon=True)
            thread.start()
            self.threads.append(thread)
        # The main thread is one of the `workers + 1` threads too.
        self._loop()
        # On a protocol failure the stream cannot be trusted: exit without waiting for calls.
        self.finished.wait()
        if self.exit_code == 0:
            for thread in self.threads:
                thread.join()
        return self.exit_code


def serve_session(workers, max_frame):
    router, frame_out, frame_in = capture.install()
    return Session(router, frame_in, frame_out, workers, max_frame).run()
