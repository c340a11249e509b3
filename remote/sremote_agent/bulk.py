"""Results with one big value, framed without copying the value (issue 16, "Bulk data").

A result whose `value` is a big `bytes`/`bytearray`/`memoryview`, `str` or C-contiguous
little-endian numpy array is encoded as a list of buffers: the result's other keys packed as
usual with `value` moved last, then the value's MessagePack header, then the value's own
memory (a view: no copy, and above all no freshly allocated buffer of the value's size,
whose page faults are what a big copy costs most on a VM). The frame is written with one
writev. The bytes on the wire are those of the canonical encoding with `value` as the last
key (bin32/str32/ext32 headers: the smallest form for these sizes); key order carries no
meaning in the protocol.
"""

import struct

from . import codec
from .values import numpy_module

SPLIT_BYTES = 256 * 1024
"""Values from this size on are framed by reference (well above bin16's 65,535 bytes, so
the 32-bit headers below are the canonical ones)."""

_NIL_VALUE = b"\xa5value\xc0"  # the packed tail of a result whose last key is value = nil
_u32 = struct.Struct(">I")


def _array_view(value):
    """(dtype str, shape, byte view) of a numpy array sent as it is, or None."""
    np = numpy_module()
    if np is None or not isinstance(value, np.ndarray):
        return None
    dtype = value.dtype
    if dtype.hasobject or not value.flags["C_CONTIGUOUS"] or dtype.byteorder == ">":
        return None
    if dtype.byteorder == "=" and dtype.str[0] != "<" and dtype.itemsize > 1:
        return None  # a big-endian machine: the usual path converts
    if value.ndim == 0:
        return None
    try:
        view = memoryview(value).cast("B")
    except (TypeError, ValueError):
        return None
    return dtype.str, [int(n) for n in value.shape], view


def split_result(result):
    """The result's frame body as [head, tail] buffers when its value is big enough to be
    sent by reference, else None (the caller packs it as usual)."""
    if not result.get("ok"):
        return None
    value = result.get("value")
    t = type(value)
    if t is bytes or t is bytearray or t is memoryview:
        if t is memoryview:
            try:
                view = value.cast("B")  # C-contiguous views only
            except (TypeError, ValueError):
                return None
        else:
            view = value
        if len(view) < SPLIT_BYTES:
            return None
        header = b"\xc6" + _u32.pack(len(view))
    elif t is str:
        if len(value) < SPLIT_BYTES:
            return None
        try:
            view = value.encode("utf-8")
        except UnicodeEncodeError:
            return None  # the usual path reports it (a serialization error with its path)
        header = b"\xdb" + _u32.pack(len(view))
    else:
        parts = _array_view(value)
        if parts is None or len(parts[2]) < SPLIT_BYTES:
            return None
        dtype, shape, view = parts
        inner = bytearray(codec.packb([dtype, shape, "C"], "result", 1))
        inner[0] = 0x94  # a 4-element array: the data follows
        inner += b"\xc6" + _u32.pack(len(view))
        header = b"\xc9" + _u32.pack(len(inner) + len(view)) + b"\x01" + bytes(inner)
    rest = dict(result)
    rest.pop("value")
    rest["value"] = None
    head = codec.packb(rest, "result")
    if not head.endswith(_NIL_VALUE):
        return None  # not packed in insertion order: let the usual path do it
    return [head[:-1] + header, view]


def body_length(body):
    """Length of a frame body: bytes-like, or a list of buffers."""
    if type(body) is list:
        return sum(len(part) for part in body)
    return len(body)


def joined(body):
    """A frame body as one bytes-like object (copies a list of buffers)."""
    if type(body) is list:
        return b"".join(body)
    return body
