"""Tests of tf_hbd.serving: export, load in a fresh process, signatures."""

import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import decoder as decoder_lib
from tf_hbd import errors
from tf_hbd import refine as refine_lib
from tf_hbd import sample_images
from tf_hbd import serving


def _trained_like_decoder(codec="jpeg", d=8):
  """A small decoder with non-zero output weights (not the identity)."""
  model = decoder_lib.build_decoder("lstm", units=16, patch_size=d, K=3,
                                    seed=3)
  model(model.dummy_inputs())
  rng = np.random.default_rng(0)
  for v in model.readout_variables:
    v.assign(rng.normal(0, 0.01, v.shape).astype(np.float32))
  return model


class ServingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = _trained_like_decoder()
    cls.dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "export_jpeg")
    serving.export_serving(cls.model, cls.dir, "jpeg",
                           metadata={"label": "test"}, batch_size=64)
    cls.image = sample_images.load_sample("camera")[100:181, 200:299]

  def test_fresh_process_gives_same_pixels(self):
    in_process = serving.load(self.dir).refine(self.image)
    npy = os.path.join(self.get_temp_dir(), "img.npy")
    out = os.path.join(self.get_temp_dir(), "out.npy")
    np.save(npy, self.image)
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "x = np.load(sys.argv[2])\n"
            "y = m.signatures['serving_default'](image=tf.constant(x))\n"
            "np.save(sys.argv[3], y['refined'].numpy())\n")
    subprocess.run([sys.executable, "-c", code, self.dir, npy, out],
                   check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    fresh = np.load(out)
    self.assertAllEqual(fresh, in_process)
    # Same pixels as the Python refine path of the in-process model (equal
    # up to float rounding of a few pixels at .5 boundaries).
    python_path = refine_lib.refine(self.image, self.model, batch_size=64)
    diff = np.abs(fresh.astype(int) - python_path.astype(int))
    self.assertLessEqual(diff.max(), 1)
    self.assertLess(np.mean(diff > 0), 0.001)
    self.assertFalse(np.array_equal(fresh, self.image))  # it did something

  def test_jpeg_bytes_signature_equals_decode_then_refine(self):
    buf = io.BytesIO()
    Image.fromarray(self.image).save(buf, format="JPEG", quality=20)
    m = serving.load(self.dir)
    via_bytes = m.decode_and_refine(buf.getvalue())
    decoded = tf.io.decode_jpeg(buf.getvalue(), channels=1,
                                dct_method="INTEGER_ACCURATE").numpy()
    self.assertAllEqual(via_bytes, m.refine(decoded))
    pillow = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    self.assertAllEqual(decoded[..., 0], pillow)  # same IDCT as Pillow

  def test_k_and_shapes(self):
    m = serving.load(self.dir)
    self.assertEqual(m.metadata["K"], 3)
    self.assertEqual(m.metadata["label"], "test")
    k1 = m.refine(self.image, K=1)
    k3 = m.refine(self.image, K=3)
    self.assertAllEqual(k3, m.refine(self.image))
    self.assertFalse(np.array_equal(k1, k3))
    self.assertEqual(m.refine(self.image[..., None]).shape,
                     self.image.shape + (1,))
    self.assertEqual(m.refine(np.full((1, 1), 7, np.uint8)).shape, (1, 1))

  def test_bad_inputs(self):
    m = serving.load(self.dir)
    with self.assertRaises(errors.HbdError):
      m.refine(self.image.astype(np.float32))
    with self.assertRaises(errors.HbdError):
      m.refine(np.zeros((4, 4, 3), np.uint8))
    with self.assertRaises(errors.HbdError):
      m.refine(np.zeros((0, 4), np.uint8))
    with self.assertRaises(errors.BitstreamError):
      m.decode_and_refine(b"not a jpeg at all")
    raw = m._loaded.signatures["refine"]  # pylint: disable=protected-access
    with self.assertRaises((tf.errors.InvalidArgumentError, TypeError,
                            ValueError)):
      raw(image=tf.zeros([4, 4], tf.float32))
    with self.assertRaises(errors.HbdError):
      serving.load(self.get_temp_dir())

  def test_huge_image_is_refused_not_allocated(self):
    small_limit = os.path.join(self.get_temp_dir(), "small")
    serving.export_serving(self.model, small_limit, "jp2", max_pixels=10_000)
    m = serving.load(small_limit)
    self.assertNotIn("decode_and_refine", m._loaded.signatures)  # pylint: disable=protected-access
    with self.assertRaisesRegex(errors.ResourceLimitError, "too large"):
      m.refine(np.zeros((200, 200), np.uint8))


if __name__ == "__main__":
  tf.test.main()
