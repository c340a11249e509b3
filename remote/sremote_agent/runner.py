"""Running one call: per-call environment, capture, import, lookup, invocation, errors,
and the `result` message (docs/protocol.md section 2)."""

import importlib
import os
import sys
import threading
import time

from . import PROTOCOL_VERSION, codec
from .bulk import SPLIT_BYTES, body_length, split_result
from .capture import CallOutput, clean_text, forked_child
from .values import SerializationError

_perf_ns = time.perf_counter_ns
_AGENT_DIR = os.path.dirname(os.path.abspath(__file__))
_IMPORTLIB_FILE = importlib.__file__ or "<none>"


class Cancelled(BaseException):
    """Raised inside a running call that the client cancelled (a BaseException, so that
    `except Exception` in user code does not swallow it)."""


# ---------------------------------------------------------------------------
# Interrupting a running call
#
# A cancel raises Cancelled in the worker thread (PyThreadState_SetAsyncExc). An
# asynchronous exception raised at an arbitrary point of code that holds a lock taken in
# Python (importlib's module locks, threading, logging, this agent's own capture code) can
# leave that lock held forever, so it is only sent while the thread's innermost frame is
# user code (not the standard library, not a frozen module, not the agent); otherwise a
# helper thread retries every few milliseconds until that is so or the call has ended.

_state_lock = threading.Lock()
_IDLE, _RUNNING, _DONE = 0, 1, 2
_set_async_exc = []
_STDLIB_DIR = os.path.dirname(os.__file__) + os.sep
_RETRY_SECONDS = 0.002


def _async_exc_setter():
    if not _set_async_exc:
        try:
            import ctypes

            _set_async_exc.append(ctypes.pythonapi.PyThreadState_SetAsyncExc)
            _set_async_exc.append(ctypes)
        except Exception:
            _set_async_exc.extend([None, None])
    return _set_async_exc[0], _set_async_exc[1]


def _in_user_code(thread_id):
    """True when the thread's innermost Python frame is code an exception may interrupt."""
    current_frames = getattr(sys, "_current_frames", None)
    if current_frames is None:
        return True
    frame = current_frames().get(thread_id)
    if frame is None:
        return False
    name = frame.f_code.co_filename
    if name.startswith("<frozen") or name.startswith(_AGENT_DIR):
        return False
    if name.startswith(_STDLIB_DIR):
        rest = name[len(_STDLIB_DIR) :]
        return "site-packages" in rest or "dist-packages" in rest
    return True


class _Interrupter(object):
    """Retries deferred cancels until they can be delivered or their call has ended."""

    pending = set()
    thread = None

    @classmethod
    def defer(cls, state):
        # Called with _state_lock held.
        cls.pending.add(state)
        if cls.thread is None:
            cls.thread = threading.Thread(target=cls._loop, name="sremote-interrupter", daemon=True)
            cls.thread.start()

    @classmethod
    def _loop(cls):
        while True:
            time.sleep(_RETRY_SECONDS)
            with _state_lock:
                for state in list(cls.pending):
                    if state.state != _RUNNING or state._deliver():
                        cls.pending.discard(state)
                if not cls.pending:
                    cls.thread = None
                    return


class CallState(object):
    """Whether a call is inside user code, so that a cancel can interrupt exactly that part."""

    __slots__ = ("state", "thread_id", "interrupted", "requested")

    def __init__(self):
        self.state = _IDLE
        self.thread_id = None
        self.interrupted = False  # Cancelled was sent to the thread
        self.requested = False  # a cancel arrived while this call ran

    def enter(self):
        # No lock: interrupt() reads `state` under _state_lock and uses `thread_id` only once
        # it sees _RUNNING, and each store is atomic, so `thread_id` is stored first.
        self.thread_id = threading.get_ident()
        self.state = _RUNNING

    def leave(self):
        with _state_lock:
            self.state = _DONE
            if self.interrupted:
                # The exception may still be pending: withdraw it.
                setter, ctypes = _async_exc_setter()
                if setter is not None:
                    setter(ctypes.c_ulong(self.thread_id), None)

    def _deliver(self):
        # Called with _state_lock held while the call runs. True once sent (or impossible).
        if not _in_user_code(self.thread_id):
            return False
        setter, ctypes = _async_exc_setter()
        if setter is not None and setter(ctypes.c_ulong(self.thread_id), ctypes.py_object(Cancelled)) == 1:
            self.interrupted = True
        return True

    def interrupt(self):
        """Raises Cancelled in the call's thread as soon as it runs user code. True if the
        call is running (the cancel is then sent now or as soon as it is safe)."""
        setter, _ = _async_exc_setter()
        with _state_lock:
            if self.state != _RUNNING or self.requested or setter is None:
                return False
            self.requested = True
            if not self._deliver():
                _Interrupter.defer(self)
            return True


# ---------------------------------------------------------------------------
# Per-call process state


class _ProcessState(object):
    """Applies a call's env / envDefault / pathAppend / cwd and restores them afterwards."""

    __slots__ = ("saved_env", "saved_cwd")

    def __init__(self):
        self.saved_env = {}
        self.saved_cwd = None

    def _set(self, name, value):
        if name not in self.saved_env:
            self.saved_env[name] = os.environ.get(name)
        os.environ[name] = value

    def apply(self, req):
        for name, value in (req.env or {}).items():
            self._set(name, value)
        for name, value in (req.env_default or {}).items():
            if name not in os.environ:
                self._set(name, value)
        if req.path_append:
            for name in ("PATH", "_OLD_VIRTUAL_PATH"):
                current = os.environ.get(name)
                if current is None and name == "_OLD_VIRTUAL_PATH":
                    continue
                parts = [current] if current else []
                self._set(name, os.pathsep.join(parts + list(req.path_append)))
        if req.cwd is not None:
            self.saved_cwd = os.getcwd()
            os.chdir(req.cwd)

    def restore(self):
        if self.saved_cwd is not None:
            try:
                os.chdir(self.saved_cwd)
            except OSError:
                pass
        for name, value in self.saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---------------------------------------------------------------------------
# Errors


def _is_agent_frame(tb):
    filename = tb.tb_frame.f_code.co_filename
    return filename.startswith(_AGENT_DIR) or filename.startswith("<frozen importlib") or filename == _IMPORTLIB_FILE


def _trim_traceback(exc):
    tb = exc.__traceback__
    while tb is not None and _is_agent_frame(tb):
        tb = tb.tb_next
    # Drop importlib's own frames further down (an error raised while importing).
    node = tb
    while node is not None:
        while node.tb_next is not None and node.tb_next.tb_frame.f_code.co_filename.startswith("<frozen importlib"):
            node.tb_next = node.tb_next.tb_next
        node = node.tb_next
    return tb


def format_exception(exc):
    import traceback

    tb = _trim_traceback(exc)
    lines = traceback.format_exception(type(exc), exc, tb)
    return clean_text("".join(lines))


def _error(kind, exc, message=None, type_name=None):
    try:
        text = str(exc) if message is None else message
    except Exception:
        text = "<unprintable %s>" % type(exc).__name__
    return {
        "kind": kind,
        "type": clean_text(type_name or type(exc).__name__),
        "message": clean_text(text),
        "traceback": format_exception(exc) if isinstance(exc, BaseException) else "",
    }


# ---------------------------------------------------------------------------
# The call


def _import(name):
    module = sys.modules.get(name)
    # Fast path for an already imported module; one still being imported by another
    # thread must go through importlib, which waits for it.
    if module is not None and not getattr(getattr(module, "__spec__", None), "_initializing", False):
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if not (name == missing or name.startswith(missing + ".")):
            raise
    # The module itself was not found. In a long-lived session it may have been created
    # since the finders cached their folder listings: look once more.
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _resolve(req):
    """The function to call, or an error map."""
    try:
        module = _import(req.module)
    except Cancelled:
        raise
    except BaseException as exc:
        return None, _error("import", exc)
    target = module
    for part in req.function.split("."):
        try:
            if not part:
                raise AttributeError("empty name in function path %r" % req.function)
            target = getattr(target, part)
        except Cancelled:
            raise
        except BaseException as exc:
            return None, _error("attribute", exc)
    if not callable(target):
        return None, _error(
            "attribute",
            None,
            "%s.%s is not callable (it is a %s)" % (req.module, req.function, type(target).__name__),
            "TypeError",
        )
    return target, None


def _end_forked_child(exc=None):
    """A process the call forked came back here (`os.fork()` and both processes returned):
    it ends as a forked Python process would, with what it printed flushed to the capture
    pipes, instead of answering the call a second time and reading the client's input."""
    status = 0
    if isinstance(exc, SystemExit):
        code = exc.code
        status = code if isinstance(code, int) else (0 if code is None else 1)
    elif exc is not None:
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


def _invoke(req, state):
    """(ok, value or error map, durationNs). Cancelled is raised only inside the window."""
    start = _perf_ns()
    state.enter()
    try:
        fn, error = _resolve(req)
        if error is not None:
            return False, error, _perf_ns() - start
        start = _perf_ns()
        value = fn(*req.args, **req.kwargs)
        if forked_child[0]:
            _end_forked_child()
        return True, value, _perf_ns() - start
    except Cancelled as exc:
        return False, _cancelled_error(exc), _perf_ns() - start
    except BaseException as exc:  # SystemExit and KeyboardInterrupt of a call must not end the agent
        if forked_child[0]:
            _end_forked_child(exc)
        return False, _error("exception", exc), _perf_ns() - start
    finally:
        state.leave()


def _cancelled_error(exc):
    return {
        "kind": "exception",
        "type": "Cancelled",
        "message": "the call was cancelled while running",
        "traceback": format_exception(exc),
    }


def execute(req, router, state, agent_info=None, sink=None):
    """Runs a `call` or `probe` and returns its `result` message (a dict)."""
    # stderr is also copied to the agent's own stderr: if the call takes the agent down,
    # the client still has its last words.
    output = CallOutput(req.output_limit, sink if req.stream else None, router.log_text)
    router.begin(output)
    process_state = None
    modules = None
    duration = 0
    try:
        if req.exclusive:
            process_state = _ProcessState()
            try:
                process_state.apply(req)
            except BaseException as exc:
                ok, payload = False, _error("exception", exc, "cannot apply the call's environment: %s" % exc)
                req = None
        if req is not None:
            if req.requires is not None:
                from .versions import module_versions  # imports `re` and importlib.metadata: only when needed

                modules = module_versions(req.requires)
            if req.kind == "probe":
                ok, payload = True, None
            else:
                try:
                    ok, payload, duration = _invoke(req, state)
                except Cancelled as exc:
                    # Delivered between the end of the function and `leave()`.
                    ok, payload = False, _cancelled_error(exc)
    finally:
        if process_state is not None:
            process_state.restore()
        router.end(output)
    stdout, stderr, truncated = output.finish()
    if ok:
        result = {"v": PROTOCOL_VERSION, "kind": "result", "id": "", "ok": True, "value": payload}
    else:
        result = {"v": PROTOCOL_VERSION, "kind": "result", "id": "", "ok": False, "error": payload}
    result["stdout"] = stdout
    result["stderr"] = stderr
    if truncated:
        result["truncated"] = True
    if modules is not None:
        result["modules"] = modules
    result["durationNs"] = duration
    if agent_info is not None:
        result["agent"] = agent_info
    return result


def encode_result(result, call_id, max_bytes=None):
    """The result's MessagePack bytes (or, for a big bytes/str/ndarray value, a list of
    buffers: bulk.py); an unserializable value becomes a `serialization` error, and a result
    over `max_bytes` an error that says so."""
    result["id"] = call_id
    if max_bytes is None or max_bytes >= SPLIT_BYTES:
        split = split_result(result)
        if split is not None and (max_bytes is None or body_length(split) <= max_bytes):
            return split  # a big value, framed by reference (bulk.py)
    try:
        body = codec.packb(result, "result")
    except SerializationError:
        # Locate the problem inside the value, so that the path starts at `result`.
        try:
            codec.packb(result.get("value"), "result", 1)
        except SerializationError as found:
            exc = found
        else:
            raise
        value = result.pop("value", None)
        result["ok"] = False
        result["error"] = {
            "kind": "serialization",
            "type": exc.type_name or "SerializationError",
            "message": clean_text("the return value cannot be sent: %s" % exc.message),
            "traceback": "",
            "path": clean_text(exc.path),
        }
        del value
        body = codec.packb(result, "result")
    if max_bytes is not None and len(body) > max_bytes:
        size = len(body)
        result.pop("value", None)
        result["ok"] = False
        result["error"] = {
            "kind": "serialization",
            "type": "SerializationError",
            "message": "the result takes %d bytes, over the frame limit of %d bytes" % (size, max_bytes),
            "traceback": "",
            "path": "result",
        }
        body = codec.packb(result, "result")
        if len(body) > max_bytes:
            result["stdout"] = result["stderr"] = ""
            result["truncated"] = True
            body = codec.packb(result, "result")
    return body
