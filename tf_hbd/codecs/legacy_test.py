"""Tests of tf_hbd.codecs.legacy."""

import glob
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.evaluation import metrics
from tf_hbd.data import sample_images

KODAK = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                     "kodak")


def _gray_images(n):
  """Up to n real gray images: Kodak if present, else scikit-image photos."""
  files = sorted(glob.glob(os.path.join(KODAK, "*.png")))[:n]
  if files:
    return [images.load_image(f).gray for f in files]
  names = sample_images.sample_names("train")[:n]
  return [sample_images.load_sample(m) for m in names]


class CodecsTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.photo = sample_images.load_sample("camera")

  @parameterized.parameters("jpeg", "jp2")
  def test_roundtrip_shape_and_quality(self, codec):
    dec, enc = codecs.roundtrip(self.photo, codec, bpp=0.5)
    self.assertEqual(dec.shape, self.photo.shape)
    self.assertEqual(dec.dtype, np.uint8)
    self.assertAlmostEqual(enc.bpp, 8 * len(enc.data) / self.photo.size)
    self.assertGreater(metrics.psnr(self.photo, dec), 27)
    np.testing.assert_array_equal(codecs.decode(enc.data), dec)

  @parameterized.parameters(0.2, 0.37, 0.75, 1.5)
  def test_jpeg_highest_quality_under_target(self, target):
    enc = codecs.encode(self.photo, "jpeg", bpp=target)
    self.assertLessEqual(enc.bpp, target)
    self.assertTrue(enc.met_target)
    above = codecs.encode(self.photo, "jpeg", quality=enc.setting + 1)
    self.assertGreater(above.bpp, target)

  def test_jpeg_uses_optimised_huffman(self):
    import io  # pylint: disable=g-import-not-at-top
    from PIL import Image  # pylint: disable=g-import-not-at-top
    buf = io.BytesIO()
    Image.fromarray(self.photo).save(buf, format="JPEG", quality=50)
    enc = codecs.encode(self.photo, "jpeg", quality=50)
    self.assertLess(len(enc.data), len(buf.getvalue()))

  def test_jpeg_unreachable_target_reports_it(self):
    enc = codecs.encode(self.photo, "jpeg", bpp=0.01)
    self.assertEqual(enc.setting, 1)
    self.assertFalse(enc.met_target)

  def test_jp2_at_most_the_target_and_within_five_percent_on_real_images(self):
    for img in _gray_images(6):
      for target in (0.25, 0.37, 0.8):
        enc = codecs.encode(img, "jp2", bpp=target)
        self.assertLessEqual(enc.bpp, target)  # the contract: never above
        self.assertTrue(enc.met_target)
        self.assertGreater(enc.bpp, target * 0.95)
        self.assertEqual(codecs.decode(enc).shape, img.shape)

  def test_jp2_once_is_one_encode_at_ratio_8_over_target(self):
    for img in _gray_images(3):
      for target in (0.35, 0.8):
        enc = codecs.encode_once_at_bpp(img, "jp2", target)
        fixed = codecs.encode(img, "jp2", quality=8 / target)
        self.assertEqual(enc.data, fixed.data)
        self.assertEqual((enc.setting, enc.target_bpp), (8 / target, target))
        # OpenJPEG's rate control alone lands near the target.
        self.assertBetween(enc.bpp / target, 0.9, 1.02)
        self.assertEqual(enc.met_target, enc.bpp <= target)
        self.assertEqual(codecs.decode(enc).shape, img.shape)

  @parameterized.parameters(("jpeg", 0.5), ("jp2", 0.0), ("jp2", float("nan")),
                            ("png", 0.5))
  def test_jp2_once_rejects(self, codec, bpp):
    with self.assertRaises(errors.CodecError):
      codecs.encode_once_at_bpp(self.photo, codec, bpp)

  @parameterized.parameters((7, 7), (9, 13), (1, 1), (513, 31))
  def test_odd_sizes(self, h, w):
    img = np.random.default_rng(h).integers(0, 256, (h, w), dtype=np.uint8)
    for codec in codecs.CODECS:
      dec, _ = codecs.roundtrip(img, codec, quality=80 if codec == "jpeg"
                                else 4.0)
      self.assertEqual(dec.shape, (h, w))

  def test_jp2_is_irreversible_97(self):
    # A lossless setting of the 9/7 transform is still lossy, unlike 5/3.
    img = self.photo[:128, :128]
    enc = codecs.encode(img, "jp2", quality=1.0)
    self.assertNotEqual(codecs.sniff_codec(enc.data), None)
    self.assertLess(metrics.psnr(img, codecs.decode(enc)), float("inf"))

  def test_bad_bitstreams(self):
    enc = codecs.encode(self.photo, "jpeg", quality=50)
    j2k = codecs.encode(self.photo, "jp2", bpp=0.5)
    rng = np.random.default_rng(0)
    cases = {
        "empty": b"",
        "random": rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "truncated jpeg": enc.data[: len(enc.data) // 2],
        "jpeg header only": enc.data[:20],
        "truncated j2k": j2k.data[:40],
    }
    for name, data in cases.items():
      with self.assertRaises(errors.BitstreamError, msg=name) as ctx:
        codecs.decode(data, name=name)
      self.assertIn(name, str(ctx.exception))
    with self.assertRaisesRegex(errors.BitstreamError, "expected jp2"):
      codecs.decode(enc.data, codec="jp2")

  def test_bad_arguments(self):
    with self.assertRaises(errors.CodecError):
      codecs.encode(self.photo, "webp", quality=3)
    with self.assertRaises(errors.CodecError):
      codecs.encode(self.photo, "jpeg")
    with self.assertRaises(errors.CodecError):
      codecs.encode(self.photo, "jpeg", quality=0)
    with self.assertRaises(errors.CodecError):
      codecs.encode(self.photo, "jpeg", bpp=float("nan"))
    with self.assertRaises(errors.CodecError):
      codecs.encode(np.zeros((0, 4), np.uint8), "jpeg", quality=5)
    with self.assertRaises(errors.CodecError):
      codecs.encode(np.zeros((4, 4), np.float32), "jpeg", quality=5)
    with self.assertRaises(errors.CodecError):
      codecs.encode(np.zeros((4, 4, 3), np.uint8), "jpeg", quality=5)


if __name__ == "__main__":
  tf.test.main()
