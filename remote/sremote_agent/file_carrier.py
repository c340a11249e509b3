"""The file carrier: one request file in, one response file out (docs/protocol.md sections
3 and 4). The response is written to `<response>.part` (0600) and renamed, so a reader
never sees half a response; a `.part` that cannot be completed (full or read-only temp
folder) is removed, and the agent exits 5 with a message saying what is wrong.

A call whose request carries `timeoutMs` is ended at that deadline (counted from the
agent's start): by then its client has given up on it, and an agent whose client is gone
must not run on. The processes it started are ended too (reaper.py); a response saying so
is written only while the request file is still there (the client deletes it when it gives
up, and a response nobody will read would be left behind)."""

import errno
import os
import threading

from . import codec
from .fdio import write_all
from .info import agent_info
from .messages import MessageError, check_envelope, error_result, parse_request, protocol_error
from .runner import CallState, encode_result, execute
from .stdio import install
from .values import DecodeError

# Exit status when the response cannot be written because of the temp folder itself.
EXIT_TMP_UNWRITABLE = 5
_TMP_ERRNOS = {
    errno.ENOSPC: "the temp folder's file system is full",
    errno.EDQUOT: "the disk quota of the temp folder is exceeded",
    errno.EROFS: "the temp folder is on a read-only file system",
    errno.EACCES: "the temp folder is not writable",
    errno.EPERM: "the temp folder is not writable",
}


def write_response(path, body):
    part = path + ".part"
    try:
        os.unlink(part)
    except OSError:
        pass
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            write_all(fd, body)
        finally:
            os.close(fd)
        os.rename(part, path)
    except BaseException:
        try:
            os.unlink(part)
        except OSError:
            pass
        raise


def _write_failed(router, path, exc):
    """Logs why the response could not be written; the exit status that says it."""
    reason = _TMP_ERRNOS.get(exc.errno)
    if reason is None:
        router.log("cannot write the response %s: %s" % (path, exc.strerror or exc))
        return 1
    router.log(
        "cannot write the response %s: %s (%s): free space there or choose another temp folder"
        % (path, reason, exc.strerror or exc)
    )
    return EXIT_TMP_UNWRITABLE


def _read_request(path):
    """(request or None, error message)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return None, "cannot read the request %s: %s" % (path, exc.strerror or exc)
    try:
        msg = codec.unpackb(data)
    except DecodeError as exc:
        return None, "the request is not valid MessagePack: %s" % exc
    try:
        kind, call_id = check_envelope(msg)
        if kind not in ("call", "probe"):
            raise MessageError("a request file must hold a call or a probe, not %r" % kind, call_id)
        return parse_request(msg, kind), None
    except MessageError as exc:
        return None, (exc.call_id, str(exc))


def serve_file(request_path, response_path):
    router, _frame_out, _frame_in = install()
    req, problem = _read_request(request_path)
    if req is None:
        call_id, message = problem if isinstance(problem, tuple) else ("", problem)
        router.log(message)
        result = protocol_error(call_id, message)
        result["agent"] = agent_info(with_numpy=False)
        try:
            write_response(response_path, codec.packb(result))
        except OSError as exc:
            _write_failed(router, response_path, exc)
        return 3
    # Every result carries the agent's facts (the client keeps the last ones it saw); numpy's
    # version costs a search of sys.path and a listing of site-packages, so only a probe,
    # which asks what is installed, has it.
    info = agent_info(with_numpy=req.kind == "probe")
    deadline = None
    if req.timeout is not None:
        deadline = _Deadline(req, router, request_path, response_path, info)
    result = execute(req, router, CallState(), agent_info=info)
    body = encode_result(result, req.id)
    if deadline is not None and not deadline.finish():
        return 1  # past the deadline: the deadline's thread is ending the process
    try:
        write_response(response_path, body)
    except OSError as exc:
        return _write_failed(router, response_path, exc)
    return 0


class _Deadline(object):
    """Ends the process when the call runs past its `timeoutMs` (see the module's docstring)."""

    def __init__(self, req, router, request_path, response_path, info):
        self.req = req
        self.router = router
        self.request_path = request_path
        self.response_path = response_path
        self.info = info
        self.lock = threading.Lock()
        self.done = False  # the call ended, or the deadline passed: whoever comes first
        self.ended = threading.Event()
        threading.Thread(target=self._wait, name="sremote-deadline", daemon=True).start()

    def finish(self):
        """True when the call ended before its deadline (the response is the caller's)."""
        with self.lock:
            if self.done:
                return False
            self.done = True
        self.ended.set()
        return True

    def _wait(self):
        if self.ended.wait(self.req.timeout):
            return
        with self.lock:
            if self.done:
                return
            self.done = True
        from .reaper import end_descendants

        ms = self.req.timeout * 1000.0
        self.router.log("the call ran past its timeoutMs of %g ms: ending it" % ms)
        end_descendants(self.router.log)
        status = 1
        if os.path.exists(self.request_path):
            result = error_result(
                self.req.id, "exception", "Timeout", "the call ran past its timeoutMs of %g ms and was ended" % ms
            )
            result["agent"] = self.info
            try:
                write_response(self.response_path, codec.packb(result, "message"))
                status = 0
            except OSError as exc:
                status = _write_failed(self.router, self.response_path, exc)
        os._exit(status)
