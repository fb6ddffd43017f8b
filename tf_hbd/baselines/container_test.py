"""Tests of tf_hbd.baselines.container."""

import struct
import zlib

from absl.testing import parameterized
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.baselines import container


class ContainerTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.payload = bytes(range(256)) * 3
    self.data = container.pack("goog", (37, 101), b"\x05", self.payload)

  def test_round_trip(self):
    box = container.unpack(self.data)
    self.assertEqual(box.model, "goog")
    self.assertEqual(box.shape, (37, 101))
    self.assertEqual(box.params, b"\x05")
    self.assertEqual(box.payload, self.payload)

  def test_layout_and_overhead(self):
    self.assertEqual(self.data[:4], b"HBNC")
    self.assertEqual(self.data[4], container.VERSION)
    self.assertEqual(len(self.data),
                     container.header_bytes("goog", b"\x05") +
                     len(self.payload))
    self.assertEqual(struct.unpack(">I", self.data[-4:])[0],
                     zlib.crc32(self.data[:-4]))

  def test_empty_params_and_payload(self):
    data = container.pack("e2e-x", (1, 1), b"", b"")
    box = container.unpack(data)
    self.assertEqual((box.params, box.payload, box.shape), (b"", b"", (1, 1)))

  def test_every_truncation_raises(self):
    for n in range(len(self.data)):
      with self.assertRaises(errors.BitstreamError, msg=f"length {n}"):
        container.unpack(self.data[:n])

  def test_truncation_message_names_file(self):
    with self.assertRaisesRegex(errors.BitstreamError,
                                r"^pic\.bin: truncated"):
      container.unpack(self.data[:-100], "pic.bin")

  def test_every_single_bit_flip_raises(self):
    for i in range(0, len(self.data)):
      for bit in (0, 5):
        bad = bytearray(self.data)
        bad[i] ^= 1 << bit
        with self.assertRaises(errors.BitstreamError, msg=f"byte {i}"):
          container.unpack(bytes(bad))

  def test_trailing_bytes_raise(self):
    with self.assertRaisesRegex(errors.BitstreamError, "trailing|CRC"):
      container.unpack(self.data + b"\0")

  @parameterized.parameters(b"", b"HBN", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
  def test_not_a_container(self, data):
    with self.assertRaises(errors.BitstreamError):
      container.unpack(data)

  def test_other_version_rejected_even_with_valid_crc(self):
    body = bytearray(self.data[:-4])
    body[4] = container.VERSION + 1
    data = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    with self.assertRaisesRegex(errors.BitstreamError, "version"):
      container.unpack(data)

  def test_zero_shape_rejected_even_with_valid_crc(self):
    body = (b"HBNC" + bytes([container.VERSION, 4]) + b"goog" +
            struct.pack(">IIH", 0, 5, 0) + struct.pack(">I", 0))
    data = body + struct.pack(">I", zlib.crc32(body))
    with self.assertRaisesRegex(errors.BitstreamError, "shape"):
      container.unpack(data)

  def test_not_bytes(self):
    with self.assertRaises(errors.BitstreamError):
      container.unpack(12.5)

  @parameterized.parameters("", "x" * 65, "bad\nname", "é")
  def test_bad_model_names_rejected_on_pack(self, name):
    with self.assertRaises(ValueError):
      container.pack(name, (4, 4), b"", b"")

  @parameterized.parameters((0, 4), (4, 0), (container.MAX_SIDE + 1, 1))
  def test_bad_shapes_rejected_on_pack(self, h, w):
    with self.assertRaises(errors.CodecError):
      container.pack("goog", (h, w), b"", b"")


if __name__ == "__main__":
  tf.test.main()
