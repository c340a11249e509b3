"""The agent's standard streams, set up once at start-up (docs/protocol.md section 3);
what happens to each call's output afterwards is capture.py's.

- The original fd 1 and fd 2 are kept as private duplicates: frames (or nothing, for the
  file carrier) and the agent's own diagnostics.
- fd 0 is pointed at /dev/null (in session mode the real stdin carries frames).
- fd 1 and fd 2 are pointed at pipes drained by a thread (capture.FdCapture).
- `sys.stdout`/`sys.stderr` (and `sys.__stdout__`/`sys.__stderr__`) become routers
  (capture.RoutedText); C stdio's stdout is made unbuffered.
- faulthandler writes crashes (and, on SIGUSR1, every thread's stack) to the log.

A call may break any of this for the calls after it (`os.close(1)`, `os.dup2(devnull, 2)`,
`os.close(0)`, `sys.stdout = ...`): Streams.heal puts it back. It runs after a call that
left fd 1 or 2 or `sys.std*` changed (capture.OutputRouter.end sees that without a system
call) when no other call runs, and once whenever a session falls idle (fd 0 and copies kept
elsewhere can only be seen with fstat, which costs microseconds: never on every call).
"""

import os
import sys
import threading

from .capture import STDERR, STDOUT, FdCapture, OutputRouter, RoutedText, c_stdout_unbuffered, forked_child


def unbuffer_c_stdout():
    """Makes C stdio's `stdout` unbuffered, so that what C code prints reaches fd 1 (the
    capture pipe) at once and belongs to the call that printed it, with no fflush() at the
    end of every call (a ctypes call each time). Done at start-up, before anything was
    printed through it. False where it cannot be done: calls then flush instead
    (capture.flush_std_streams)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        stream = None
        for name in ("stdout", "__stdoutp"):  # glibc/musl, BSD/macOS
            try:
                stream = ctypes.c_void_p.in_dll(libc, name)
                break
            except ValueError:
                continue
        if stream is None or not stream.value:
            return False
        setvbuf = libc.setvbuf
        setvbuf.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
        setvbuf.restype = ctypes.c_int
        iob_unbuffered = 2  # _IONBF on glibc, musl and BSD
        ok = setvbuf(stream, None, iob_unbuffered, 0) == 0
    except Exception:
        return False
    return ok


def unbuffer_c_stdout_now():
    """Makes C stdio's stdout unbuffered and records whether that worked (calls flush it
    otherwise). Loads ctypes: ~5 ms."""
    c_stdout_unbuffered[0] = unbuffer_c_stdout()


def _identity(fd):
    """(st_dev, st_ino) of what `fd` is open on, or None when it is closed."""
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Streams(object):
    """The agent's standard streams as installed, and their repair (`heal`)."""

    def __init__(self, router, frame_fds, lost=None):
        self.router = router
        self.null_fd = os.open(os.devnull, os.O_RDWR)  # private: the model of fd 0
        self.null_id = _identity(self.null_fd)
        # fds the agent cannot do without (frames, log): a call that closed or replaced one
        # leaves nothing to repair; `lost(message)` then ends the agent (the client starts a
        # new session).
        self.frame_ids = dict((fd, _identity(fd)) for fd in frame_fds)
        self.lost = lost
        self.lock = threading.Lock()  # two calls ending at once: one repair

    def heal(self):
        """Puts back what a call changed: `sys.stdin/stdout/stderr`, `sys.__stdout__` and
        `sys.__stderr__`, fd 0 (/dev/null), fds 1 and 2 (new capture pipes). Called when no
        call runs."""
        with self.lock:
            self._heal()

    def _heal(self):
        router = self.router
        repaired = []
        try:
            for fd, ident in self.frame_ids.items():
                if _identity(fd) != ident:
                    if self.lost is not None:
                        self.lost("a call closed or replaced the agent's own fd %d (frames or log)" % fd)
                    return
            stdin = router.stdin
            if stdin is not None and (sys.stdin is not stdin or stdin.closed):
                if stdin.closed:
                    stdin = router.stdin = open(os.devnull, "r")
                sys.stdin = stdin
                repaired.append("sys.stdin")
            for name, value in (
                ("stdout", router.stdout),
                ("stderr", router.stderr),
                ("__stdout__", router.stdout),
                ("__stderr__", router.stderr),
            ):
                if value is not None and getattr(sys, name) is not value:
                    setattr(sys, name, value)
                    repaired.append("sys." + name)
            if _identity(0) != self.null_id:
                os.dup2(self.null_fd, 0)
                repaired.append("fd 0")
            capture = router.fd_capture
            if capture is not None:
                stale = capture.broken
                for fd in (1, 2):
                    ident = _identity(fd)
                    if ident is None:
                        # A placeholder, so that the new pipes cannot be given fd 1 or 2.
                        os.dup2(self.null_fd, fd)
                    if ident != capture.identities[fd]:
                        stale = True
                        repaired.append("fd %d" % fd)
                if stale:
                    capture.drain()
                    # dup2 over fds 1 and 2 ends the old pipes: the old capture thread
                    # drains what is left in them and exits.
                    router.fd_capture = FdCapture(router)
        except OSError as exc:  # e.g. out of file descriptors: the next heal tries again
            router.log("cannot repair the standard streams a call broke: %s" % exc)
            return
        if repaired:
            router.log("a call left %s changed: put back" % ", ".join(repaired))


def _after_fork_in_child():
    """In a process a call forked (a `multiprocessing` pool's workers, `os.fork()`): its
    prints go to fd 1 and 2, line by line. Those are the capture pipes, which the agent
    drains into the running call's output, as it does for subprocesses; the routers would
    have kept them in this process's copy of the call's buffers, which nobody reads."""
    forked_child[0] = True
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            stream = open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
        except (OSError, ValueError):
            continue
        setattr(sys, name, stream)
        setattr(sys, "__%s__" % name, stream)


def install(lost=None, unbuffer=True):
    """Redirects the process's standard streams; returns (router, frame_out_fd, frame_in_fd).
    `lost(message)` is called when a call broke one of the agent's own fds. `unbuffer=False`
    leaves C stdio's stdout to the caller, who must call `unbuffer_c_stdout_now()` before any
    call runs (the session does it right after its hello, off the start-up's critical path)."""
    sys.stdout.flush()
    sys.stderr.flush()
    frame_out = os.dup(1)
    log_fd = os.dup(2)
    frame_in = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    router = OutputRouter(log_fd)
    try:
        import faulthandler

        # A crash in C code dumps the Python stacks where the client can read them.
        faulthandler.enable(file=log_fd, all_threads=True)
        # `kill -USR1 <agent pid>` dumps every thread's stack: what is a stuck agent doing?
        try:
            # The C module: `signal` builds its enums on import (enum: ~4 ms of start-up).
            from _signal import SIGUSR1
        except ImportError:
            from signal import SIGUSR1

        faulthandler.register(SIGUSR1, file=log_fd, all_threads=True)
    except Exception:
        pass
    router.fd_capture = FdCapture(router)
    if unbuffer:
        unbuffer_c_stdout_now()
    sys.stdin = router.stdin = open(os.devnull, "r")
    sys.stdout = router.stdout = RoutedText(router, STDOUT, 1)
    sys.stderr = router.stderr = RoutedText(router, STDERR, 2)
    # The "original" streams are the routers too: code that writes to sys.__stdout__, or
    # restores sys.stdout from it after a redirect, still prints into its own call's output
    # (through fd 1 the bytes could only go to "the one running call"), and no call has to
    # flush a buffered wrapper over fd 1 and fd 2 when it ends.
    sys.__stdout__ = sys.stdout
    sys.__stderr__ = sys.stderr
    router.heal = Streams(router, (frame_out, frame_in, log_fd), lost).heal
    register_at_fork = getattr(os, "register_at_fork", None)
    if register_at_fork is not None:
        register_at_fork(after_in_child=_after_fork_in_child)
    return router, frame_out, frame_in
