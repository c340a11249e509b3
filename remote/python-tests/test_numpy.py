"""numpy arrays and scalars through both codecs and through a real agent (skipped, loudly,
when numpy is not importable)."""

import unittest

import support
from sremote_agent import codec
from sremote_agent.values import NDArrayData, SerializationError

np = support.numpy_or_none()
NO_NUMPY = "numpy is not importable by %s: ndarray round trips are not tested in this run" % support.PYTHON
if np is None:
    support.sys.stderr.write("\n*** SKIPPED: %s ***\n" % NO_NUMPY)

CODECS = [("pure", codec.packb_pure, codec.unpackb_pure)]
if codec.packb_c is not None:
    CODECS.append(("c", codec.packb_c, codec.unpackb_c))


@unittest.skipIf(np is None, NO_NUMPY)
class NumpyCodecTest(unittest.TestCase):
    def arrays(self):
        return [
            np.arange(6, dtype="<f8").reshape(2, 3),
            np.arange(6, dtype="<i8"),
            np.array([True, False]),
            np.arange(4, dtype="|u1"),
            np.array([1 + 2j], dtype="<c16"),
            np.array(["ab", "cde"]),
            np.array(3.5),  # 0-d
            np.zeros((0, 4), dtype="<f4"),
            np.arange(12, dtype="<i4").reshape(3, 4)[:, ::2],  # not contiguous
            np.arange(12, dtype="<i4").reshape(3, 4).T,  # Fortran order
            np.arange(3, dtype=">i4"),  # big-endian: sent little-endian
        ]

    def test_arrays_round_trip_in_c_order_little_endian(self):
        for name, packb, unpackb in CODECS:
            for array in self.arrays():
                with self.subTest(codec=name, array=repr(array)):
                    back = unpackb(packb(array))
                    self.assertIsInstance(back, np.ndarray)
                    self.assertEqual(back.shape, array.shape)
                    self.assertIn(back.dtype.byteorder, "<|=")
                    self.assertTrue(np.array_equal(back, array))
                    self.assertTrue(back.flags.writeable)
                    self.assertTrue(back.flags.c_contiguous)

    def test_the_payload_is_dtype_shape_order_data(self):
        array = np.array([[1, 2], [3, 4]], dtype="<i2")
        for name, packb, _ in CODECS:
            data = packb(array)
            payload = codec.packb_pure(["<i2", [2, 2], "C", array.tobytes()])
            self.assertEqual(data, b"\xc7" + bytes([len(payload)]) + b"\x01" + payload, name)
            self.assertEqual(data, packb(NDArrayData("<i2", [2, 2], array.tobytes())))

    def test_both_codecs_agree(self):
        for array in self.arrays():
            self.assertEqual(codec.packb_pure(array), CODECS[-1][1](array))

    def test_numpy_scalars_encode_as_python_values(self):
        for name, packb, _ in CODECS:
            self.assertEqual(packb(np.float64(1.5)), packb(1.5), name)
            self.assertEqual(packb(np.int32(7)), packb(7), name)
            self.assertEqual(packb(np.bool_(True)), packb(True), name)
            self.assertEqual(packb({"k": [np.uint64(2**64 - 1)]}), packb({"k": [2**64 - 1]}), name)

    def test_object_arrays_are_serialization_errors(self):
        for name, packb, _ in CODECS:
            with self.assertRaises(SerializationError) as ctx:
                packb({"a": [np.array([object()])]})
            self.assertEqual(ctx.exception.path, "result.a[0]", name)
            self.assertIn("object", str(ctx.exception))


@unittest.skipIf(np is None, NO_NUMPY)
class NumpyAgentTest(support.TempDirTestCase):
    def test_an_array_goes_to_numpy_and_back(self):
        agent = support.SessionAgent(self)
        agent.hello()
        array = np.linspace(0, 1, 1000).reshape(10, 100)
        r = agent.roundtrip("a", "numpy", "multiply", array, 2)
        self.assertTrue(np.array_equal(r["value"], array * 2))
        r = agent.roundtrip("b", "agent_fixtures", "type_name", array)
        self.assertEqual(r["value"], "ndarray")
        r = agent.roundtrip("c", "numpy", "sum", array)
        self.assertAlmostEqual(r["value"], float(array.sum()))


class WithoutNumpyAgentTest(support.TempDirTestCase):
    """An agent whose Python cannot import numpy (a numpy.py in its working folder hides it)."""

    def test_arrays_arrive_as_dicts_and_ndarraydata_goes_back_as_arrays(self):
        with open(support.os.path.join(self.tmp, "numpy.py"), "w") as f:
            f.write("raise ImportError('numpy is hidden for this test')\n")
        support.shutil.copy(support.os.path.join(support.FIXTURES, "agent_fixtures.py"), self.tmp)
        agent = support.SessionAgent(self, pwd=self.tmp)
        self.assertIsNone(agent.hello()["agent"]["numpy"])
        raw = NDArrayData("<i4", [2], b"\x01\x00\x00\x00\x02\x00\x00\x00")
        r = agent.roundtrip("a", "agent_fixtures", "echo", raw)
        self.assertEqual(r["value"], {"dtype": "<i4", "shape": [2], "data": raw.data})
        r = agent.roundtrip("b", "sremote_agent", "NDArrayData", "<i4", [2], raw.data)
        if np is not None:
            self.assertTrue(np.array_equal(r["value"], np.array([1, 2], dtype="<i4")))
        else:
            self.assertEqual(r["value"], {"dtype": "<i4", "shape": [2], "data": raw.data})


if __name__ == "__main__":
    unittest.main()
