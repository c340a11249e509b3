"""A pure-Python MessagePack encoder and decoder with the canonical output of
docs/protocol.md section 1, byte for byte the same as `codec.py` gives through the
`msgpack` C package. Used when `msgpack` is not importable, so a bare `python3`
(3.8+, no pip) can serve.

`packb` raises any exception on a value it cannot encode (`codec.py` then locates the
problem and raises a `SerializationError` with its path); `unpackb` raises
`DecodeError` for anything that is not valid.
"""

import datetime
import struct
import threading

from .values import (
    EXT_NDARRAY,
    EXT_SET,
    EXT_TIMESTAMP,
    INT64_MIN,
    MAX_DEPTH,
    UINT64_MAX,
    DecodeError,
    NDArrayData,
    datetime_to_ext,
    ext_to_datetime,
    ndarray_from_parts,
    ndarray_parts,
    ndarraydata_parts,
    numpy_module,
    to_hashable,
)

_pack_double = struct.Struct(">Bd").pack
_pack_B = struct.Struct(">BB").pack
_pack_H = struct.Struct(">BH").pack
_pack_I = struct.Struct(">BI").pack
_pack_Q = struct.Struct(">BQ").pack
_pack_b = struct.Struct(">Bb").pack
_pack_h = struct.Struct(">Bh").pack
_pack_i = struct.Struct(">Bi").pack
_pack_q = struct.Struct(">Bq").pack


class _DepthExceeded(Exception):
    pass


CANONICAL_NAN = b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
"""Every NaN encodes as this quiet NaN, whatever its sign and payload (docs/protocol.md section 1)."""


def _pack_int(value, out):
    if value >= 0:
        if value < 0x80:
            out.append(value)
        elif value <= 0xFF:
            out += _pack_B(0xCC, value)
        elif value <= 0xFFFF:
            out += _pack_H(0xCD, value)
        elif value <= 0xFFFFFFFF:
            out += _pack_I(0xCE, value)
        elif value <= UINT64_MAX:
            out += _pack_Q(0xCF, value)
        else:
            raise OverflowError("integer does not fit in 64 bits")
    elif value >= -32:
        out.append(value & 0xFF)
    elif value >= -0x80:
        out += _pack_b(0xD0, value)
    elif value >= -0x8000:
        out += _pack_h(0xD1, value)
    elif value >= -0x80000000:
        out += _pack_i(0xD2, value)
    elif value >= INT64_MIN:
        out += _pack_q(0xD3, value)
    else:
        raise OverflowError("integer does not fit in 64 bits")


def _pack_str(value, out):
    data = value.encode("utf-8")
    n = len(data)
    if n < 32:
        out.append(0xA0 | n)
    elif n <= 0xFF:
        out += _pack_B(0xD9, n)
    elif n <= 0xFFFF:
        out += _pack_H(0xDA, n)
    else:
        out += _pack_I(0xDB, n)
    out += data


_str_cache = {}


def _pack_short_str(value, out):
    # Map keys and small strings repeat in every message ("kind", "result", "stdout"…):
    # their encoding is cached (bounded, short strings only).
    data = _str_cache.get(value)
    if data is None:
        tmp = bytearray()
        _pack_str(value, tmp)
        data = bytes(tmp)
        if len(_str_cache) < 4096:
            _str_cache[value] = data
    out += data


def _pack_bin(data, out):
    n = len(data)
    if n <= 0xFF:
        out += _pack_B(0xC4, n)
    elif n <= 0xFFFF:
        out += _pack_H(0xC5, n)
    else:
        out += _pack_I(0xC6, n)
    out += data


def _pack_array_header(n, out):
    if n < 16:
        out.append(0x90 | n)
    elif n <= 0xFFFF:
        out += _pack_H(0xDC, n)
    else:
        out += _pack_I(0xDD, n)


def _pack_map_header(n, out):
    if n < 16:
        out.append(0x80 | n)
    elif n <= 0xFFFF:
        out += _pack_H(0xDE, n)
    else:
        out += _pack_I(0xDF, n)


_FIXEXT = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}


def pack_ext(code, payload, out):
    """Appends an ext value with the smallest header (fixext 1/2/4/8/16, else ext 8/16/32)."""
    n = len(payload)
    head = _FIXEXT.get(n)
    if head is not None:
        out.append(head)
    elif n <= 0xFF:
        out += _pack_B(0xC7, n)
    elif n <= 0xFFFF:
        out += _pack_H(0xC8, n)
    else:
        out += _pack_I(0xC9, n)
    out += struct.pack(">b", code)
    out += payload


def _pack(obj, out, depth):
    """Appends `obj`; `depth` = containers enclosing it (a container at depth 512 is refused)."""
    t = type(obj)
    if obj is None:
        out.append(0xC0)
    elif obj is True:
        out.append(0xC3)
    elif obj is False:
        out.append(0xC2)
    elif t is int:
        _pack_int(obj, out)
    elif t is str:
        if len(obj) <= 24:
            _pack_short_str(obj, out)
        else:
            _pack_str(obj, out)
    elif t is float:
        out += _pack_double(0xCB, obj) if obj == obj else CANONICAL_NAN
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _DepthExceeded()
        _pack_array_header(len(obj), out)
        depth += 1
        for item in obj:
            _pack(item, out, depth)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise _DepthExceeded()
        _pack_map_header(len(obj), out)
        depth += 1
        cache = _str_cache
        for k, v in obj.items():
            if type(k) is str and len(k) <= 24:
                data = cache.get(k)
                if data is not None:
                    out += data
                else:
                    _pack_short_str(k, out)
            else:
                _pack(k, out, depth)
            # Inline fast paths for a message's usual values (short ASCII str, small int,
            # bool, nil); the rest through _pack.
            tv = type(v)
            if tv is str and len(v) < 32 and v.isascii():
                out.append(0xA0 | len(v))
                out += v.encode("ascii")
            elif tv is int and 0 <= v <= 0x7F:
                out.append(v)
            elif v is True:
                out.append(0xC3)
            elif v is False:
                out.append(0xC2)
            elif v is None:
                out.append(0xC0)
            else:
                _pack(v, out, depth)
    elif t is bytes:
        _pack_bin(obj, out)
    else:
        _pack_other(obj, out, depth)


def _pack_other(obj, out, depth):
    # Subclasses and extension types, in the order the C packer checks them.
    if isinstance(obj, int) and not isinstance(obj, bool):
        _pack_int(int(obj), out)
    elif isinstance(obj, float):
        value = float(obj)
        out += _pack_double(0xCB, value) if value == value else CANONICAL_NAN
    elif isinstance(obj, str):
        _pack_str(str(obj), out)
    elif isinstance(obj, (bytes, bytearray)):
        _pack_bin(bytes(obj), out)
    elif isinstance(obj, memoryview):
        _pack_bin(obj.tobytes(), out)
    elif isinstance(obj, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise _DepthExceeded()
        _pack_array_header(len(obj), out)
        for item in obj:
            _pack(item, out, depth + 1)
    elif isinstance(obj, dict):
        if depth >= MAX_DEPTH:
            raise _DepthExceeded()
        _pack_map_header(len(obj), out)
        for k, v in obj.items():
            _pack(k, out, depth + 1)
            _pack(v, out, depth + 1)
    elif isinstance(obj, datetime.datetime):
        pack_ext(EXT_TIMESTAMP, datetime_to_ext(obj), out)
    elif isinstance(obj, (set, frozenset)):
        if depth >= MAX_DEPTH:
            raise _DepthExceeded()
        inner = bytearray()
        _pack_array_header(len(obj), inner)
        for item in obj:
            _pack(item, inner, depth + 1)
        pack_ext(EXT_SET, inner, out)
    elif isinstance(obj, NDArrayData):
        pack_ext(EXT_NDARRAY, packb(ndarraydata_parts(obj)), out)
    else:
        np = numpy_module()
        if np is not None and isinstance(obj, np.ndarray):
            pack_ext(EXT_NDARRAY, packb(ndarray_parts(obj)), out)
        elif np is not None and isinstance(obj, np.generic):
            _pack(obj.item(), out, depth)
        else:
            raise TypeError("cannot serialize an object of type %s" % type(obj).__name__)


def packb(obj, depth=0):
    """Canonical MessagePack bytes of `obj` (enclosed by `depth` containers). Raises on
    anything it cannot encode."""
    out = bytearray()
    _pack(obj, out, depth)
    return bytes(out)


# ---------------------------------------------------------------------------
# Decoding

_unpack_from = struct.unpack_from


def _take(data, pos, n):
    end = pos + n
    if end > len(data):
        raise DecodeError("truncated data: %d bytes needed at offset %d, %d available" % (n, pos, len(data) - pos))
    return end


def _str(data, pos, n):
    end = _take(data, pos, n)
    try:
        return data[pos:end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise DecodeError("invalid UTF-8 in a str: %s" % exc)


def _bin(data, pos, n):
    end = _take(data, pos, n)
    return data[pos:end], end


def _ext(data, pos, n, depth):
    end = _take(data, pos, n + 1)
    code = _unpack_from(">b", data, pos)[0]
    payload = data[pos + 1 : end]
    return decode_ext(code, payload, depth, unpack_payload), end


EXT_BIG = 127
"""The ext type of a big value's placeholder in a frame's head (bigread.py). Never on the
wire: a client's ext 127 lacks this process's nonce and is an unknown extension."""

NOT_BIG = object()
"""What `big_values.resolve` returns for an ext 127 that is not one of its placeholders."""

big_values = threading.local()
"""`big_values.resolve(payload, depth, unpack)`: set by bigread.SplitBody.decode in the
thread that decodes a frame's head, else unset or None."""


def decode_ext(code, payload, depth, unpack):
    """Turns an ext value into its Python value; `unpack(payload, depth)` decodes payloads.
    A set's payload array stands for the set itself (same depth)."""
    if code == EXT_BIG:
        resolve = getattr(big_values, "resolve", None)
        if resolve is not None:
            value = resolve(payload, depth, unpack)
            if value is not NOT_BIG:
                return value
    if code == EXT_TIMESTAMP:
        return ext_to_datetime(payload)
    if code == EXT_NDARRAY:
        parts = _ndarray_parts_by_view(payload)
        return ndarray_from_parts(parts if parts is not None else unpack(payload, 0))
    if code == EXT_SET:
        items = unpack(payload, depth)
        if not isinstance(items, list):
            raise DecodeError("set extension must hold an array")
        return set(to_hashable(v, "set element") for v in items)
    raise DecodeError("unknown extension type %d" % code)


_BIN_HEADERS = {0xC4: ">B", 0xC5: ">H", 0xC6: ">I"}


def ndarray_head(data, payload_len):
    """(dtype, shape, order, start) of an ndarray ext payload of `payload_len` bytes in the
    plain form [dtype, shape, order, bin] with the bin's data from `start` to the end;
    `data` holds at least the payload's first bytes up to `start`. None for any other form
    (the general decoder then says what is wrong)."""
    try:
        if data[0] != 0x94:
            return None
        parts = []
        pos = 1
        for _ in range(3):
            value, pos = _unpack(data, pos, 1)
            parts.append(value)
        fmt = _BIN_HEADERS.get(data[pos])
        if fmt is None:
            return None
        (n,) = struct.unpack_from(fmt, data, pos + 1)
        start = pos + 1 + struct.calcsize(fmt)
        if start + n != payload_len:
            return None
    except (DecodeError, ValueError, TypeError, IndexError, OverflowError, struct.error, RecursionError):
        return None
    return parts[0], parts[1], parts[2], start


def _ndarray_parts_by_view(payload):
    """[dtype, shape, order, data] of an ndarray payload with `data` a view into `payload`
    (no copy of the array's bytes: decoding then makes the one writable copy), or None
    when the payload is not the plain form (the general decoder then says what is wrong)."""
    if len(payload) < 1024:
        return None
    head = ndarray_head(payload, len(payload))
    if head is None:
        return None
    dtype, shape, order, start = head
    return [dtype, shape, order, memoryview(payload)[start:]]


def unpack_payload(payload, depth):
    obj, pos = _unpack(payload, 0, depth)
    if pos != len(payload):
        raise DecodeError("%d extra bytes in an extension payload" % (len(payload) - pos))
    return obj


def _unpack(data, pos, depth):
    """(value, next position); `depth` = containers enclosing the value."""
    if pos >= len(data):
        raise DecodeError("truncated data: a value expected at offset %d" % pos)
    b = data[pos]
    pos += 1
    if b <= 0x7F:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if b <= 0x8F:
        n = b & 0x0F
        what = "m"
    elif b <= 0x9F:
        n = b & 0x0F
        what = "a"
    elif b <= 0xBF:
        return _str(data, pos, b & 0x1F)
    elif b == 0xC0:
        return None, pos
    elif b == 0xC2:
        return False, pos
    elif b == 0xC3:
        return True, pos
    else:
        fmt = FORMATS.get(b)
        if fmt is None:
            raise DecodeError("invalid MessagePack byte 0x%02x at offset %d" % (b, pos - 1))
        what, code, size = fmt
        end = _take(data, pos, size)
        n = _unpack_from(code, data, pos)[0]
        pos = end
        if what == "v":
            return n, pos
        if what == "s":
            return _str(data, pos, n)
        if what == "b":
            return _bin(data, pos, n)
    # Arrays and maps are decoded here (not in helpers) so that one nesting level costs
    # one Python frame: 512 levels stay within the default recursion limit.
    if what == "a":
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d levels" % MAX_DEPTH)
        out = []
        append = out.append
        depth += 1
        for _ in range(n):
            item, pos = _unpack(data, pos, depth)
            append(item)
        return out, pos
    if what == "m":
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d levels" % MAX_DEPTH)
        out = {}
        depth += 1
        size = len(data)
        for _ in range(n):
            # Inline fast paths for what messages are made of (short str keys and values,
            # small ints): a call to _unpack per item was most of a message's decoding time.
            # Anything else, or anything wrong, goes through _unpack, which says what.
            b = data[pos] if pos < size else 0xC1
            end = pos + 1 + (b & 0x1F)
            if 0xA0 <= b <= 0xBF and end <= size:
                try:
                    key = data[pos + 1 : end].decode("utf-8")
                    pos = end
                except UnicodeDecodeError:
                    key, pos = _unpack(data, pos, depth)
            else:
                key, pos = _unpack(data, pos, depth)
                if type(key) is not str:
                    key = to_hashable(key, "map key")
            b = data[pos] if pos < size else 0xC1
            if b <= 0x7F:
                value = b
                pos += 1
            else:
                end = pos + 1 + (b & 0x1F)
                if 0xA0 <= b <= 0xBF and end <= size:
                    try:
                        value = data[pos + 1 : end].decode("utf-8")
                        pos = end
                    except UnicodeDecodeError:
                        value, pos = _unpack(data, pos, depth)
                else:
                    value, pos = _unpack(data, pos, depth)
            out[key] = value
        return out, pos
    if what == "e":
        return _ext(data, pos, n, depth)
    # fixext: `n` is the type code, `what` the payload size.
    end = _take(data, pos, what)
    return decode_ext(n, data[pos:end], depth, unpack_payload), end


# byte -> (kind, struct format, bytes read); kind v=value s=str b=bin a=array m=map
# e=ext with a length, int=fixext payload size (the format reads the type code).
# bigread.py walks big frames with this table too.
FORMATS = {
    0xC4: ("b", ">B", 1),
    0xC5: ("b", ">H", 2),
    0xC6: ("b", ">I", 4),
    0xC7: ("e", ">B", 1),
    0xC8: ("e", ">H", 2),
    0xC9: ("e", ">I", 4),
    0xCA: ("v", ">f", 4),
    0xCB: ("v", ">d", 8),
    0xCC: ("v", ">B", 1),
    0xCD: ("v", ">H", 2),
    0xCE: ("v", ">I", 4),
    0xCF: ("v", ">Q", 8),
    0xD0: ("v", ">b", 1),
    0xD1: ("v", ">h", 2),
    0xD2: ("v", ">i", 4),
    0xD3: ("v", ">q", 8),
    0xD4: (1, ">b", 1),
    0xD5: (2, ">b", 1),
    0xD6: (4, ">b", 1),
    0xD7: (8, ">b", 1),
    0xD8: (16, ">b", 1),
    0xD9: ("s", ">B", 1),
    0xDA: ("s", ">H", 2),
    0xDB: ("s", ">I", 4),
    0xDC: ("a", ">H", 2),
    0xDD: ("a", ">I", 4),
    0xDE: ("m", ">H", 2),
    0xDF: ("m", ">I", 4),
}


def unpackb(data):
    """Decodes exactly one MessagePack value from `data`. Raises DecodeError."""
    if not isinstance(data, bytes):
        data = bytes(data)
    try:
        obj, pos = _unpack(data, 0, 0)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("nesting too deep to decode")
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        raise DecodeError(str(exc))
    if pos != len(data):
        raise DecodeError("%d extra bytes after the value" % (len(data) - pos))
    return obj
