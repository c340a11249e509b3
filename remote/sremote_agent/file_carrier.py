"""The file carrier: one request file in, one response out (docs/protocol.md sections 3 and 4;
docs/reliability.md, "File carrier: one upload, one exec").

The seed's flow: the response is written to `<response>.part` (0600) and renamed, so a reader
never sees half a response; a `.part` that cannot be completed (full or read-only temp folder)
is removed, and the agent exits 5 with a message saying what is wrong.

A request with `inlineReply: N` (new clients; older agents ignore the key and the client then
reads the response file) asks for fewer round trips: the agent removes the request file as
soon as it has read it, and sends a response of up to N bytes on its stdout, as one line
`sremote-reply:<base64>` (every connector's command output is text); a bigger one goes to the
response file as above, announced by the line `sremote-reply-file`. A request with `sweep`
also removes the stale temp files of clients that are gone (sweep.py).

A call whose request carries `timeoutMs` is ended at that deadline (counted from the agent's
start): by then its client has given up on it, and an agent whose client is gone must not run
on. The processes it started are ended too (reaper.py), and likewise when the client reading
the agent's stdout goes away mid-call (fdio.watch_peer). A response saying so is sent only
to a client that may still read it: inline, or while the request file is still there (a
client of the seed's flow deletes it when it gives up)."""

import binascii
import errno
import os
import threading

from . import codec
from .bigread import BIG_FRAME, SplitBody, Truncated, read_body
from .bulk import body_length, joined
from .fdio import watch_peer, write_all
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
REPLY_PREFIX = b"sremote-reply:"
REPLY_IN_FILE = b"sremote-reply-file\n"


def write_response(path, body):
    part = path + ".part"
    try:
        os.unlink(part)
    except OSError:
        pass
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            for chunk in body if type(body) is list else (body,):
                write_all(fd, chunk)
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


class _Reply(object):
    """Where the response goes: inline on stdout (`inline` = the most bytes sent that way)
    or the response file."""

    def __init__(self, router, out_fd, response_path):
        self.router = router
        self.out_fd = out_fd
        self.response_path = response_path
        self.inline = None
        self.lock = threading.Lock()  # the call's end and its deadline: one response

    def send(self, body):
        """Delivers `body`; the agent's exit status."""
        with self.lock:
            if self.inline is not None and body_length(body) <= self.inline:
                line = REPLY_PREFIX + binascii.b2a_base64(joined(body))  # ends with a newline
                try:
                    write_all(self.out_fd, line)
                except OSError as exc:
                    self.router.log("cannot send the response to the client (%s): it is gone" % exc)
                    return 1
                return 0
            try:
                write_response(self.response_path, body)
            except OSError as exc:
                return _write_failed(self.router, self.response_path, exc)
            if self.inline is not None:
                try:
                    write_all(self.out_fd, REPLY_IN_FILE)
                except OSError:
                    pass  # the client reads the file anyway when it sees no reply line
            return 0


def _read_request(path):
    """(request or None, error message or None, raw message or None)."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # A big request's big values are read straight into their own objects (bigread).
            data = read_body(f.fileno(), bytearray(), size) if size >= BIG_FRAME else f.read()
    except OSError as exc:
        return None, "cannot read the request %s: %s" % (path, exc.strerror or exc), None
    except Truncated as exc:
        return None, "cannot read the request %s: it ended at %d of %d bytes" % (path, exc.args[0], size), None
    msg = None
    try:
        msg = data.decode() if type(data) is SplitBody else codec.unpackb(data)
    except DecodeError as exc:
        return None, "the request is not valid MessagePack: %s" % exc, None
    try:
        kind, call_id = check_envelope(msg)
        if kind not in ("call", "probe"):
            raise MessageError("a request file must hold a call or a probe, not %r" % kind, call_id)
        return parse_request(msg, kind), None, msg
    except MessageError as exc:
        return None, (exc.call_id, str(exc)), msg if isinstance(msg, dict) else None


def _carrier_options(reply, msg, request_path):
    """Applies the request's `inlineReply` and `sweep` (see the module's docstring)."""
    if msg is None:
        return
    inline = msg.get("inlineReply")
    if isinstance(inline, int) and not isinstance(inline, bool) and inline >= 0:
        reply.inline = inline
        try:
            os.unlink(request_path)  # read: the client need not delete it
        except OSError:
            pass
    if msg.get("sweep") not in (None, False):
        from .sweep import max_age, sweep

        sweep(os.path.dirname(request_path) or ".", max_age(msg.get("sweep")), log=reply.router.log)


def _max_bytes(msg):
    """The client's `maxFrameBytes` (a result over it is a `serialization` error, as on a
    session), or None."""
    value = msg.get("maxFrameBytes") if isinstance(msg, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 64:
        return value
    return None


def _end_with_client(router):
    def gone():
        from .reaper import end_descendants

        router.log("the client stopped reading the agent's output: ending the call")
        end_descendants(router.log)
        os._exit(1)

    return gone


def serve_file(request_path, response_path):
    router, frame_out, _frame_in = install()
    watch_peer(frame_out, _end_with_client(router))
    reply = _Reply(router, frame_out, response_path)
    req, problem, msg = _read_request(request_path)
    _carrier_options(reply, msg, request_path)
    if req is None:
        call_id, message = problem if isinstance(problem, tuple) else ("", problem)
        router.log(message)
        result = protocol_error(call_id, message)
        result["agent"] = agent_info(with_numpy=False)
        reply.send(codec.packb(result))
        return 3
    # Every result carries the agent's facts (the client keeps the last ones it saw); numpy's
    # version costs a search of sys.path and a listing of site-packages, so only a probe,
    # which asks what is installed, has it.
    info = agent_info(with_numpy=req.kind == "probe")
    deadline = None
    if req.timeout is not None:
        deadline = _Deadline(req, router, request_path, reply, info)
    result = execute(req, router, CallState(), agent_info=info)
    body = encode_result(result, req.id, _max_bytes(msg))
    if deadline is not None and not deadline.finish():
        return 1  # past the deadline: the deadline's thread is ending the process
    return reply.send(body)


class _Deadline(object):
    """Ends the process when the call runs past its `timeoutMs` (see the module's docstring)."""

    def __init__(self, req, router, request_path, reply, info):
        self.req = req
        self.router = router
        self.request_path = request_path
        self.reply = reply
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
        if self.reply.inline is not None or os.path.exists(self.request_path):
            result = error_result(
                self.req.id, "exception", "Timeout", "the call ran past its timeoutMs of %g ms and was ended" % ms
            )
            result["agent"] = self.info
            status = self.reply.send(codec.packb(result, "message"))
        os._exit(status)
