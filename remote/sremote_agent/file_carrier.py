"""The file carrier: one request file in, one response file out (docs/protocol.md sections
3 and 4). The response is written to `<response>.part` (0600) and renamed, so a reader
never sees half a response."""

import os

from . import codec
from .fdio import write_all
from .info import agent_info
from .messages import MessageError, check_envelope, parse_request, protocol_error
from .runner import CallState, encode_result, execute
from .stdio import install
from .values import DecodeError


def write_response(path, body):
    part = path + ".part"
    try:
        os.unlink(part)
    except OSError:
        pass
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        write_all(fd, body)
    finally:
        os.close(fd)
    os.rename(part, path)


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
            router.log("cannot write the response %s: %s" % (response_path, exc))
        return 3
    # Every result carries the agent's facts (the client keeps the last ones it saw); numpy's
    # version costs a search of sys.path and a listing of site-packages, so only a probe,
    # which asks what is installed, has it.
    info = agent_info(with_numpy=req.kind == "probe")
    result = execute(req, router, CallState(), agent_info=info)
    body = encode_result(result, req.id)
    try:
        write_response(response_path, body)
    except OSError as exc:
        router.log("cannot write the response %s: %s" % (response_path, exc))
        return 1
    return 0
