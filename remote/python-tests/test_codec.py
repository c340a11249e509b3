"""Both codecs (pure and msgpack C) against docs/protocol.md section 1 and the shared vectors."""

import binascii
import datetime
import decimal
import math
import os
import random
import struct
import unittest

import support
from sremote_agent import PROTOCOL_VERSION, codec, codec_pure
from sremote_agent.messages import CallRequest, MessageError, parse_client_message, parse_request
from sremote_agent.values import DecodeError, NDArrayData, SerializationError

UTC = datetime.timezone.utc


def h(data):
    return binascii.hexlify(data).decode()


def b(hexstr):
    return binascii.unhexlify(hexstr.replace(" ", ""))


class CodecCases(object):
    """Cases every codec passes. Subclasses set `packb` and `unpackb`."""

    packb = None
    unpackb = None

    def enc(self, value, root="result"):
        return type(self).packb(value, root)

    def dec(self, data):
        return type(self).unpackb(data)

    def assertEncodes(self, value, hexstr):
        self.assertEqual(h(self.enc(value)), hexstr.replace(" ", ""), repr(value)[:80])

    def assertRoundTrip(self, value, expected=None):
        got = self.dec(self.enc(value))
        self.assertTrue(support.same_value(got, value if expected is None else expected), "%r -> %r" % (value, got))

    def assertSerializationError(self, value, path, contains=""):
        with self.assertRaises(SerializationError) as ctx:
            self.enc(value)
        self.assertEqual(ctx.exception.path, path)
        self.assertIn(contains, str(ctx.exception))
        return ctx.exception

    def assertDecodeError(self, hexstr, contains=""):
        with self.assertRaises(DecodeError) as ctx:
            self.dec(b(hexstr))
        self.assertIn(contains, str(ctx.exception))

    # -- canonical encodings --------------------------------------------------

    def test_ints_use_the_smallest_format(self):
        cases = [
            (0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"), (65535, "cdffff"),
            (65536, "ce00010000"), (2**32 - 1, "ceffffffff"), (2**32, "cf0000000100000000"),
            (2**64 - 1, "cfffffffffffffffff"), (-1, "ff"), (-32, "e0"), (-33, "d0df"), (-128, "d080"),
            (-129, "d1ff7f"), (-32768, "d18000"), (-32769, "d2ffff7fff"), (-(2**31), "d280000000"),
            (-(2**31) - 1, "d3ffffffff7fffffff"), (-(2**63), "d38000000000000000"),
        ]
        for value, hexstr in cases:
            self.assertEncodes(value, hexstr)
            self.assertEqual(self.dec(b(hexstr)), value)
            self.assertIs(type(self.dec(b(hexstr))), int)

    def test_bools_and_none(self):
        self.assertEncodes(None, "c0")
        self.assertEncodes(True, "c3")
        self.assertEncodes(False, "c2")
        self.assertIs(self.dec(b("c3")), True)

    def test_int_subclasses_encode_as_ints(self):
        import enum

        class Color(enum.IntEnum):
            RED = 300

        self.assertEncodes(Color.RED, "cd012c")

    def test_floats_are_always_float64(self):
        self.assertEncodes(1.0, "cb3ff0000000000000")
        self.assertEncodes(0.5, "cb3fe0000000000000")
        self.assertEncodes(-0.0, "cb8000000000000000")
        self.assertEncodes(float("inf"), "cb7ff0000000000000")
        self.assertEncodes(float("-inf"), "cbfff0000000000000")
        self.assertTrue(math.isnan(self.dec(self.enc(float("nan")))))

    def test_every_nan_encodes_as_the_canonical_quiet_nan(self):
        inf = float("inf")
        odd = [inf - inf, -float("nan"), struct.unpack(">d", bytes.fromhex("7ff0000000000001"))[0]]
        self.assertNotEqual(struct.pack(">d", odd[0]), bytes.fromhex("7ff8000000000000"))
        for nan in odd:
            self.assertEncodes(nan, "cb7ff8000000000000")
            self.assertEncodes({"k": [1, nan]}, "81a16b9201cb7ff8000000000000")
        # bin data that merely looks like a NaN is left alone
        self.assertEncodes(b"\xcb\xff\xf8\x00\x00\x00\x00\x00\x01", "c409cbfff8000000000001")
        self.assertIs(type(self.dec(b("cb3ff0000000000000"))), float)

    def test_float32_is_accepted_and_widened(self):
        value = self.dec(b("ca3fc00000"))
        self.assertEqual(value, 1.5)
        self.assertIs(type(value), float)

    def test_str_formats(self):
        self.assertEncodes("", "a0")
        self.assertEncodes("abc", "a3616263")
        self.assertEqual(h(self.enc("x" * 31))[:2], "bf")
        self.assertEqual(h(self.enc("x" * 32))[:4], "d920")
        self.assertEqual(h(self.enc("x" * 255))[:4], "d9ff")
        self.assertEqual(h(self.enc("x" * 256))[:6], "da0100")
        self.assertEqual(h(self.enc("x" * 65536))[:10], "db00010000")
        self.assertEncodes("\u00e9", "a2c3a9")
        for n in (0, 31, 32, 255, 256, 65535, 65536):
            self.assertRoundTrip("y" * n)
        self.assertRoundTrip("emoji \U0001f600 and \u4e2d\u6587")

    def test_bin_formats(self):
        self.assertEncodes(b"", "c400")
        self.assertEncodes(b"\x00\xff", "c40200ff")
        self.assertEncodes(bytearray(b"ab"), "c4026162")
        self.assertEncodes(memoryview(b"ab"), "c4026162")
        self.assertEqual(h(self.enc(b"x" * 256))[:6], "c50100")
        self.assertEqual(h(self.enc(b"x" * 65536))[:10], "c600010000")
        self.assertIs(type(self.dec(b("c40200ff"))), bytes)

    def test_arrays_and_tuples(self):
        self.assertEncodes([], "90")
        self.assertEncodes([1, [2]], "92019102")
        self.assertEncodes((1, 2), "920102")
        self.assertEqual(h(self.enc(list(range(15))))[:2], "9f")
        self.assertEqual(h(self.enc(list(range(16))))[:6], "dc0010")
        self.assertEqual(h(self.enc([0] * 65536))[:10], "dd00010000")
        self.assertEqual(self.dec(self.enc((1, (2, 3)))), [1, [2, 3]])

    def test_maps_keep_insertion_order(self):
        self.assertEncodes({}, "80")
        self.assertEncodes({"b": 1, "a": 2}, "82a16201a16102")
        self.assertEqual(h(self.enc({str(i): i for i in range(16)}))[:6], "de0010")
        value = self.dec(b("82a16201a16102"))
        self.assertEqual(list(value), ["b", "a"])
        self.assertEqual(self.dec(self.enc({1: "x", None: "y"})), {1: "x", None: "y"})

    def test_array_map_keys_become_tuples(self):
        self.assertEqual(self.dec(b("81 92 01 92 02 03 a1 78")), {(1, (2, 3)): "x"})
        self.assertEncodes({(1, 2): "x"}, "81920102a178")

    def test_unhashable_map_keys_are_protocol_errors(self):
        self.assertDecodeError("81 80 01", "map key")
        self.assertDecodeError("81 d5 02 91 01 01", "map key")

    def test_timestamps_use_the_canonical_form(self):
        self.assertEncodes(datetime.datetime(1970, 1, 1, tzinfo=UTC), "d6ff00000000")
        self.assertEncodes(datetime.datetime(2020, 1, 1, tzinfo=UTC), "d6ff5e0be100")
        # microseconds: 64-bit form (nanoseconds << 34 | seconds)
        value = datetime.datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
        nanos = 123456000
        seconds = 1577836800
        self.assertEncodes(value, "d7ff" + "%016x" % ((nanos << 34) | seconds))
        # seconds >= 2^34: 96-bit form
        far = datetime.datetime(2600, 1, 1, tzinfo=UTC)
        secs = int((far - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
        self.assertGreaterEqual(secs, 2**34)
        self.assertEncodes(far, "c70cff00000000" + "%016x" % secs)
        # before 1970: 96-bit form with negative seconds
        self.assertEncodes(datetime.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), "c70cff00000000ffffffffffffffff")
        # 2^32 <= seconds < 2^34 and no nanoseconds: 64-bit form
        late = datetime.datetime(2106, 2, 8, tzinfo=UTC)
        secs = int((late - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
        self.assertTrue(2**32 <= secs < 2**34)
        self.assertEncodes(late, "d7ff" + "%016x" % secs)

    def test_naive_datetimes_are_utc_and_aware_ones_are_converted(self):
        naive = datetime.datetime(2020, 1, 1, 12, 0)
        self.assertEqual(self.enc(naive), self.enc(naive.replace(tzinfo=UTC)))
        plus2 = datetime.timezone(datetime.timedelta(hours=2))
        self.assertEqual(self.enc(datetime.datetime(2020, 1, 1, 14, 0, tzinfo=plus2)), self.enc(naive))
        got = self.dec(self.enc(naive))
        self.assertEqual(got, naive.replace(tzinfo=UTC))
        self.assertEqual(got.utcoffset(), datetime.timedelta(0))

    def test_timestamp_decoding_truncates_below_microseconds(self):
        data = b("d7ff") + ((999 << 34) | 10).to_bytes(8, "big")
        self.assertEqual(self.dec(data), datetime.datetime(1970, 1, 1, 0, 0, 10, 0, tzinfo=UTC))
        data = b("c70cff") + (1999).to_bytes(4, "big") + (-1).to_bytes(8, "big", signed=True)
        self.assertEqual(self.dec(data), datetime.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC))

    def test_bad_timestamps_are_protocol_errors(self):
        self.assertDecodeError("d5ff0000")  # 2-byte payload
        self.assertDecodeError("c70cff" + "ffffffff" + "0000000000000000")  # nanoseconds > 999999999
        self.assertDecodeError("c70cff00000000" + "7fffffffffffffff")  # beyond Python's datetime

    def test_sets(self):
        self.assertEncodes({1}, "d5029101")
        self.assertEncodes(frozenset([2]), "d5029102")
        self.assertEqual(self.dec(b("d5029101")), {1})
        self.assertIs(type(self.dec(b("d5029101"))), set)
        self.assertEqual(self.dec(self.enc({1, "a", (1, 2)})), {1, "a", (1, 2)})
        self.assertEqual(self.dec(self.enc([{1}, {"k": {2}}])), [{1}, {"k": {2}}])

    def test_set_elements_that_are_arrays_become_tuples(self):
        self.assertEqual(self.dec(b("d602 91 92 01 02")), {(1, 2)})

    def test_unhashable_set_elements_are_protocol_errors(self):
        self.assertDecodeError("c70202 91 80", "set element")

    def test_unknown_ext_types_are_protocol_errors(self):
        self.assertDecodeError("d40500", "extension")

    def test_ndarraydata_encodes_as_ext_1(self):
        value = NDArrayData("<i4", [2], b"\x01\x00\x00\x00\x02\x00\x00\x00")
        payload = self.enc(["<i4", [2], "C", b"\x01\x00\x00\x00\x02\x00\x00\x00"])
        self.assertEqual(self.enc(value), b("c7") + bytes([len(payload)]) + b("01") + payload)

    def test_ndarraydata_must_be_consistent(self):
        self.assertSerializationError(NDArrayData("<i4", [3], b"\x00" * 8), "result", "needs 12")
        self.assertSerializationError([NDArrayData(">f8", [1], b"\x00" * 8)], "result[0]", "little-endian")

    def test_invalid_ndarray_payloads_are_protocol_errors(self):
        def ext(parts):
            payload = codec_pure.packb(parts)
            return h(b("c7") + bytes([len(payload)]) + b("01") + payload)

        self.assertDecodeError(ext(["<f8", [2], "C", b"\x00" * 8]), "needs 16")
        self.assertDecodeError(ext(["<f8", [1], "F", b"\x00" * 8]), "order")
        self.assertDecodeError(ext([">f8", [1], "C", b"\x00" * 8]), "little-endian")
        self.assertDecodeError(ext(["<f8", [1], "C"]), "[dtype, shape, order, data]")
        self.assertDecodeError(ext(["<f8", [-1], "C", b""]), "shape")

    def test_ndarray_without_numpy_decodes_to_a_dict(self):
        if support.numpy_or_none() is not None:
            self.skipTest("numpy is importable here (tests/test_numpy.py covers arrays)")
        payload = codec_pure.packb(["<u2", [2], "C", b"\x01\x00\x02\x00"])
        value = self.dec(b("c7") + bytes([len(payload)]) + b("01") + payload)
        self.assertEqual(value, {"dtype": "<u2", "shape": [2], "data": b"\x01\x00\x02\x00"})

    # -- serialization errors -------------------------------------------------

    def test_unserializable_objects_name_type_and_path(self):
        err = self.assertSerializationError({"ok": [1, 2, {"owner": object()}]}, 'result.ok[2].owner', "object")
        self.assertEqual(err.type_name, "TypeError")
        self.assertSerializationError({"a b": [0, object()]}, 'result["a b"][1]')
        self.assertSerializationError({"k": [len]}, "result.k[0]", "builtin_function_or_method")
        self.assertSerializationError({5: object()}, "result<5>")
        self.assertSerializationError({None: object()}, "result<null>")
        self.assertSerializationError({(1, object()): 1}, "result<tuple>[1]")
        self.assertSerializationError({frozenset([object()])}, "result{set}{set}")
        self.assertSerializationError({object()}, "result{set}")
        with self.assertRaises(SerializationError) as ctx:
            type(self).packb([object()], "args")
        self.assertEqual(ctx.exception.path, "args[0]")

    def test_ints_beyond_64_bits_are_serialization_errors(self):
        self.assertSerializationError([2**64], "result[0]", "64 bits")
        self.assertSerializationError({"n": -(2**63) - 1}, "result.n", "64 bits")

    def test_lone_surrogates_are_serialization_errors(self):
        self.assertSerializationError({"s": "a\udcffb"}, "result.s", "surrogate")
        self.assertSerializationError({"\ud800": 1}, 'result["\ud800"]', "surrogate")

    def test_types_to_convert_explicitly_say_how(self):
        self.assertSerializationError(datetime.date(2020, 1, 1), "result", "datetime")
        self.assertSerializationError(datetime.time(1, 2), "result", "convert")
        self.assertSerializationError(datetime.timedelta(1), "result", "total_seconds")
        self.assertSerializationError(decimal.Decimal("1.5"), "result", "convert")
        self.assertSerializationError(1j, "result", "imag")

    def test_nesting_limit(self):
        def nest(n, inner):
            for _ in range(n):
                inner = [inner]
            return inner

        self.assertEqual(len(self.enc(nest(512, 1))), 513)
        self.assertEqual(len(self.enc(nest(511, {"a": 1}))), 511 + 4)
        err = self.assertSerializationError(nest(513, 1), err_path(), "nested deeper than 512")
        self.assertIn("more", err.path)
        with self.assertRaises(SerializationError):
            self.enc(nest(512, {1}))
        # decoding: 512 nested arrays pass, 513 are a protocol error
        self.assertEqual(self.dec(b("91" * 512 + "01")), nest(512, 1))
        self.assertDecodeError("91" * 513 + "01", "nesting")
        self.assertDecodeError("91" * 512 + "d50291" + "01", "nesting")
        self.assertDecodeError("81a161" * 513 + "01", "nesting")

    # -- decoding errors ------------------------------------------------------

    def test_malformed_input_is_a_protocol_error(self):
        self.assertDecodeError("", "")
        self.assertDecodeError("c1")
        self.assertDecodeError("a3 61 62")
        self.assertDecodeError("92 01")
        self.assertDecodeError("cd 01")
        self.assertDecodeError("c4 05 00")
        self.assertDecodeError("a2 c3 28")  # invalid UTF-8
        self.assertDecodeError("a3 ed a0 80")  # an encoded surrogate is not UTF-8
        self.assertDecodeError("c0 c0", "extra")
        self.assertDecodeError("dd ffffffff 01")

    # -- round trips ----------------------------------------------------------

    def test_random_round_trips_are_exact(self):
        rng = random.Random(1234)
        for _ in range(300):
            value = random_value(rng, 4)
            data = self.enc(value)
            self.assertTrue(support.same_value(self.dec(data), normalised(value)), repr(value)[:200])
            if not has_set(value):  # a rebuilt set may iterate in another order
                self.assertEqual(self.enc(self.dec(data)), data)

    # -- shared vectors -------------------------------------------------------

    def test_shared_value_vectors(self):
        self.run_vectors("values.json")

    def test_shared_message_vectors(self):
        self.run_vectors("messages.json")

    def run_vectors(self, name):
        entries = support.load_vectors(name)
        if entries is None:
            support.loud_skip(self, "%s not found in %s: the shared vectors have not landed yet" % (name, support.VECTORS_DIR))
        self.assertGreater(len(entries), 0)
        checked = 0
        for entry in entries:
            if entry.get("ts_only"):
                continue
            with self.subTest(vector=entry["name"]):
                self.check_vector(entry)
                checked += 1
        self.assertGreater(checked, 0)

    def check_vector(self, entry):
        data = b(entry["hex"]) if "hex" in entry else None
        error = entry.get("error")
        is_message = entry.get("message", False)
        if error is not None:
            if data is None:
                # An encode-side error: the value must not encode.
                self.assertEqual(error, "serialization", entry)
                with self.assertRaises(SerializationError):
                    self.enc(support.from_tagged(entry["value"], ndarray="data"))
                return
            self.assertEqual(error, "protocol", entry)
            try:
                decoded = self.dec(data)
            except DecodeError:
                return
            self.assertTrue(is_message, "%s decoded to %r instead of failing" % (entry["name"], decoded))
            if entry.get("direction") == "agent":
                return  # the agent does not validate messages it only sends
            with self.assertRaises(MessageError) as ctx:
                parse_client_message(decoded)
            if entry.get("error_key"):
                self.assertIn(repr(entry["error_key"]), str(ctx.exception))
            return
        decoded = self.dec(data)
        expected = support.from_tagged(entry["value"])
        self.assertTrue(
            vector_equal(decoded, expected), "%s: decoded %r, expected %r" % (entry["name"], decoded, expected)
        )
        if entry.get("canonical", False):
            self.assertEqual(h(self.enc(support.from_tagged(entry["value"], ndarray="data"), "value")), entry["hex"].lower())
            if support.numpy_or_none() is not None:
                self.assertEqual(h(self.enc(expected, "value")), entry["hex"].lower())
        if is_message and entry.get("direction") == "client":
            parse_client_message(decoded)


def err_path():
    return "result" + "[0]" * 20 + "\u2026(487 more)\u2026" + "[0]" * 5


def vector_equal(decoded, expected):
    """Like support.same_value, but a datetime matches one of lower (millisecond) precision."""
    if isinstance(decoded, datetime.datetime) and isinstance(expected, datetime.datetime):
        return decoded == expected or decoded.replace(microsecond=decoded.microsecond // 1000 * 1000) == expected
    if isinstance(decoded, list) and isinstance(expected, list):
        return len(decoded) == len(expected) and all(vector_equal(a, e) for a, e in zip(decoded, expected))
    if isinstance(decoded, dict) and isinstance(expected, dict):
        return decoded.keys() == expected.keys() and all(vector_equal(decoded[k], expected[k]) for k in decoded)
    return support.same_value(decoded, expected)


def random_value(rng, depth):
    kinds = ["none", "bool", "int", "bigint", "negint", "float", "str", "bytes", "date"]
    if depth > 0:
        kinds += ["list", "dict", "tuple", "set", "intdict"]
    kind = rng.choice(kinds)
    if kind == "none":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.choice([0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53, 2**64 - 1])
    if kind == "bigint":
        return rng.randrange(0, 2**64)
    if kind == "negint":
        return -rng.randrange(1, 2**63 + 1)
    if kind == "float":
        return rng.choice([0.0, -0.0, 1.5, -2.25, 1e300, float("inf"), float("-inf"), rng.random()])
    if kind == "str":
        return "".join(rng.choice("ab\u00e9\u4e2d\U0001f600 ") for _ in range(rng.choice([0, 5, 40, 300])))
    if kind == "bytes":
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 300])))
    if kind == "date":
        return datetime.datetime(1970, 1, 1, tzinfo=UTC) + datetime.timedelta(
            seconds=rng.randrange(-(10**10), 10**11), microseconds=rng.randrange(0, 10**6) * rng.randrange(0, 2)
        )
    if kind in ("list", "tuple"):
        items = [random_value(rng, depth - 1) for _ in range(rng.randrange(0, 20))]
        return items if kind == "list" else tuple(items)
    if kind == "set":
        return set(x for x in (random_value(rng, 0) for _ in range(rng.randrange(0, 6))) if not isinstance(x, float))
    if kind == "intdict":
        return {rng.randrange(-1000, 1000): random_value(rng, depth - 1) for _ in range(rng.randrange(0, 5))}
    return {"k%d" % i: random_value(rng, depth - 1) for i in range(rng.randrange(0, 20))}


def has_set(value):
    if isinstance(value, (set, frozenset)):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_set(v) for v in value)
    if isinstance(value, dict):
        return any(has_set(v) for v in value.values())
    return False


def normalised(value):
    """What decoding gives back: tuples are lists (except in keys and sets)."""
    if isinstance(value, (list, tuple)):
        return [normalised(v) for v in value]
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


class PureCodecTest(CodecCases, unittest.TestCase):
    packb = staticmethod(codec.packb_pure)
    unpackb = staticmethod(codec.unpackb_pure)


_NO_C = "the msgpack package is not importable by %s: the C codec is not tested in this run" % support.PYTHON
if codec.packb_c is None:
    support.sys.stderr.write("\n*** SKIPPED: %s ***\n" % _NO_C)


@unittest.skipIf(codec.packb_c is None, _NO_C)
class CCodecTest(CodecCases, unittest.TestCase):
    packb = staticmethod(codec.packb_c) if codec.packb_c else None
    unpackb = staticmethod(codec.unpackb_c) if codec.unpackb_c else None


class CodecSelectionTest(unittest.TestCase):
    def test_codec_is_the_expected_one(self):
        """scripts/test-python.mjs says which codec each interpreter must use."""
        expected = os.environ.get("SREMOTE_EXPECT_CODEC")
        has_msgpack = codec.packb_c is not None
        self.assertEqual(codec.CODEC, "c" if has_msgpack else "pure")
        if expected:
            self.assertEqual(codec.CODEC, expected, "this run was meant to use the %s codec" % expected)

    def test_both_codecs_agree_byte_for_byte(self):
        if codec.packb_c is None:
            support.loud_skip(self, "msgpack not importable: nothing to compare the pure codec with")
        rng = random.Random(99)
        for _ in range(500):
            value = random_value(rng, 5)
            data = codec.packb_c(value)
            self.assertEqual(data, codec.packb_pure(value), repr(value)[:200])
            self.assertTrue(support.same_value(codec.unpackb_c(data), codec.unpackb_pure(data)))


class PlainCallFastPathTest(unittest.TestCase):
    """parse_client_message has a fast path for plain calls: it must agree with the full
    checks (messages.parse_request) on every message, valid or not."""

    BASE = {"v": PROTOCOL_VERSION, "kind": "call", "id": "c-1", "module": "math", "function": "sqrt"}

    FIELDS = [name for name in vars(CallRequest) if not name.startswith("_")]

    def fields(self, req):
        return {name: getattr(req, name) for name in self.FIELDS}

    def test_valid_plain_calls_parse_as_the_full_checks_do(self):
        for extra in ({}, {"args": [2]}, {"args": None}, {"kwargs": {"a": 1}}, {"args": [], "kwargs": None}):
            msg = dict(self.BASE, **extra)
            kind, req = parse_client_message(dict(msg))
            self.assertEqual(kind, "call")
            self.assertEqual(self.fields(req), self.fields(parse_request(dict(msg), "call")), extra)
            self.assertFalse(req.exclusive)

    def test_invalid_plain_calls_are_refused_with_the_full_checks_message(self):
        cases = [
            ({"v": True}, "'v'"),
            ({"v": PROTOCOL_VERSION + 1}, "protocol version %d" % (PROTOCOL_VERSION + 1)),
            ({"id": 7}, "'id'"),
            ({"module": ""}, "'module'"),
            ({"function": None}, "'function'"),
            ({"args": {"a": 1}}, "'args'"),
            ({"kwargs": [1]}, "'kwargs'"),
            ({"kwargs": {1: 2}}, "'kwargs'"),
        ]
        for extra, wanted in cases:
            with self.assertRaises(MessageError, msg=repr(extra)) as ctx:
                parse_client_message(dict(self.BASE, **extra))
            self.assertIn(wanted, str(ctx.exception))
        with self.assertRaises(MessageError) as ctx:
            parse_client_message({1: "x", "v": PROTOCOL_VERSION, "kind": "call"})
        self.assertIn("keys must be str", str(ctx.exception))

    def test_calls_with_other_keys_take_the_full_path(self):
        kind, req = parse_client_message(dict(self.BASE, env={"A": "1"}, cwd="/tmp", stream=True, outputLimit=5))
        self.assertEqual((req.env, req.cwd, req.stream, req.output_limit), ({"A": "1"}, "/tmp", True, 5))
        self.assertTrue(req.exclusive)


if __name__ == "__main__":
    unittest.main()
