"""Helpers shared by the agent's tests: real agents started through `sh interpreter.sh`,
frame I/O with deadlines (no test can hang), the shared vectors, tagged JSON."""

import base64
import datetime
import json
import os
import queue
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REMOTE_DIR = os.path.dirname(TESTS_DIR)
REPO_DIR = os.path.dirname(REMOTE_DIR)
INTERPRETER = os.path.join(REMOTE_DIR, "interpreter.sh")
FIXTURES = os.path.join(TESTS_DIR, "fixtures")
VECTORS_DIR = os.path.join(REPO_DIR, "packages", "protocol", "vectors")
# The real interpreter (never the pyenv shim): agents run with the Python running the tests.
PYTHON = os.path.realpath(sys.executable)
SH = shutil.which("dash") or "/bin/sh"
TIMEOUT = 60.0


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return None
    start = text.find("[")
    return text[start + 1 : text.find("]", start)] if start >= 0 else None


# Transparent huge pages given on request only (madvise): what interpreter.sh's glibc
# tunable changes can be seen (under "always" every big buffer gets them anyway).
THP_MADVISE = _thp_mode() == "madvise"

# Nested values (512 levels) recurse in the codecs and in these helpers; the agent raises
# its own limit the same way (sremote_agent.main).
sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

if REMOTE_DIR not in sys.path:
    sys.path.insert(0, REMOTE_DIR)

from sremote_agent import PROTOCOL_VERSION, codec  # noqa: E402
from sremote_agent.values import NDArrayData  # noqa: E402


def numpy_or_none():
    try:
        import numpy

        return numpy
    except Exception:
        return None


def loud_skip(test, why):
    sys.stderr.write("\n*** SKIPPED: %s ***\n" % why)
    sys.stderr.flush()
    test.skipTest(why)


class TempDirTestCase(unittest.TestCase):
    """Gives each test a private temp folder, removed afterwards."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sremote-agent-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def agent_env(self, **extra):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.tmp,
            "SREMOTE_PYTHON": PYTHON,
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}


def frame(message):
    body = codec.packb(message, "message")
    return struct.pack(">I", len(body)) + body


class SessionAgent(object):
    """A real agent (`sh interpreter.sh --serve`) with frames read on a thread."""

    def __init__(self, test, workers=None, max_frame=None, pwd=FIXTURES, env=None, endpoint=REMOTE_DIR, extra_args=()):
        self.tmp = os.path.join(test.tmp, "agent-tmp")
        argv = [SH, os.path.join(endpoint, "interpreter.sh"), "--serve", endpoint, self.tmp, pwd]
        if workers is not None:
            argv += ["--workers", str(workers)]
        if max_frame is not None:
            argv += ["--max-frame", str(max_frame)]
        argv += list(extra_args)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else test.agent_env(),
        )
        self.frames = queue.Queue()
        self.stderr_chunks = []
        self.pending = {}
        self.others = []
        self._reader = threading.Thread(target=self._read_frames, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()
        test.addCleanup(self.close)

    def _read_frames(self):
        out = self.proc.stdout
        try:
            while True:
                header = out.read(4)
                if len(header) < 4:
                    self.frames.put(("eof", header))
                    return
                (n,) = struct.unpack(">I", header)
                body = out.read(n)
                if len(body) < n:
                    self.frames.put(("eof", body))
                    return
                self.frames.put(("frame", body))
        except Exception as exc:  # pragma: no cover
            self.frames.put(("eof", repr(exc)))

    def _read_stderr(self):
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.stderr_chunks.append(chunk)

    @property
    def stderr(self):
        return b"".join(self.stderr_chunks).decode("utf-8", "replace")

    def send(self, message):
        self.send_raw(frame(message))

    def send_raw(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # the agent exited (what the test checks next); reading says why

    def recv(self, timeout=TIMEOUT):
        """The next frame, decoded. Fails the test (never hangs) when none comes."""
        try:
            kind, body = self.frames.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no frame from the agent within %s s; stderr: %s" % (timeout, self.stderr))
        if kind == "eof":
            self.frames.put((kind, body))
            raise EOFError("the agent closed its stdout; stderr: %s" % self.stderr)
        return codec.unpackb(body)

    def hello(self):
        msg = self.recv()
        assert msg["kind"] == "hello", msg
        return msg

    def call(self, call_id, module, function, *args, **fields):
        msg = {"v": PROTOCOL_VERSION, "kind": "call", "id": call_id, "module": module, "function": function, "args": list(args)}
        msg.update(fields)
        self.send(msg)

    def result(self, call_id, timeout=TIMEOUT):
        """The result of `call_id`, keeping other frames for later."""
        if call_id in self.pending:
            return self.pending.pop(call_id)
        while True:
            msg = self.recv(timeout)
            if msg.get("kind") == "result":
                if msg["id"] == call_id:
                    return msg
                self.pending[msg["id"]] = msg
            else:
                self.others.append(msg)

    def roundtrip(self, call_id, module, function, *args, **fields):
        self.call(call_id, module, function, *args, **fields)
        return self.result(call_id)

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout=TIMEOUT):
        status = self.proc.wait(timeout=timeout)
        self._err_reader.join(timeout)
        return status

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=TIMEOUT)
        finally:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass


def run_file_carrier(test, request, pwd=FIXTURES, env=None, endpoint=REMOTE_DIR, name="0123456789abcdef0123456789abcdef"):
    """Runs `sh interpreter.sh <req> <resp> <endpoint> <tmp> <pwd>` for a request (a message
    or raw bytes). Returns (exit status, decoded response or None, stdout, stderr)."""
    tmp = os.path.join(test.tmp, "file-tmp")
    os.makedirs(tmp, mode=0o700, exist_ok=True)
    req = os.path.join(tmp, name + ".req")
    resp = os.path.join(tmp, name + ".resp")
    with open(req, "wb") as f:
        f.write(request if isinstance(request, bytes) else codec.packb(request, "message"))
    proc = subprocess.run(
        [SH, os.path.join(endpoint, "interpreter.sh"), req, resp, endpoint, tmp, pwd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else test.agent_env(),
        timeout=TIMEOUT,
    )
    response = None
    if os.path.exists(resp):
        test.response_mode = os.stat(resp).st_mode & 0o777
        with open(resp, "rb") as f:
            response = codec.unpackb(f.read())
        os.unlink(resp)
    test.assertFalse(os.path.exists(resp + ".part"), "a .part file was left behind")
    os.unlink(req)
    return proc.returncode, response, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def call_message(call_id, module, function, *args, **fields):
    msg = {"v": PROTOCOL_VERSION, "kind": "call", "id": call_id, "module": module, "function": function, "args": list(args)}
    msg.update(fields)
    return msg


# ---------------------------------------------------------------------------
# Shared vectors and tagged JSON (docs/protocol.md sections 5 and 6)


def load_vectors(name):
    """The entries of packages/protocol/vectors/<name>, or None when the file does not exist yet."""
    path = os.path.join(VECTORS_DIR, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


_TAGS = ("$bigint", "$bytes", "$date", "$float", "$map", "$set", "$ndarray", "$object")


def _parse_date(text):
    t = text.replace("Z", "+00:00")
    # fromisoformat (3.8) takes at most 6 fraction digits.
    if "." in t:
        head, rest = t.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits += rest[0]
            rest = rest[1:]
        t = head + "." + (digits + "000000")[:6] + rest
    value = datetime.datetime.fromisoformat(t)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def from_tagged(value, ndarray="auto"):
    """Tagged JSON -> the Python value the agent would decode (ndarray: "auto" gives numpy
    when importable, else a plain dict; "data" gives NDArrayData, for encoding)."""
    if isinstance(value, list):
        return [from_tagged(v, ndarray) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "$object":
            return {k: from_tagged(v, ndarray) for k, v in inner.items()}
        if tag == "$bigint":
            return int(inner)
        if tag == "$bytes":
            return base64.b64decode(inner)
        if tag == "$date":
            return _parse_date(inner)
        if tag == "$float":
            return float(inner.replace("Infinity", "inf"))
        if tag == "$map":
            out = {}
            for k, v in inner:
                k = from_tagged(k, ndarray)
                out[_hashable(k)] = from_tagged(v, ndarray)
            return out
        if tag == "$set":
            return set(_hashable(from_tagged(v, ndarray)) for v in inner)
        if tag == "$ndarray":
            data = base64.b64decode(inner["data"])
            if ndarray == "data":
                return NDArrayData(inner["dtype"], inner["shape"], data)
            np = numpy_or_none()
            if np is None:
                return {"dtype": inner["dtype"], "shape": list(inner["shape"]), "data": data}
            count = 1
            for n in inner["shape"]:
                count *= n
            return np.frombuffer(data, dtype=np.dtype(inner["dtype"]), count=count).reshape(inner["shape"])
    return {k: from_tagged(v, ndarray) for k, v in value.items()}


def _hashable(value):
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def same_value(a, b):
    """Deep equality that tells int from float, treats NaN as equal and compares arrays."""
    np = numpy_or_none()
    if np is not None and (isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype.str == b.dtype.str
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if type(a) is float and type(b) is float:
        return (a != a and b != b) or (a == b and str(a) == str(b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if type(a) is not type(b):
        if {type(a), type(b)} <= {list, tuple}:
            pass
        else:
            return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return a == b
