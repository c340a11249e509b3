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
        """Collects what is still in flight for `output`, then unregisters it."""
        flush_std_streams()
        if self.fd_capture is not None:
            self.fd_capture.drain_pending()
        self.by_thread.pop(_get_ident(), None)
        self.active.pop(output, None)

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
    """fd 1 and fd 2 pointed at pipes; a thread hands what arrives to the running call."""

    def __init__(self, router):
        self.router = router
        self.lock = threading.Lock()
        self.draining = False  # a drain() is between taking the lock and handing bytes on
        self.read_fds = []
        for index, target in ((STDOUT, 1), (STDERR, 2)):
            r, w = os.pipe()
            os.dup2(w, target)
            os.close(w)
            os.set_blocking(r, False)
            self.read_fds.append((r, index))
        self.pending = readiness_check([r for r, _ in self.read_fds])
        self.thread = threading.Thread(target=self._loop, name="sremote-fd-capture", daemon=True)
        self.thread.start()

    def _loop(self):
        fds = [r for r, _ in self.read_fds]
        while True:
            try:
                select.select(fds, [], [])
            except InterruptedError:
                continue
            except OSError:
                return
            self.drain()

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
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if not data:
                    break
                out = self.router.only_running()
                if out is not None:
                    out.write_bytes(index, data)
                else:
                    try:
                        self.router.log_bytes(data)
                    except OSError:
                        pass


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


def flush_std_streams():
    for stream in (sys.__stdout__, sys.__stderr__):
        if stream is not None and type(stream) is not RoutedText:  # routers hold nothing back
            try:
                stream.flush()
            except Exception:
                pass
    if not c_stdout_unbuffered[0]:
        fflush = _libc_fflush[0] if _libc_fflush else _load_fflush()
        if fflush is not None:
            fflush(None)
