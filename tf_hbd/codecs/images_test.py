"""Tests of tf_hbd.codecs.images: conversions and bad input."""

import io
import os
import struct
import zlib

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.codecs import images


def _png_chunk(kind, data):
  return (struct.pack(">I", len(data)) + kind + data +
          struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


class ImagesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path

  def _write(self, name, data):
    path = os.path.join(self.dir, name)
    with open(path, "wb") as f:
      f.write(data)
    return path

  def _save(self, name, img, **kw):
    path = os.path.join(self.dir, name)
    img.save(path, **kw)
    return path

  def test_rgb_uses_bt601_luma(self):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    path = self._save("c.png", Image.fromarray(rgb))
    got = images.load_image(path)
    want = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    self.assertLessEqual(np.abs(got.gray.astype(float) - want).max(), 1.0)
    self.assertEqual(got.bit_depth, 8)
    np.testing.assert_array_equal(got.original, rgb)

  def test_rgba_and_palette(self):
    rgba = np.random.default_rng(1).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    path = self._save("a.png", Image.fromarray(rgba))
    got = images.load_image(path).gray
    ref = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
    np.testing.assert_array_equal(got, ref)
    pal = Image.fromarray(rgba[..., :3]).convert("P")
    path = self._save("p.png", pal)
    np.testing.assert_array_equal(images.load_image(path).gray,
                                  np.asarray(pal.convert("RGB").convert("L")))

  def test_sixteen_bit_png_and_pgm(self):
    v = np.array([[0, 257, 65535], [1000, 30000, 128]], np.uint16)
    want = np.floor(v / 257.0 + 0.5).astype(np.uint8)
    path = self._save("g16.png", Image.fromarray(v))
    got = images.load_image(path)
    self.assertEqual(got.bit_depth, 16)
    np.testing.assert_array_equal(got.gray, want)
    np.testing.assert_array_equal(got.original, v)
    pgm = b"P5\n3 2\n65535\n" + v.astype(">u2").tobytes()
    got = images.load_image(self._write("g16.pgm", pgm))
    self.assertEqual(got.bit_depth, 16)
    np.testing.assert_array_equal(got.gray, want)

  def test_bad_files(self):
    good = io.BytesIO()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(good, format="JPEG")
    cases = {
        "empty.png": b"",
        "random.png": np.random.default_rng(0).integers(
            0, 256, 4096, dtype=np.uint8).tobytes(),
        "trunc.jpg": good.getvalue()[:200],
        "text.jpg": b"hello, I am not an image\n" * 10,
        "zero.pgm": b"P5\n0 0\n255\n",
    }
    for name, data in cases.items():
      path = self._write(name, data)
      with self.assertRaises(errors.ImageReadError, msg=name) as ctx:
        images.load_image(path)
      self.assertIn(name, str(ctx.exception))
    with self.assertRaisesRegex(errors.ImageReadError, "no such file"):
      images.load_image(os.path.join(self.dir, "missing.png"))
    with self.assertRaisesRegex(errors.ImageReadError, "directory"):
      images.load_image(self.dir)

  def test_decompression_bomb_guard_stays_on(self):
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) +
            _png_chunk(b"IEND", b""))
    path = self._write("bomb.png", data)
    with self.assertRaisesRegex(errors.ImageReadError, "decompression-bomb"):
      images.load_image(path)

  def test_list_images(self):
    for n in ("b.png", "a.jpg", "notes.txt"):
      self._write(n, b"x")
    os.mkdir(os.path.join(self.dir, "sub"))
    self._write("sub/c.pgm", b"x")
    got = [os.path.relpath(p, self.dir) for p in images.list_images(self.dir)]
    self.assertEqual(got, ["a.jpg", "b.png", "sub/c.pgm"])
    with self.assertRaises(errors.ImageReadError):
      images.list_images(os.path.join(self.dir, "nope"))
    with self.assertRaises(errors.ImageReadError):
      images.list_images(os.path.join(self.dir, "*.bmp"))

  def test_maybe_resize_max(self):
    img = np.zeros((300, 150), np.uint8)
    self.assertEqual(images.maybe_resize_max(img, 100).shape, (100, 50))
    self.assertIs(images.maybe_resize_max(img, 400), img)

  def test_check_gray(self):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    self.assertIs(images.check_gray(img), img)
    got = images.check_gray(img[:, :, None])
    self.assertEqual(got.shape, (3, 4))
    self.assertTrue(got.flags["C_CONTIGUOUS"])
    self.assertTrue(images.check_gray(img[:, ::2]).flags["C_CONTIGUOUS"])
    for bad in (np.zeros((3, 4, 3), np.uint8), np.zeros((0, 4), np.uint8),
                np.zeros((4,), np.uint8), img.astype(np.float32)):
      with self.assertRaises(errors.HbdError):
        images.check_gray(bad)
      with self.assertRaises(errors.CodecError):
        images.check_gray(bad, errors.CodecError)

  def test_check_gray_in_graph_is_the_same_check(self):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    self.assertAllEqual(images.check_gray_in_graph(img), img)
    self.assertAllEqual(images.check_gray_in_graph(img[:, :, None]), img)
    fn = tf.function(images.check_gray_in_graph,
                     input_signature=[tf.TensorSpec(None, tf.uint8)])
    self.assertAllEqual(fn(img[:, :, None]), img)
    for bad in (np.zeros((3, 4, 3), np.uint8), np.zeros((0, 4), np.uint8),
                np.zeros((4,), np.uint8)):
      with self.assertRaises(errors.HbdError):  # the NumPy check agrees
        images.check_gray(bad)
      with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                  "non-empty 2-D gray image"):
        fn(bad)
    with self.assertRaisesRegex(TypeError, "uint8"):
      images.check_gray_in_graph(img.astype(np.float32))


if __name__ == "__main__":
  tf.test.main()
