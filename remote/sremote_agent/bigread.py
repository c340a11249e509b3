"""Big request frames read without a buffer of the frame's size (issue 16, "Bulk data").

A frame of 1 MiB or more that is not yet buffered (frames.FrameChannel._read_big) is walked
token by token as it arrives. Each big value in it (`bin`, `str` or an ndarray ext of
bulk.SPLIT_BYTES or more, not a map key) is read from the input straight into the `bytes`
object the call gets, and the frame's other bytes, the small "head", keep a placeholder in
its place. Decoding the head then puts the values back (`SplitBody.decode`).

Before, the whole frame was read into one buffer and the decoder copied each value out of
it: for a 64 MiB argument two fresh 64 MiB buffers, whose page faults cost a VM ~130-270 ms
each, plus two byte scans of the frame for the C codec's checks.

The placeholder is an ext of type EXT_BIG holding this process's random nonce and the
value's index. It is never on the wire: the head is built here, and an ext of that type
that a client sent without the nonce decodes as any unknown extension does.
"""

import io
import os
import struct
import sys

from . import codec, codec_pure
from .bulk import SPLIT_BYTES
from .values import EXT_NDARRAY, empty_ndarray

BIG_FRAME = 1 << 20
"""Frames (session) and request files (file carrier) from this size on are read here."""

_TOKENS = 1024
"""Tokens walked in one frame at most: a frame of many small values is read whole, as before
(walking it in Python would cost more than the buffer)."""

_NONCE = os.urandom(8)
_placeholder_head = struct.Struct(">BBb8sI")  # ext8, 12 bytes, type, nonce, index


class Truncated(Exception):
    """The input ended inside the frame; read_body gives it `args[0]`: the frame's bytes
    that arrived."""


class SplitBody(object):
    """A frame body as its head and the big values read apart from it."""

    __slots__ = ("head", "parts")

    def __init__(self, head, parts):
        self.head = head
        # [(kind, ext type or None, data)]: "b" bin, "s" str, "e" ext (data: the payload's
        # bytes), "v" an ndarray already decoded (data: the array)
        self.parts = parts

    def decode(self):
        """The message, as codec.unpackb would give it for the whole frame."""
        codec_pure.big_values.resolve = self._resolve
        try:
            return codec.unpackb(self.head)
        finally:
            codec_pure.big_values.resolve = None

    def _resolve(self, payload, depth, unpack):
        if len(payload) != 12 or payload[:8] != _NONCE:
            return codec_pure.NOT_BIG
        index = int.from_bytes(payload[8:], "big")
        if index >= len(self.parts):
            return codec_pure.NOT_BIG
        kind, code, data = self.parts[index]
        if kind == "b" or kind == "v":
            return data
        if kind == "s":
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise codec_pure.DecodeError("UnicodeDecodeError: %s" % exc)
        return codec_pure.decode_ext(code, data, depth, unpack)


class _Source(object):
    """The rest of one frame: `buf[pos:]` (arrived), then `left` bytes still in `fd`."""

    def __init__(self, fd, buf, left):
        self.fd = fd
        self.buf = buf
        self.pos = 0
        self.left = left
        self.limit = 0  # bytes _Raw may still serve (the value being read)

    def need(self, n):
        """True once `buf[pos:]` holds `n` bytes; False when the frame ends before that."""
        buf = self.buf
        for _ in range(n + 1):  # bounded: every pass reads at least one byte or returns
            have = len(buf) - self.pos
            if have >= n:
                return True
            if self.left == 0:
                return False
            chunk = os.read(self.fd, min(self.left, max(n - have, 65536)))
            if not chunk:
                raise Truncated()
            self.left -= len(chunk)
            buf += chunk
        return True

    def read_value(self, n):
        """The next `n` bytes of the frame as one `bytes` object, read into it directly."""
        if _DIRECT:
            self.limit = n
            data = io.BufferedReader(_Raw(self), buffer_size=1).read(n)
            if len(data) < n:
                raise Truncated()
            self._taken()
            return data
        data = bytearray(n)
        with memoryview(data) as view:
            self.read_into(view)
        return bytes(data)

    def read_into(self, view):
        """The next `len(view)` bytes of the frame, read into `view`."""
        n = len(view)
        self.limit = n
        raw = _Raw(self)
        got = 0
        for _ in range(n):  # bounded: every pass reads at least one byte or raises
            if got >= n:
                break
            step = raw.readinto(view[got:])
            if step == 0:
                raise Truncated()
            got += step
        self._taken()

    def _taken(self):
        # What stayed in `buf` after the value is the head's next bytes.
        del self.buf[: self.pos]
        self.pos = 0


# CPython's BufferedReader.read(n) with a buffer of 1 byte allocates the bytes object once and
# has the raw reader fill it in place; elsewhere the bytes are read, then copied.
_DIRECT = sys.implementation.name == "cpython"


class _Raw(io.RawIOBase):
    """Serves a _Source's bytes to a BufferedReader: those that arrived, then the input's,
    never more than `source.limit` (so nothing past the value is taken)."""

    def __init__(self, source):
        io.RawIOBase.__init__(self)
        self.source = source

    def readable(self):
        return True

    def readinto(self, b):
        src = self.source
        want = min(len(b), src.limit)
        if want <= 0:
            return 0
        have = len(src.buf) - src.pos
        if have > 0:
            n = min(have, want)
            b[:n] = src.buf[src.pos : src.pos + n]
            src.pos += n
        else:
            if src.left == 0:
                return 0
            want = min(want, src.left)
            n = os.readv(src.fd, [b[:want]] if want < len(b) else [b])
            if n == 0:
                raise Truncated()
            src.left -= n
        src.limit -= n
        return n


def read_body(fd, arrived, size):
    """The body of a `size`-byte frame whose first bytes `arrived` (a bytearray, taken over):
    a SplitBody when it holds big values, else the body as one bytearray (as before).
    Raises Truncated when the input ends first."""
    src = _Source(fd, arrived, size - len(arrived))
    try:
        return _walk(src, size)
    except Truncated:
        raise Truncated(size - src.left)


def _walk(src, size):
    head = bytearray()
    parts = []
    mark = 0  # buf[mark:pos] is head not yet copied
    left = [1]  # values still to come in each open container (the frame: one)
    in_map = [False]
    for _ in range(_TOKENS):
        if len(left) == 1 and left[0] == 0:  # the frame's value is complete
            break
        key = in_map[-1] and left[-1] % 2 == 0
        left[-1] -= 1
        if not src.need(1):
            break
        buf = src.buf
        lead = buf[src.pos]
        if lead <= 0x7F or lead >= 0xE0:  # fixint
            src.pos += 1
        elif lead <= 0x8F:  # fixmap
            src.pos += 1
            if lead & 0x0F:
                left.append(2 * (lead & 0x0F))
                in_map.append(True)
        elif lead <= 0x9F:  # fixarray
            src.pos += 1
            if lead & 0x0F:
                left.append(lead & 0x0F)
                in_map.append(False)
        elif lead <= 0xBF:  # fixstr
            if not src.need(1 + (lead & 0x1F)):
                break
            src.pos += 1 + (lead & 0x1F)
        elif lead == 0xC0 or lead == 0xC2 or lead == 0xC3:  # nil, false, true
            src.pos += 1
        else:
            spec = codec_pure.FORMATS.get(lead)
            if spec is None:  # 0xc1: the decoder says what is wrong
                break
            kind, fmt, width = spec  # width: bytes of the length (of a number: its size)
            if type(kind) is int:  # fixext: type byte, then `kind` bytes
                if not src.need(2 + kind):
                    break
                src.pos += 2 + kind
            elif kind == "v":  # number
                if not src.need(1 + width):
                    break
                src.pos += 1 + width
            else:
                hdr = 1 + width + (kind == "e")  # an ext's type byte follows its length
                if not src.need(hdr):
                    break
                (n,) = struct.unpack_from(fmt, buf, src.pos + 1)
                if kind == "a" or kind == "m":
                    src.pos += hdr
                    if n:
                        left.append(2 * n if kind == "m" else n)
                        in_map.append(kind == "m")
                else:
                    code = struct.unpack_from(">b", buf, src.pos + 1 + width)[0] if kind == "e" else None
                    if n >= SPLIT_BYTES and not key and (kind != "e" or code == EXT_NDARRAY):
                        head += buf[mark : src.pos]
                        head += _placeholder_head.pack(0xC7, 12, codec_pure.EXT_BIG, _NONCE, len(parts))
                        src.pos += hdr
                        array = _ndarray_header(src, n) if kind == "e" else None
                        if array is not None:
                            # Its data straight into a fresh numpy array: the one writable
                            # copy the general path makes, without the payload before it.
                            src.pos += array[1]
                            src.read_into(memoryview(array[0].reshape(-1).view("u1")))
                            parts.append(("v", None, array[0]))
                        else:
                            parts.append((kind, code, src.read_value(n)))
                        mark = 0
                    else:
                        if not src.need(hdr + n):
                            break
                        src.pos += hdr + n
        while len(left) > 1 and left[-1] == 0:
            left.pop()
            in_map.pop()
    buf = src.buf
    if not parts:
        # No big value: the frame in one buffer of its size, read into directly.
        body = bytearray(size)
        have = len(buf)
        body[:have] = buf
        del buf[:]
        _read_into(src, memoryview(body), have, size)
        return body
    head += buf[mark:]
    del buf[:]
    rest = bytearray(src.left)
    _read_into(src, memoryview(rest), 0, len(rest))
    head += rest
    return SplitBody(head, parts)


def _ndarray_header(src, n):
    """(empty array, header bytes) for the ndarray ext payload of `n` bytes at `src.pos`,
    or None (the general path)."""
    if not src.need(min(n, 1024)):
        return None
    head = codec_pure.ndarray_head(bytes(src.buf[src.pos : src.pos + min(n, 1024)]), n)
    if head is None:
        return None
    dtype, shape, order, start = head
    array = empty_ndarray(dtype, shape, order, n - start)
    return None if array is None else (array, start)


def _read_into(src, view, have, size):
    for _ in range(size + 1):  # bounded: every pass reads at least one byte or ends
        if have >= size:
            return
        n = os.readv(src.fd, [view[have:]])
        if n == 0:
            raise Truncated()
        src.left -= n
        have += n
