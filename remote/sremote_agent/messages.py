"""Validation of the messages a client sends, and the shapes of the ones the agent sends
(docs/protocol.md section 2). A `null` optional key counts as absent (TypeScript encodes
`undefined` as nil)."""

from . import PROTOCOL_VERSION

DEFAULT_OUTPUT_LIMIT = 8 * 1024 * 1024


class MessageError(Exception):
    """A decodable message that breaks the protocol: answered with a `protocol` error."""

    def __init__(self, message, call_id=""):
        Exception.__init__(self, message)
        self.call_id = call_id


class CallRequest(object):
    """A validated `call` or `probe`. The class attributes are the defaults of a plain call
    (no env, PATH, cwd, requirements, streaming or output limit): the fast path for plain
    calls sets only what every call has."""

    kind = "call"
    id = ""
    module = None
    function = None
    args = ()
    kwargs = None
    env = None
    env_default = None
    path_append = None
    requires = None
    cwd = None
    stream = False
    output_limit = DEFAULT_OUTPUT_LIMIT
    # `timeoutMs` in seconds, or None: the file carrier ends a call that runs past it (its
    # client has given up on it by then); the session carrier ignores it (its client cancels).
    timeout = None
    # True when the call changes process state (env, PATH, cwd), so it must run alone.
    exclusive = False


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _str_map(msg, key, call_id):
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise MessageError("%r must be a map of str to str" % key, call_id)
    return value


def _str_list(msg, key, call_id):
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MessageError("%r must be an array of str" % key, call_id)
    return value


def check_envelope(msg):
    """(kind, id or "") of a message; raises MessageError for a bad envelope."""
    if not isinstance(msg, dict):
        raise MessageError("a message must be a map, got %s" % type(msg).__name__)
    call_id = msg.get("id")
    if not isinstance(call_id, str):
        call_id = ""
    for key in msg:
        if not isinstance(key, str):
            raise MessageError("message keys must be str, got %r" % (key,), call_id)
    v = msg.get("v")
    if not _is_int(v):
        raise MessageError("missing or invalid key 'v' (protocol version)", call_id)
    if v != PROTOCOL_VERSION:
        raise MessageError(
            "key 'v': protocol version %d is not supported (this agent speaks %d)" % (v, PROTOCOL_VERSION), call_id
        )
    kind = msg.get("kind")
    if not isinstance(kind, str):
        raise MessageError("missing or invalid key 'kind'", call_id)
    return kind, call_id


def require_id(msg):
    call_id = msg.get("id")
    if not isinstance(call_id, str):
        raise MessageError("missing or invalid key 'id' (a str is required)")
    return call_id


def parse_request(msg, kind):
    """A CallRequest from a `call` or `probe` message (envelope already checked)."""
    call_id = require_id(msg)
    req = CallRequest()
    req.kind = kind
    req.id = call_id
    req.requires = _str_list(msg, "requires", call_id)
    req.module = req.function = None
    req.args = []
    req.kwargs = {}
    req.env = req.env_default = req.path_append = req.cwd = None
    req.stream = False
    req.output_limit = DEFAULT_OUTPUT_LIMIT
    if kind == "probe":
        if req.requires is None:
            raise MessageError("missing key 'requires' (an array of str)", call_id)
        return req
    for key in ("module", "function"):
        value = msg.get(key)
        if not isinstance(value, str) or not value:
            raise MessageError("missing or invalid key %r (a non-empty str is required)" % key, call_id)
    req.module = msg["module"]
    req.function = msg["function"]
    args = msg.get("args")
    if args is not None:
        if not isinstance(args, list):
            raise MessageError("'args' must be an array", call_id)
        req.args = args
    kwargs = msg.get("kwargs")
    if kwargs is not None:
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise MessageError("'kwargs' must be a map with str keys", call_id)
        req.kwargs = kwargs
    req.env = _str_map(msg, "env", call_id)
    req.env_default = _str_map(msg, "envDefault", call_id)
    req.path_append = _str_list(msg, "pathAppend", call_id)
    cwd = msg.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise MessageError("'cwd' must be a str", call_id)
    req.cwd = cwd
    stream = msg.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise MessageError("'stream' must be a bool", call_id)
    req.stream = bool(stream)
    limit = msg.get("outputLimit")
    if limit is not None:
        if not _is_int(limit) or limit < 0:
            raise MessageError("'outputLimit' must be a non-negative int", call_id)
        req.output_limit = limit
    timeout = msg.get("timeoutMs")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0 or timeout == float("inf"):
            raise MessageError("'timeoutMs' must be a non-negative number of milliseconds", call_id)
        req.timeout = timeout / 1000.0 if timeout > 0 else None
    req.exclusive = bool(req.env or req.env_default or req.path_append or req.cwd is not None)
    return req


CLIENT_KINDS = ("call", "probe", "cancel", "ping", "shutdown")

# The keys of a plain call (no env, cwd, streaming or limits): the common case.
_PLAIN_CALL_KEYS = frozenset(("v", "kind", "id", "module", "function", "args", "kwargs"))


def _plain_call(msg):
    """A CallRequest for a well-formed plain call, else None (the full checks then run).
    Same result as parse_request, with a fraction of its work: it runs for every call."""
    if msg.get("kind") != "call" or type(msg.get("v")) is not int or msg["v"] != PROTOCOL_VERSION:
        return None
    call_id = msg.get("id")
    module = msg.get("module")
    function = msg.get("function")
    if type(call_id) is not str or type(module) is not str or type(function) is not str or not module or not function:
        return None
    args = msg.get("args")
    if args is None:
        args = []
    elif type(args) is not list:
        return None
    kwargs = msg.get("kwargs")
    if kwargs is None:
        kwargs = {}
    elif type(kwargs) is not dict:
        return None
    else:
        for key in kwargs:
            if type(key) is not str:
                return None
    req = CallRequest()
    req.id = call_id
    req.module = module
    req.function = function
    req.args = args
    req.kwargs = kwargs
    return req


def parse_client_message(msg):
    """(kind, CallRequest for call/probe, else the id or None) of a message a client sends.
    Raises MessageError naming what is wrong."""
    if type(msg) is dict and _PLAIN_CALL_KEYS.issuperset(msg):
        req = _plain_call(msg)
        if req is not None:
            return "call", req
    kind, call_id = check_envelope(msg)
    if kind in ("call", "probe"):
        return kind, parse_request(msg, kind)
    if kind in ("cancel", "ping"):
        return kind, require_id(msg)
    if kind == "shutdown":
        return kind, None
    raise MessageError("key 'kind': unknown message kind %r" % kind, call_id)


def error_result(call_id, kind, type_name, message, traceback="", path=None):
    """A `result` message with `ok: false`."""
    error = {"kind": kind, "type": type_name, "message": message, "traceback": traceback}
    if path is not None:
        error["path"] = path
    return {
        "v": PROTOCOL_VERSION,
        "kind": "result",
        "id": call_id,
        "ok": False,
        "error": error,
        "stdout": "",
        "stderr": "",
        "durationNs": 0,
    }


def protocol_error(call_id, message):
    return error_result(call_id, "protocol", "ProtocolError", message)
