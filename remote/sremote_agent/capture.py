"""Per-call stdout/stderr capture (docs/protocol.md section 3): what each call printed,
routed to that call (the streams are set up once at start-up by stdio.py).

- `sys.stdout`/`sys.stderr` are routers (RoutedText): text goes to the output of the call
  running on the writing thread (or, from another thread, to the only running call).
- Bytes written at the fd level (`os.write(1, ...)`, subprocesses, C code) arrive in pipes
  drained by a thread (FdCapture) and go to the running call when exactly one runs, else
  to the agent's own stderr log.
"""

import codecs
import io
import os
import select
import sys
import threading

from .fdio import readiness_check, write_all

_get_ident = threading.get_ident

STDOUT = 0
STDERR = 1
STREAM_NAMES = ("stdout", "stderr")


def _utf8_len(text):
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def clean_text(text):
    """`text` made encodable as UTF-8 (lone surrogates escaped)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


# One lock for the writes of every call's output: a write holds it for a few bytecodes, and
# a lock per call cost every call its allocation.
_output_lock = threading.Lock()


class CallOutput(object):
    """What one call printed, per stream, capped at `limit` UTF-8 bytes each. Its buffers are
    made by the first write: most calls print nothing."""

    __slots__ = ("limit", "parts", "sizes", "truncated", "sink", "tee", "decoders")

    def __init__(self, limit, sink=None, tee=None):
        self.limit = limit
        self.tee = tee  # tee(text): a copy of stderr for the agent's own stderr
        self.parts = None  # ([stdout texts], [stderr texts]) once something was written
        self.sizes = None  # [stdout bytes, stderr bytes] likewise
        self.truncated = False
        self.sink = sink  # sink(stream_index, text) for streaming calls
        self.decoders = None  # [stdout, stderr] incremental UTF-8 decoders for fd-level bytes

    def write(self, index, text):
        if not text:
            return
        n = _utf8_len(text)
        with _output_lock:
            if self.parts is None:
                self.parts = ([], [])
                self.sizes = [0, 0]
            room = self.limit - self.sizes[index]
            if n > room:
                self.truncated = True
                if room <= 0:
                    return
                text = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
                n = _utf8_len(text)
                if not text:
                    return
            self.sizes[index] += n
            self.parts[index].append(text)
        if index == STDERR and self.tee is not None:
            self.tee(text)
        if self.sink is not None:
            self.sink(index, text)

    def write_bytes(self, index, data):
        with _output_lock:
            if self.decoders is None:
                self.decoders = [None, None]
            decoder = self.decoders[index]
            if decoder is None:
                decoder = self.decoders[index] = codecs.getincrementaldecoder("utf-8")("replace")
        self.write(index, decoder.decode(data))

    def finish(self):
        """(stdout, stderr, truncated) once the call is over."""
        if self.decoders is not None:
            for index in (STDOUT, STDERR):
                decoder = self.decoders[index]
                if decoder is not None:
                    self.write(index, decoder.decode(b"", True))
        if self.parts is None:
            return "", "", self.truncated  # nothing printed: the common case
        return (
            clean_text("".join(self.parts[STDOUT])),
            clean_text("".join(self.parts[STDERR])),
            self.truncated,
        )


class OutputRouter(object):
    """Knows which call each thread belongs to, and which calls are running.

    No lock: each call registers and unregisters itself from the one thread that runs it,
    so no two threads ever change the same key, and each dict operation is atomic."""

    def __init__(self, log_fd):
        self.log_fd = log_fd
        self.by_thread = {}  # thread ident -> its call's CallOutput
        self.active = {}  # the running calls' CallOutputs (as keys, in start order)
        self.fd_capture = None
        # The agent's own standard stream objects (stdio.install) and what puts fds 0-2 and
        # `sys.std*` back when a call broke them (stdio.Streams.heal).
        self.stdin = self.stdout = self.stderr = None
        self.heal = None

    def current(self):
        out = self.by_thread.get(_get_ident())
        if out is None:
            active = self.active
            if len(active) == 1:
                for out in active:
                    return out
        return out

    def begin(self, output):
        """Registers `output` as the running call of this thread."""
        self.by_thread[_get_ident()] = output
        self.active[output] = None

    def end(self, output):
        """Collects what is still in flight for `output`, then unregisters it. When a call
        left the standard streams broken (fd 1 or 2 closed or replaced: their capture pipe
        reports its end; `sys.std*` replaced: seen here) and no other call runs, they are put
        back, so that one call cannot break the session for the calls after it. The check
        costs no system call: a few identity tests and a flag."""
        s = sys
        out = self.stdout
        err = self.stderr
        if s.stdout is out and s.stderr is err and s.__stdout__ is out and s.__stderr__ is err and s.stdin is self.stdin:
            intact = True
            if not c_stdout_unbuffered[0]:
                flush_c_stdout()
        else:
            intact = False
            flush_std_streams()
        capture = self.fd_capture
        if capture is not None:
            capture.drain_pending()
            if capture.broken:
                intact = False
        self.by_thread.pop(_get_ident(), None)
        active = self.active
        active.pop(output, None)
        if not intact and not active and self.heal is not None:
            self.heal()

    def only_running(self):
        active = self.active
        if len(active) == 1:
            for out in active:
                return out
        return None

    def log_bytes(self, data):
        write_all(self.log_fd, data)

    def log_text(self, text):
        """Raw text on the agent's own stderr (a copy of a call's stderr)."""
        try:
            write_all(self.log_fd, text.encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    def log(self, message):
        """One diagnostic line on the agent's own stderr."""
        line = "sremote-agent: %s\n" % message.replace("\n", " | ")
        try:
            write_all(self.log_fd, line.encode("utf-8", "backslashreplace"))
        except OSError:
            pass


class RoutedText(io.TextIOBase):
    """Stands in for sys.stdout / sys.stderr: each call captures its own prints."""

    def __init__(self, router, index, fd):
        io.TextIOBase.__init__(self)
        self._router = router
        self._index = index
        self._fd = fd
        self.buffer = RoutedBinary(self)

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    @property
    def name(self):
        return "<%s>" % STREAM_NAMES[self._index]

    @property
    def line_buffering(self):
        return False

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def flush(self):
        pass

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        out = self._router.current()
        if out is not None:
            out.write(self._index, text)
        else:
            self._router.log_bytes(text.encode("utf-8", "backslashreplace"))
        return len(text)


class RoutedBinary(io.RawIOBase):
    """`sys.stdout.buffer`: bytes decoded as UTF-8 and routed like text."""

    def __init__(self, text):
        io.RawIOBase.__init__(self)
        self._text = text

    def writable(self):
        return True

    def fileno(self):
        return self._text.fileno()

    def write(self, data):
        data = bytes(data)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


class FdCapture(object):
    """fd 1 and fd 2 pointed at pipes; a thread hands what arrives to the running call.

    The agent keeps no other copy of the pipes' write ends: when a call closes fd 1 or 2 or
    points it elsewhere (`os.close(1)`, `os.dup2(devnull, 1)`), that pipe reports its end,
    `broken` becomes True, and stdio.Streams.heal replaces this capture with a new one. The
    thread stops watching a pipe that ended (no busy loop) and exits once both ended."""

    def __init__(self, router):
        self.router = router
        self.lock = threading.Lock()
        self.draining = False  # a drain() is between taking the lock and handing bytes on
        self.broken = False  # a pipe's write end is gone: fd 1 or 2 was closed or replaced
        self.ended = set()  # read ends that reported their end
        self.read_fds = []
        self.identities = {}  # 1 / 2 -> (st_dev, st_ino) of its pipe
        for index, target in ((STDOUT, 1), (STDERR, 2)):
            r, w = os.pipe()
            os.dup2(w, target)
            st = os.fstat(w)
            os.close(w)
            self.identities[target] = (st.st_dev, st.st_ino)
            os.set_blocking(r, False)
            self.read_fds.append((r, index))
        self.pending = readiness_check([r for r, _ in self.read_fds])
        self.thread = threading.Thread(target=self._loop, name="sremote-fd-capture", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            fds = [r for r, _ in self.read_fds if r not in self.ended]
            if not fds:
                break
            try:
                select.select(fds, [], [])
            except InterruptedError:
                continue
            except OSError:
                return
            self.drain()
        # Both pipes ended: this capture was replaced (stdio.Streams.heal). The per-call
        # check may still hold its readiness set: only the read ends are closed here.
        with self.lock:
            for r, _ in self.read_fds:
                try:
                    os.close(r)
                except OSError:
                    pass
            self.read_fds = []

    def drain_pending(self):
        """`drain()`, when a pipe has bytes waiting. Called at the end of every call: a
        readiness check instead of a non-blocking read of each empty pipe (see
        docs/performance.md)."""
        if self.pending():
            self.drain()
        elif self.draining:
            # The capture thread may have read the last bytes already and not yet handed
            # them on: its drain holds the lock until it has. (It sets `draining` before it
            # reads, so a drain that emptied the pipes before the check above is seen here.)
            with self.lock:
                pass

    def drain(self):
        """Reads everything waiting in the pipes and hands it on."""
        with self.lock:
            self.draining = True
            try:
                self._drain_locked()
            finally:
                self.draining = False

    def _drain_locked(self):
        for fd, index in self.read_fds:
            if fd in self.ended:
                continue
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if not data:
                    # Every write end is gone: fd 1 (or 2) was closed or replaced.
                    self.ended.add(fd)
                    self.broken = True
                    break
                out = self.router.only_running()
                if out is not None:
                    out.write_bytes(index, data)
                else:
                    try:
                        self.router.log_bytes(data)
                    except OSError:
                        pass


# [True] in a process a call forked (os.fork, multiprocessing's "fork" start method): set by
# the at-fork hook stdio.install registers; runner.py ends such a process if it returns into
# the agent (it must never write frames, read the client's input or drain the pipes).
forked_child = [False]

_libc_fflush = []
# True once C stdio's stdout is unbuffered (stdio.unbuffer_c_stdout, at start-up): then no
# call needs an fflush() through ctypes.
c_stdout_unbuffered = [False]


def _load_fflush():
    # C code's printf output sits in libc's buffer (fd 1 is a pipe): flush_std_streams flushes
    # it so that it reaches the call that printed it.
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        _libc_fflush.append(libc.fflush)
    except Exception:
        _libc_fflush.append(None)
    return _libc_fflush[0]


def flush_c_stdout():
    """fflush(NULL) where C stdio's stdout could not be made unbuffered."""
    fflush = _libc_fflush[0] if _libc_fflush else _load_fflush()
    if fflush is not None:
        fflush(None)


def flush_std_streams():
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        if stream is not None and type(stream) is not RoutedText:  # routers hold nothing back
            try:
                stream.flush()
            except Exception:
                pass
    if not c_stdout_unbuffered[0]:
        flush_c_stdout()
