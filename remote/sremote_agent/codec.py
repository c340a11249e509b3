"""The agent's MessagePack codec: the `msgpack` C package when importable (1.0 or newer),
else the pure-Python `codec_pure`. Both give the same canonical bytes and the same errors
(docs/protocol.md section 1).

    packb(value, root="result", depth=0) -> bytes   raises SerializationError (with .path);
                                                    depth = containers enclosing the value
    unpackb(data) -> value                          raises DecodeError
    CODEC                                           "c" or "pure"
    packb_pure/unpackb_pure, packb_c/unpackb_c      each implementation (the C pair is None
                                                    without msgpack); SREMOTE_CODEC=pure
                                                    forces the pure one
"""

import datetime
import functools
import os
import threading

from . import codec_pure
from .values import (
    EXT_NDARRAY,
    EXT_TIMESTAMP,
    MAX_DEPTH,
    DecodeError,
    NDArrayData,
    SerializationError,
    check_depth,
    datetime_to_ext,
    locate_problem,
    ndarray_parts,
    ndarraydata_parts,
    numpy_module,
)


def _load_msgpack():
    if os.environ.get("SREMOTE_CODEC") == "pure":
        return None
    try:
        import msgpack
    except Exception:
        return None
    version = getattr(msgpack, "version", (0,))
    if tuple(version[:1]) < (1,) or not hasattr(msgpack, "Packer"):
        return None
    return msgpack


_msgpack = _load_msgpack()
CODEC = "c" if _msgpack is not None else "pure"
"""Which implementation this process uses: "c" (the msgpack package) or "pure"."""


def _encode_error(value, root, depth):
    found = locate_problem(value, root, depth)
    if found is None:
        return None
    path, message, type_name = found
    return SerializationError("%s at %s" % (message, path), path, type_name)


def packb_pure(value, root="result", depth=0):
    """`packb` through the pure-Python codec."""
    try:
        return codec_pure.packb(value, depth)
    except Exception as exc:  # includes RecursionError and the pure codec's own depth signal
        err = _encode_error(value, root, depth)
        if err is None:
            err = SerializationError("cannot serialize %s: %s" % (root, exc), root, type(exc).__name__)
        raise err


def unpackb_pure(data):
    """`unpackb` through the pure-Python codec."""
    return codec_pure.unpackb(data)


if _msgpack is not None:
    _ExtType = _msgpack.ExtType

    class _NeedsPureCodec(Exception):
        """A value the C packer cannot carry with exact depth accounting (a set)."""

    def _default(obj):
        if isinstance(obj, datetime.datetime):
            return _ExtType(EXT_TIMESTAMP, datetime_to_ext(obj))
        if isinstance(obj, NDArrayData):
            return _ExtType(EXT_NDARRAY, _c_packb(ndarraydata_parts(obj)))
        np = numpy_module()
        if np is not None:
            if isinstance(obj, np.ndarray):
                return _ExtType(EXT_NDARRAY, _c_packb(ndarray_parts(obj)))
            if isinstance(obj, np.generic):
                return obj.item()
        if isinstance(obj, (set, frozenset)):
            # Its payload would be packed separately, hiding its depth: let the pure codec do it.
            raise _NeedsPureCodec()
        raise TypeError("cannot serialize an object of type %s" % type(obj).__name__)

    _c_packer_options = dict(use_bin_type=True, use_single_float=False, strict_types=False, datetime=False)

    def _c_packb(obj):
        return _msgpack.packb(obj, default=_default, **_c_packer_options)

    # One Packer per thread for whole messages (building a Packer per message cost as much
    # as packing a small one). Nested payloads (an ndarray's) go through _c_packb: a Packer
    # must not be re-entered while it packs.
    _packers = threading.local()

    def _c_pack_message(obj):
        packer = getattr(_packers, "packer", None)
        if packer is None:
            packer = _packers.packer = _msgpack.Packer(default=_default, **_c_packer_options)
        return packer.pack(obj)

    def _ext_hook(code, payload):
        # Nested payloads (sets) are decoded with fresh depth; the whole value is checked afterwards.
        return codec_pure.decode_ext(code, payload, 0, _c_unpack_payload)

    def _c_unpack_payload(payload, depth):
        return _c_unpackb(payload, pairs=True)

    def _pairs_hook(pairs):
        out = {}
        for k, v in pairs:
            if type(k) is not str:
                k = codec_pure.to_hashable(k, "map key")
            out[k] = v
        return out

    _c_unpack_options = dict(raw=False, strict_map_key=False, timestamp=3, ext_hook=_ext_hook, use_list=True)
    _c_unpack = functools.partial(_msgpack.unpackb, **_c_unpack_options)
    _c_unpack_pairs = functools.partial(_msgpack.unpackb, object_pairs_hook=_pairs_hook, **_c_unpack_options)

    def _c_unpackb(data, pairs=False):
        return _c_unpack_pairs(data) if pairs else _c_unpack(data)

    _NAN_EXPONENT = 0x7FF0000000000000
    _NAN_MANTISSA = 0x000FFFFFFFFFFFFF
    _QUIET_NAN = 0x7FF8000000000000

    def _has_other_nan(data):
        """True when `data` may hold a float64 NaN other than the canonical quiet NaN
        (the C packer writes NaN bits as they are). False positives only cost speed."""
        for prefix in (b"\xcb\x7f", b"\xcb\xff"):
            i = data.find(prefix)
            while i >= 0:
                bits = int.from_bytes(data[i + 1 : i + 9], "big")
                if bits & _NAN_EXPONENT == _NAN_EXPONENT and bits & _NAN_MANTISSA and bits != _QUIET_NAN:
                    return True
                i = data.find(prefix, i + 1)
        return False

    def _maybe_bad_timestamp(data):
        """True when `data` may hold a timestamp with nanoseconds >= 10^9 (false positives
        in other bytes only cost speed). The 32-bit form has no nanoseconds."""
        i = data.find(b"\xd7\xff")
        while i >= 0:
            if int.from_bytes(data[i + 2 : i + 6], "big") >> 2 > 999999999:
                return True
            i = data.find(b"\xd7\xff", i + 1)
        i = data.find(b"\xc7\x0c\xff")
        while i >= 0:
            if int.from_bytes(data[i + 3 : i + 7], "big") > 999999999:
                return True
            i = data.find(b"\xc7\x0c\xff", i + 1)
        return False

    def _any_leaf(value, match):
        """True when a non-container inside `value` (lists, tuples, dicts with their keys,
        sets) satisfies `match`. Confirms what a byte scan suspected: the scans also hit
        the insides of bin and str payloads (random bytes hold their patterns), and a
        false hit sent a 64 MiB value through the pure codec."""
        containers = (list, tuple, dict, set, frozenset)
        stack = [value]
        for _ in range(1 << 30):  # bounded: the value is finite (checked for depth)
            if not stack:
                return False
            obj = stack.pop()
            t = type(obj)
            if t is dict:
                stack.extend(obj.keys())
                stack.extend(obj.values())
            elif t in containers or isinstance(obj, containers):
                stack.extend(obj.items() if isinstance(obj, dict) else obj)
            elif match(obj):
                return True
        return True

    def _is_nan(obj):
        if isinstance(obj, float):
            return obj != obj
        np = numpy_module()
        return np is not None and isinstance(obj, np.floating) and obj != obj

    def _is_datetime(obj):
        return isinstance(obj, datetime.datetime)

    def packb_c(value, root="result", depth=0):
        """`packb` through the msgpack C package."""
        if depth == 0:
            try:
                data = _c_pack_message(value)
                if not _has_other_nan(data) or not _any_leaf(value, _is_nan):
                    return data
            except Exception:
                err = _encode_error(value, root, depth)
                if err is not None:
                    raise err
        # Valid by our rules but not something the C packer takes as is (a set, nesting the
        # C packer counts differently, an unusual buffer, a NaN to canonicalise): the pure
        # codec gives the same bytes.
        return packb_pure(value, root, depth)

    def unpackb_c(data):
        """`unpackb` through the msgpack C package."""
        suspect = b"\xff" in data and _maybe_bad_timestamp(data)  # a timestamp ext has 0xff as its type
        try:
            try:
                value = _c_unpack(data)
            except TypeError:
                # An array used as a map key: decode again turning such keys into tuples.
                value = _c_unpack_pairs(data)
        except DecodeError:
            raise
        except Exception as exc:
            if suspect:
                return codec_pure.unpackb(data)  # the pure decoder's message for it
            raise DecodeError("%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__)
        if suspect and _any_leaf(value, _is_datetime):
            # msgpack's C decoder does not reject nanoseconds >= 10^9: input that may hold
            # such a timestamp goes through the pure decoder, which checks every rule.
            return codec_pure.unpackb(data)
        # The C unpacker allows deeper nesting than the protocol: check it (513 nested
        # containers need more than 512 bytes, so small frames skip the walk).
        if len(data) > MAX_DEPTH and isinstance(value, (list, dict, set)):
            check_depth(value)
        return value

    packb = packb_c
    unpackb = unpackb_c

else:
    packb_c = unpackb_c = None
    packb = packb_pure
    unpackb = unpackb_pure
