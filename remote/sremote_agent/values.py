"""The value model both codecs share (docs/protocol.md section 1).

Extension types (timestamp -1, ndarray 1, set 2), the nesting limit, the errors a
codec raises, and `locate_problem`, which walks a value that failed to encode and
says exactly where and why, so that the C and the pure codec report identical
serialization errors.
"""

import datetime
import struct
import sys

MAX_DEPTH = 512
"""A container enclosed by this many containers (the 513th level of nesting) is refused."""

EXT_TIMESTAMP = -1
EXT_NDARRAY = 1
EXT_SET = 2

UINT64_MAX = (1 << 64) - 1
INT64_MIN = -(1 << 63)

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)


class SerializationError(Exception):
    """A value cannot be encoded. `path` says where (`result[3].owner`)."""

    def __init__(self, message, path, type_name=""):
        Exception.__init__(self, message)
        self.message = message
        self.path = path
        self.type_name = type_name


class DecodeError(Exception):
    """Bytes that are not valid SRemote MessagePack (a `protocol` error)."""


class NDArrayData(object):
    """An n-dimensional array without numpy: `dtype` (numpy `.str` form, little-endian or
    `|`), `shape` (list of ints) and `data` (C-order bytes). Encodes as ext 1."""

    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        self.dtype = dtype
        self.shape = list(shape)
        self.data = bytes(data)

    def __eq__(self, other):
        return (
            isinstance(other, NDArrayData)
            and self.dtype == other.dtype
            and self.shape == other.shape
            and self.data == other.data
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self):
        return "NDArrayData(%r, %r, <%d bytes>)" % (self.dtype, self.shape, len(self.data))


# ---------------------------------------------------------------------------
# Timestamps


def datetime_to_ext(value):
    """Canonical timestamp ext payload of a datetime (naive = UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        delta = value - _EPOCH_NAIVE
    else:
        delta = value - EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1000000 + delta.microseconds
    seconds, micro = divmod(micros, 1000000)
    nanos = micro * 1000
    if seconds >> 34 == 0:
        if nanos == 0 and seconds >> 32 == 0:
            return struct.pack(">I", seconds)
        return struct.pack(">Q", (nanos << 34) | seconds)
    return struct.pack(">Iq", nanos, seconds)


def ext_to_datetime(payload):
    """An aware UTC datetime from a timestamp ext payload (sub-microsecond truncated)."""
    n = len(payload)
    if n == 4:
        seconds = struct.unpack(">I", payload)[0]
        nanos = 0
    elif n == 8:
        data = struct.unpack(">Q", payload)[0]
        nanos = data >> 34
        seconds = data & 0x3FFFFFFFF
    elif n == 12:
        nanos, seconds = struct.unpack(">Iq", payload)
    else:
        raise DecodeError("timestamp extension of %d bytes (4, 8 or 12 expected)" % n)
    if nanos > 999999999:
        raise DecodeError("timestamp with %d nanoseconds" % nanos)
    try:
        return EPOCH + datetime.timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise DecodeError("timestamp %d s is outside the range of Python datetimes" % seconds)


# ---------------------------------------------------------------------------
# ndarrays

_patterns = {}


def _pattern(name):
    """Compiled regular expressions, built on first use (importing `re` costs ~5 ms at start-up)."""
    pattern = _patterns.get(name)
    if pattern is None:
        import re

        source = {
            "dtype": r"^[<|][A-Za-z?][A-Za-z0-9\[\]]*$",
            "itemsize": r"^[<|]([A-Za-z?])(\d*)",
            "ident": r"^[A-Za-z_][A-Za-z0-9_]*$",
        }[name]
        pattern = _patterns[name] = re.compile(source)
    return pattern


def numpy_module():
    """numpy if the program already imported it (encoding never imports numpy)."""
    return sys.modules.get("numpy")


_numpy_import_state = []


def import_numpy():
    """numpy, imported on first need; None when it is not installed."""
    if not _numpy_import_state:
        try:
            import numpy  # noqa: F401

            _numpy_import_state.append(numpy)
        except Exception:
            _numpy_import_state.append(None)
    return _numpy_import_state[0]


def ndarray_parts(array):
    """[dtype, shape, "C", data] for a numpy array; TypeError for an object array."""
    if array.dtype.hasobject:
        raise TypeError("numpy arrays of dtype object cannot be serialized: convert them to lists")
    dtype = array.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        dtype = dtype.newbyteorder("<")
        array = array.astype(dtype)
    # tobytes(order="C") copies a non-contiguous array into C order (and keeps 0-d arrays 0-d).
    return [dtype.str, [int(n) for n in array.shape], "C", array.tobytes(order="C")]


def ndarraydata_parts(value):
    check_ndarray_fields(value.dtype, value.shape, value.data, TypeError)
    return [value.dtype, [int(n) for n in value.shape], "C", bytes(value.data)]


def _itemsize(dtype):
    """Item size of a numpy dtype string, computed without numpy."""
    m = _pattern("itemsize").match(dtype)
    if m is None:
        return None
    kind, digits = m.group(1), m.group(2)
    if digits:
        size = int(digits)
        return size * 4 if kind == "U" else size
    return {"?": 1, "b": 1, "B": 1}.get(kind)


def check_ndarray_fields(dtype, shape, data, error=DecodeError, nbytes=None):
    """Raises `error` unless dtype, shape and data (or, for data still to be read, its size
    `nbytes`) make a valid ndarray ext."""
    if not isinstance(dtype, str) or not _pattern("dtype").match(dtype):
        raise error("ndarray dtype %r is not a little-endian numpy dtype string" % (dtype,))
    if dtype[1:2] == "O":
        raise error("ndarray dtype %r (object) cannot be sent: convert the array to a list" % (dtype,))
    if not isinstance(shape, (list, tuple)) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise error("ndarray shape %r is not a list of non-negative ints" % (shape,))
    if nbytes is None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise error("ndarray data must be bytes")
        nbytes = len(data)
    itemsize = _itemsize(dtype)
    if itemsize is not None:
        count = 1
        for n in shape:
            count *= n
        if count * itemsize != nbytes:
            raise error("ndarray data holds %d bytes, %s of %s needs %d" % (nbytes, shape, dtype, count * itemsize))


def ndarray_from_parts(parts):
    """Decodes an ndarray ext payload (already unpacked) into numpy or a plain dict."""
    if not isinstance(parts, list) or len(parts) != 4:
        raise DecodeError("ndarray extension must hold [dtype, shape, order, data]")
    dtype, shape, order, data = parts
    if order != "C":
        raise DecodeError("ndarray order %r is not supported (only 'C')" % (order,))
    check_ndarray_fields(dtype, shape, data)
    checked = _numpy_dtype(dtype, shape, len(data))
    if checked is None:
        return {"dtype": dtype, "shape": list(shape), "data": bytes(data)}
    np, dt, count = checked
    # A writable copy: functions may modify their arguments in place.
    return np.frombuffer(data, dtype=dt, count=count).reshape(shape).copy()


def _numpy_dtype(dtype, shape, nbytes):
    """(numpy, dtype, element count) for checked ndarray fields whose data holds `nbytes`;
    None when numpy is not importable. Raises DecodeError for what numpy refuses."""
    np = import_numpy()
    if np is None:
        return None
    try:
        dt = np.dtype(dtype)
    except Exception as exc:
        raise DecodeError("ndarray dtype %r: %s" % (dtype, exc))
    count = 1
    for n in shape:
        count *= n
    if dt.itemsize * count != nbytes:
        raise DecodeError("ndarray data holds %d bytes, %s of %s needs %d" % (nbytes, shape, dtype, dt.itemsize * count))
    if dt.hasobject:
        raise DecodeError("ndarray dtype object is not allowed")
    return np, dt, count


def empty_ndarray(dtype, shape, order, nbytes):
    """A fresh, writable numpy array for an ndarray ext whose `nbytes` of data are still to
    be read into it (bigread.py), or None where ndarray_from_parts would not give one
    (numpy missing, a field it refuses: the general path then says what is wrong)."""
    try:
        if order != "C":
            return None
        check_ndarray_fields(dtype, shape, None, nbytes=nbytes)
        checked = _numpy_dtype(dtype, shape, nbytes)
        if checked is None:
            return None
        np, dt, _ = checked
        return np.empty(tuple(shape), dtype=dt)
    except Exception:
        return None


# ---------------------------------------------------------------------------
# Keys and set elements


def to_hashable(value, where):
    """Arrays become tuples in map keys and set elements; maps and sets are refused."""
    if isinstance(value, list):
        return tuple(to_hashable(v, where) for v in value)
    if isinstance(value, (dict, set)) or type(value).__name__ == "ndarray":
        raise DecodeError("a %s cannot be a %s in Python (unhashable)" % (_kind_name(value), where))
    return value


def _kind_name(value):
    if isinstance(value, dict):
        return "map"
    if isinstance(value, set):
        return "set"
    return type(value).__name__


def check_depth(value, limit=MAX_DEPTH, depth=0):
    """Raises DecodeError when a container in `value` is enclosed by `limit` or more
    containers (the same rule as the encoders); `depth` = containers enclosing `value`."""
    containers = (list, tuple, dict, set, frozenset)
    stack = [(value, depth)]
    while stack:
        obj, depth = stack.pop()
        if depth >= limit:
            raise DecodeError("nesting deeper than %d levels" % limit)
        depth += 1
        if isinstance(obj, dict):
            for k, v in obj.items():
                if type(k) in containers:
                    stack.append((k, depth))
                if type(v) in containers:
                    stack.append((v, depth))
        else:
            for v in obj:
                if type(v) in containers:
                    stack.append((v, depth))
    return value


# ---------------------------------------------------------------------------
# Finding what made encoding fail

_HINTS = {
    "date": "convert it to a datetime or an ISO string",
    "time": "convert it to a string",
    "timedelta": "convert it to seconds (timedelta.total_seconds())",
    "Decimal": "convert it to a str or a float",
    "complex": "convert it to a [real, imag] pair",
}


def _type_label(value):
    t = type(value)
    module = getattr(t, "__module__", "")
    name = getattr(t, "__qualname__", t.__name__)
    return name if module in ("builtins", "", None) else "%s.%s" % (module, name)


def key_segment(key):
    """The path segment of a map entry (docs/protocol.md section 1): `.name` for an
    identifier, `["..."]` (JSON-quoted) for another str, `<5>`/`<null>`/`<type>` otherwise."""
    if isinstance(key, str):
        if _pattern("ident").match(key):
            return "." + key
        import json

        return "[" + json.dumps(key, ensure_ascii=False) + "]"
    if key is None:
        return "<null>"
    if key is True or key is False:
        return "<true>" if key else "<false>"
    if isinstance(key, (int, float)):
        return "<%r>" % (key,)
    return "<%s>" % type(key).__name__


def render_path(root, segments):
    """root + segments, eliding the middle of absurdly long paths (as the TypeScript side does)."""
    if len(segments) > 40:
        return "%s%s\u2026(%d more)\u2026%s" % (
            root,
            "".join(segments[:20]),
            len(segments) - 25,
            "".join(segments[-5:]),
        )
    return root + "".join(segments)


def _problem_of_leaf(value):
    """The reason a non-container value cannot be encoded, or None when it can."""
    if value is None or value is True or value is False:
        return None
    if isinstance(value, int):
        if value < INT64_MIN or value > UINT64_MAX:
            return ("integer %d does not fit in 64 bits: send it as a str" % value, "OverflowError")
        return None
    if isinstance(value, float):
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return ("str with a lone surrogate cannot be encoded as UTF-8", "UnicodeEncodeError")
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, datetime.datetime):
        return None
    if isinstance(value, NDArrayData):
        try:
            ndarraydata_parts(value)
        except TypeError as exc:
            return (str(exc), "TypeError")
        return None
    np = numpy_module()
    if np is not None:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                return ("numpy arrays of dtype object cannot be serialized: convert them to lists", "TypeError")
            return None
    hint = _HINTS.get(type(value).__name__)
    if hint is not None:
        return ("%s is not supported: %s" % (_type_label(value), hint), "TypeError")
    return ("cannot serialize an object of type %s" % _type_label(value), "TypeError")


def locate_problem(value, root, depth=0):
    """(path, message, type) of the first part of `value` that cannot be encoded, or None.
    `depth` = containers enclosing `value` (a result's value sits in the result map: 1)."""
    np = numpy_module()
    # Iterative depth-first walk in encoding order: (value, path node, depth); a path node
    # is (parent node, segment) so that paths are only rendered for the culprit.
    stack = [(value, None, depth)]
    while stack:
        obj, node, depth = stack.pop()
        if np is not None and isinstance(obj, np.generic) and not isinstance(obj, np.ndarray):
            obj = obj.item()
        children = None
        if isinstance(obj, (str, bytes, bytearray, memoryview, int, float)) or obj is None:
            pass
        elif isinstance(obj, dict):
            children = []
            for k, v in obj.items():
                child = (node, key_segment(k))
                children.append((k, child, depth + 1))
                children.append((v, child, depth + 1))
        elif isinstance(obj, (list, tuple)):
            children = [(v, (node, "[%d]" % i), depth + 1) for i, v in enumerate(obj)]
        elif isinstance(obj, (set, frozenset)):
            children = [(v, (node, "{set}"), depth + 1) for v in obj]
        if children is not None:
            if depth >= MAX_DEPTH:
                problem = ("a value nested deeper than %d levels (a circular reference?)" % MAX_DEPTH, "RecursionError")
            else:
                stack.extend(reversed(children))
                continue
        else:
            problem = _problem_of_leaf(obj)
        if problem is not None:
            segments = []
            while node is not None:
                node, segment = node
                segments.append(segment)
            segments.reverse()
            return (render_path(root, segments), problem[0], problem[1])
    return None
