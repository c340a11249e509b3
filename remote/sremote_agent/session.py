"""The session carrier: a long-lived agent speaking 4-byte big-endian length-prefixed
MessagePack frames on stdin/stdout (docs/protocol.md sections 2 and 3).

The main thread reads frames and answers ping/cancel/shutdown itself; `call` and `probe`
go to a queue served in arrival order by a fixed pool of worker threads. A call that
changes process state (env, PATH, cwd) waits until nothing else runs and runs alone.
"""

import collections
import io
import os
import struct
import threading

from . import PROTOCOL_VERSION, capture, codec
from .main import agent_info
from .messages import MessageError, error_result, parse_client_message, protocol_error
from .runner import CallState, encode_result, execute
from .values import DecodeError

_header = struct.Struct(">I")
_QUEUED, _STARTED = 0, 1


class _Job(object):
    __slots__ = ("req", "state", "phase", "exclusive")

    def __init__(self, req):
        self.req = req
        self.state = CallState()
        self.phase = _QUEUED
        self.exclusive = req.exclusive


class ProtocolFailure(Exception):
    """The input stream can no longer be trusted: report and exit 3."""


class Session(object):
    def __init__(self, router, frame_in, frame_out, workers, max_frame):
        self.router = router
        self.frame_out = frame_out
        self.reader = io.open(frame_in, "rb", buffering=65536)
        self.workers = workers
        self.max_frame = max_frame
        self.write_lock = threading.Lock()
        self.cond = threading.Condition(threading.Lock())
        self.queue = collections.deque()
        self.jobs = {}
        self.running = 0
        self.exclusive_running = False
        self.stopping = False
        self.threads = []
        self.info = agent_info(workers, max_frame)

    # -- output ------------------------------------------------------------

    def send_bytes(self, body):
        header = _header.pack(len(body))
        with self.write_lock:
            try:
                if len(body) < 65536:
                    capture.write_all(self.frame_out, header + body)
                else:
                    n = os.writev(self.frame_out, [header, body])
                    if n < len(header) + len(body):
                        capture.write_all(self.frame_out, (header + body)[n:])
            except OSError as exc:
                # The client is gone: nobody will read results any more.
                self.router.log("cannot write to the client (%s): exiting" % exc)
                os._exit(1)

    def send(self, message):
        self.send_bytes(codec.packb(message, "message"))

    def send_result(self, result, call_id):
        self.send_bytes(encode_result(result, call_id, self.max_frame))

    # -- workers -----------------------------------------------------------

    def _take(self):
        with self.cond:
            while True:
                if self.queue:
                    job = self.queue[0]
                    if (self.running == 0) if job.exclusive else not self.exclusive_running:
                        self.queue.popleft()
                        self.running += 1
                        self.exclusive_running = job.exclusive
                        job.phase = _STARTED
                        return job
                elif self.stopping:
                    return None
                self.cond.wait()

    def _worker(self):
        while True:
            job = self._take()
            if job is None:
                return
            req = job.req
            try:
                sink = self._sink_for(req.id) if req.stream else None
                result = execute(req, self.router, job.state, self.info if req.kind == "probe" else None, sink)
                body = encode_result(result, req.id, self.max_frame)
            except BaseException as exc:  # an agent bug: still answer the call
                self.router.log("internal error in call %s: %r" % (req.id, exc))
                body = codec.packb(
                    dict(error_result(req.id, "internal", type(exc).__name__, str(exc)), id=req.id), "message"
                )
            with self.cond:
                self.jobs.pop(req.id, None)
                self.running -= 1
                if job.exclusive:
                    self.exclusive_running = False
                self.cond.notify_all()
            self.send_bytes(body)

    def _sink_for(self, call_id):
        names = capture.STREAM_NAMES

        def sink(index, text):
            self.send({"v": PROTOCOL_VERSION, "kind": "output", "id": call_id, "stream": names[index], "data": text})

        return sink

    # -- input -------------------------------------------------------------

    def _read_frame(self):
        """The next frame's body, or None at a clean end of input."""
        header = self.reader.read(4)
        if not header:
            return None
        if len(header) < 4:
            raise ProtocolFailure("the input ended inside a frame header")
        (size,) = _header.unpack(header)
        if size > self.max_frame:
            raise ProtocolFailure("a frame of %d bytes exceeds the limit of %d bytes" % (size, self.max_frame))
        body = self.reader.read(size)
        if len(body) < size:
            raise ProtocolFailure("the input ended inside a frame (%d of %d bytes)" % (len(body), size))
        return body

    def _handle(self, msg):
        """Dispatches one message; returns False when reading must stop (shutdown)."""
        kind, parsed = parse_client_message(msg)
        if kind == "call" or kind == "probe":
            req = parsed
            job = _Job(req)
            with self.cond:
                if req.id in self.jobs:
                    raise MessageError("a call with id %r is already in progress" % req.id, req.id)
                self.jobs[req.id] = job
                self.queue.append(job)
                self.cond.notify()
        elif kind == "cancel":
            self._cancel(parsed)
        elif kind == "ping":
            self.send({"v": PROTOCOL_VERSION, "kind": "pong", "id": parsed})
        elif kind == "shutdown":
            return False
        return True

    def _cancel(self, call_id):
        with self.cond:
            job = self.jobs.get(call_id)
            if job is None:
                return
            if job.phase == _QUEUED:
                self.queue.remove(job)
                del self.jobs[call_id]
                answer = True
            else:
                answer = False
                job.state.interrupt()
        if answer:
            self.send(error_result(call_id, "cancelled", "Cancelled", "the call was cancelled before it started"))

    def run(self):
        self.send({"v": PROTOCOL_VERSION, "kind": "hello", "agent": self.info})
        for n in range(self.workers):
            thread = threading.Thread(target=self._worker, name="sremote-worker-%d" % n, daemon=True)
            thread.start()
            self.threads.append(thread)
        try:
            while True:
                body = self._read_frame()
                if body is None:
                    break
                try:
                    msg = codec.unpackb(body)
                except DecodeError as exc:
                    raise ProtocolFailure("undecodable frame: %s" % exc)
                try:
                    if not self._handle(msg):
                        break
                except MessageError as exc:
                    self.router.log("protocol error: %s" % exc)
                    self.send(protocol_error(exc.call_id, str(exc)))
        except ProtocolFailure as exc:
            self.router.log("protocol error: %s" % exc)
            self.send(protocol_error("", str(exc)))
            return 3
        # shutdown or end of input: finish running and queued calls, then exit.
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            thread.join()
        return 0


def serve_session(workers, max_frame):
    router, frame_out, frame_in = capture.install()
    return Session(router, frame_in, frame_out, workers, max_frame).run()
