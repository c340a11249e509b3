"""The agent's standard streams, set up once at start-up (docs/protocol.md section 3);
what happens to each call's output afterwards is capture.py's.

- The original fd 1 and fd 2 are kept as private duplicates: frames (or nothing, for the
  file carrier) and the agent's own diagnostics.
- fd 0 is pointed at /dev/null (in session mode the real stdin carries frames).
- fd 1 and fd 2 are pointed at pipes drained by a thread (capture.FdCapture).
- `sys.stdout`/`sys.stderr` (and `sys.__stdout__`/`sys.__stderr__`) become routers
  (capture.RoutedText); C stdio's stdout is made unbuffered.
- faulthandler writes crashes (and, on SIGUSR1, every thread's stack) to the log.
"""

import os
import sys

from .capture import STDERR, STDOUT, FdCapture, OutputRouter, RoutedText, c_stdout_unbuffered


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


def install():
    """Redirects the process's standard streams; returns (router, frame_out_fd, frame_in_fd)."""
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
        import signal

        faulthandler.register(signal.SIGUSR1, file=log_fd, all_threads=True)
    except Exception:
        pass
    router.fd_capture = FdCapture(router)
    c_stdout_unbuffered[0] = unbuffer_c_stdout()
    sys.stdin = open(os.devnull, "r")
    sys.stdout = RoutedText(router, STDOUT, 1)
    sys.stderr = RoutedText(router, STDERR, 2)
    # The "original" streams are the routers too: code that writes to sys.__stdout__, or
    # restores sys.stdout from it after a redirect, still prints into its own call's output
    # (through fd 1 the bytes could only go to "the one running call"), and no call has to
    # flush a buffered wrapper over fd 1 and fd 2 when it ends.
    sys.__stdout__ = sys.stdout
    sys.__stderr__ = sys.stderr
    return router, frame_out, frame_in
