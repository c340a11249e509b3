"""The session carrier: a long-lived agent speaking 4-byte big-endian length-prefixed
MessagePack frames on stdin/stdout (docs/protocol.md sections 2 and 3). This module
schedules calls; frames.py reads and writes the frames.

One thread at a time reads frames and answers ping/cancel/shutdown itself; `call` and
`probe` run on at most `workers` threads, in arrival order (see "threads" below). A call
that changes process state (env, PATH, cwd) waits until nothing else runs and runs alone.

The agent ends with its client: `shutdown` finishes every call, but the end of the input
without one, or a closed output channel, means the client is gone. Queued calls are then
dropped (answered `cancelled` while the channel still takes it), running calls get
`grace` seconds to finish, and then the agent ends what they started (reaper.py) and exits:
a thread cannot be killed, the process can.
"""

import collections
import os
import select
import threading
import time

from . import PROTOCOL_VERSION, codec
from .bigread import SplitBody
from .capture import STREAM_NAMES
from .frames import FrameChannel, ProtocolFailure
from .info import agent_info
from .reaper import end_descendants
from .messages import MessageError, error_result, parse_client_message, protocol_error
from .runner import CallState, encode_result, execute
from .streaming import OutputStreamer
from .stdio import install, unbuffer_c_stdout_now
from .values import DecodeError

_QUEUED, _STARTED = 0, 1
_READ = object()  # the reader role, as returned by Session._next_role
# A call run on the reading thread holds up reading for at most this long: then an idle
# thread takes the reader role over (so cancels, pings and concurrent calls get read).
_TAKEOVER_SECONDS = 0.002
# While calls keep coming, one idle thread waits in steps of _TAKEOVER_SECONDS (the
# standby); after this long without a call it waits until it is woken.
_ACTIVE_SECONDS = 1.0
# With several workers, a call that arrives with more input behind it is run by the reader
# itself (the next calls waiting for it, or for the standby's takeover) while calls end
# within this long: handing reading over to another thread for every call cost ~3x the
# CPU per call in the agent, Node and sshd together (context switches, GIL hand-offs, and a
# write per result instead of one per group) — ~100 µs per call, more than such a call.
_INLINE_SECONDS = 0.0002
_monotonic = time.monotonic


class _Job(CallState):
    """A call or probe in this session: its request, where it is, and (as a CallState)
    whether a cancel can interrupt it."""

    __slots__ = ("req", "phase")

    def __init__(self, req):
        CallState.__init__(self)
        self.req = req
        self.phase = _QUEUED


class _Ending(object):
    """How a session ends when its client is gone."""

    __slots__ = ("grace", "client_gone", "checked_call")

    def __init__(self, grace):
        self.grace = grace  # seconds running calls get once the client is gone
        self.client_gone = False  # input ended without `shutdown`, or the output channel closed
        self.checked_call = -1.0  # `last_call` when the streams were last checked (idle)


class Session(FrameChannel):
    """The calls of one session and the threads that read and run them (frame I/O: the
    FrameChannel it extends)."""

    def __init__(self, router, frame_in, frame_out, workers, max_frame, grace=2.0):
        FrameChannel.__init__(self, frame_in, frame_out, max_frame, router.log)
        # The end of the session (one attribute: a Session with more than 30 made every
        # attribute access on the per-call path slower, CPython's shared-key dict limit).
        self.ending = _Ending(grace)
        self.router = router
        self.workers = workers
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
        # True while calls take a while (see _INLINE_SECONDS): a call with more input behind
        # it then hands reading over at once. Never with one worker.
        self.handoff = workers > 1
        self.streamer = OutputStreamer(self._send_output, self.log)  # output frames of streaming calls
        self.info = agent_info(workers, max_frame)

    # -- output (frames: FrameChannel) ----------------------------------------

    def send(self, message):
        self.send_bytes(codec.packb(message, "message"))

    # -- threads -----------------------------------------------------------
    #
    # Leader/follower: `workers + 1` threads share two roles. At most one thread reads
    # frames (the reader); at most `workers` run calls. A reader that receives a call it may
    # start at once runs it itself:
    # - when more input is already waiting and recent calls took a while (`handoff`), it
    #   first hands the reader role to an idle thread, so that concurrent calls start at once;
    # - otherwise it keeps the reader role while the call runs ("inline") and reads on
    #   afterwards: no thread wakes for a short call. A call that runs longer than
    #   _TAKEOVER_SECONDS loses the reader role to the standby (an idle thread that waits in
    #   steps of that length while calls keep coming), so cancels, pings and the calls behind
    #   it are still read (and from then on handed over at once: `handoff`).
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
                    # Calls take a while now: the next ones start on threads of their own.
                    self.inline_job = None
                    self.handoff = self.workers > 1
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
                ending = self.ending
                if self.running == 0 and ending.checked_call != self.last_call and now - self.last_call >= _ACTIVE_SECONDS:
                    # The session fell idle: look for what the per-call check cannot see
                    # without system calls (fd 0, fd 1/2 replaced while a copy was kept).
                    ending.checked_call = self.last_call
                    heal = self.router.heal
                    if heal is not None:
                        heal()
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
                if job is None:
                    break  # input over, or reader role handed over before the call
                still_reader = self._run(job)
                job = None  # its arguments are not kept while the next frame is read
                if not still_reader:
                    break  # taken over while it ran

    def _run(self, job):
        """Runs `job` and sends its result. True when this thread ran it as the reader and
        still holds the reader role (nobody took it over meanwhile)."""
        req = job.req
        started = _monotonic()
        sink = None
        try:
            if req.stream:
                sink = self.streamer.sink(req.id)
            result = execute(req, self.router, job, self.info if req.kind == "probe" else None, sink)
            if sink is not None:
                sink.close()  # its output frames before its result
            body = encode_result(result, req.id, self.max_frame)
        except BaseException as exc:  # an agent bug: still answer the call
            self.router.log("internal error in call %s: %r" % (req.id, exc))
            if sink is not None:
                try:
                    sink.close()
                except Exception:
                    pass  # the result carries the call's output
            body = codec.packb(
                dict(error_result(req.id, "internal", type(exc).__name__, str(exc)), id=req.id), "message"
            )
        slow = _monotonic() - started >= _INLINE_SECONDS
        with self.lock:
            self.handoff = slow and self.workers > 1
            self.jobs.pop(req.id, None)
            self.running -= 1
            if job.req.exclusive:
                self.exclusive_running = False
            still_reader = self.inline_job is job
            if still_reader:
                self.inline_job = None
            if self.queue or self.input_done or not self.reader_active:
                self._wake_for_work()  # else nobody has anything new to do
        if still_reader and self.frame_buffered():
            self.hold(body)  # the next call is here already: its result can leave with this one
        else:
            self.send_bytes(body)
        return still_reader

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
                body = self.read_frame()
                if body is None:
                    return self._end_input(client_gone=True)
                try:
                    msg = body.decode() if type(body) is SplitBody else codec.unpackb(body)
                except DecodeError as exc:
                    raise ProtocolFailure("undecodable frame: %s" % exc)
                body = None  # a big frame's buffer is not kept while its call runs
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
                        return self._end_input()
                except MessageError as exc:
                    self.router.log("protocol error: %s" % exc)
                    self.send(protocol_error(exc.call_id, str(exc)))
        except ProtocolFailure as exc:
            self.router.log("protocol error: %s" % exc)
            self.send(protocol_error("", str(exc)))
            self.exit_code = 3
            self.finished.set()
            return self._end_input()
        except BaseException as exc:  # an agent bug while reading: the stream is lost
            self.router.log("internal error while reading: %r" % (exc,))
            self.exit_code = 3
            self.finished.set()
            return self._end_input()

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

    def _end_input(self, client_gone=False):
        self.flush_held()
        with self.lock:
            self.input_done = True
            self.reader_active = False
            self.cond.notify_all()
        if client_gone:
            self._client_left("its input ended without a shutdown")
        return None

    # -- the client is gone --------------------------------------------------

    def _client_left(self, why, answer_dropped=True):
        """Queued calls are dropped, running ones get `grace` seconds (see the module's
        docstring)."""
        with self.lock:
            if self.ending.client_gone or self.exit_code != 0:
                return
            self.ending.client_gone = True
            dropped = list(self.queue)
            self.queue.clear()
            for job in dropped:
                self.jobs.pop(job.req.id, None)
            running = self.running
            self.cond.notify_all()
        self.log("the client is gone (%s): %d running call(s) get %g s to finish" % (why, running, self.ending.grace))
        threading.Thread(target=self._grace_then_end, name="sremote-grace", daemon=True).start()
        if answer_dropped:
            for job in dropped:
                self.send(error_result(job.req.id, "cancelled", "Cancelled", "the client went away before the call started"))

    def _grace_then_end(self):
        if self.finished.wait(self.ending.grace):
            return  # every call ended (run() returns)
        with self.lock:
            running = self.running
        if running:
            self.log("%d call(s) still running after %g s: ending them" % (running, self.ending.grace))
        self.abandon(1)

    def abandon(self, status):
        """Ends the processes calls started, writes what is held, and exits at once."""
        try:
            end_descendants(self.log)
        except Exception as exc:
            self.log("cannot end the processes of calls: %r" % (exc,))
        try:
            if self.held and self.write_lock.acquire(timeout=1.0):
                try:
                    self._write_held()
                finally:
                    self.write_lock.release()
        except Exception:
            pass
        os._exit(status)

    def _client_gone(self, exc):
        # Called with write_lock held when writing failed: nobody reads results any more.
        # Later writes fail at once (an fd that is never open) and land here again.
        if self.frame_out >= 0:
            self.log("cannot write to the client (%s)" % exc)
            self.frame_out = -1
            self.held = []
            self.held_bytes = 0
            self._client_left("writing to it failed", answer_dropped=False)

    def _watch_output(self):
        """Waits until the output channel reports an error or hang-up (the client or sshd
        closed it): the client is gone even if the input has not ended."""
        try:
            poller = select.poll()
            poller.register(self.frame_out, 0)  # errors and hang-ups only
            while True:
                try:
                    events = poller.poll()
                except InterruptedError:
                    continue
                if events:
                    break
        except (OSError, ValueError, AttributeError):
            return
        self._client_left("its output channel closed", answer_dropped=False)

    def _send_output(self, call_id, index, text):
        self.send({"v": PROTOCOL_VERSION, "kind": "output", "id": call_id, "stream": STREAM_NAMES[index], "data": text})

    # -- input -------------------------------------------------------------

    def _input_pending(self):
        """True when another frame (or part of one) has arrived and is not yet handled, and
        a second worker should start it now.

        With one worker, or while calls end quickly (`handoff` false), the reader runs the
        call itself: a call that arrives next waits for this one (or, behind a long call, for
        the standby's takeover after _TAKEOVER_SECONDS, which also reads a ping or cancel).
        Handing reading over would cost every pipelined call two thread hand-offs (and the
        check, a system call per call)."""
        if not self.handoff:
            return False
        return bool(self.inbuf) or self.input_waiting()

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
        # After the hello, before any call can run: the client reads the hello and sends its
        # first call meanwhile (a round trip, which over a WAN hides this entirely).
        unbuffer_c_stdout_now()
        threading.Thread(target=self._watch_output, name="sremote-output-watch", daemon=True).start()
        threads = []
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name="sremote-thread-%d" % (n + 1), daemon=True)
            thread.start()
            threads.append(thread)
        # The main thread is one of the `workers + 1` threads too.
        self._loop()
        # On a protocol failure the stream cannot be trusted: exit without waiting for calls.
        self.finished.wait()
        if self.exit_code != 0:
            # Calls still running were given up: end what they started.
            with self.lock:
                running = self.running
            if running:
                end_descendants(self.log)
        else:
            # Threads still sending results finish first. With the client gone, one of them
            # may be a reader blocked on an input that never ends: bounded then.
            timeout = self.ending.grace + 1.0 if self.ending.client_gone else None
            for thread in threads:
                thread.join(timeout)
        return self.exit_code


def serve_session(workers, max_frame, grace=2.0):
    box = []

    def lost(message):
        # A call broke an fd the agent cannot do without: exit, so that the client starts a
        # new session (nothing written to an fd that may now be someone else's file).
        box[0].log("%s: exiting" % message)
        box[0].abandon(1)

    router, frame_out, frame_in = install(lost, unbuffer=False)
    session = Session(router, frame_in, frame_out, workers, max_frame, grace)
    box.append(session)
    return session.run()
