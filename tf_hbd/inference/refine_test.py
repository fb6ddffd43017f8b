"""Tests of tf_hbd.inference.refine."""

import subprocess
import sys
import textwrap

from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from tf_hbd.model import decoder
from tf_hbd.codecs import patches
from tf_hbd.inference import refine


def image(h, w, seed=0):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (h, w)).astype(np.uint8)


def model(**kwargs):
  kwargs.setdefault("units", 6)
  kwargs.setdefault("patch_size", 4)
  m = decoder.build_decoder(**kwargs)
  rng = np.random.default_rng(1)
  for v in m.trainable_variables:  # large enough to move pixels visibly
    v.assign(rng.normal(0, 0.3, v.shape).astype(v.dtype.as_numpy_dtype))
  return m


def reference(img, m, K, strategy):
  """All blocks at once through the model (no batching, no bands)."""
  blocks = patches.blocks_from_image(img, m.patch_size, strategy)
  ctx = blocks.context.astype(np.float32) / np.float32(255.0)
  pred = m({"context": ctx, "position": blocks.position}, K=K)
  pred = pred[:, -1].numpy() * 255.0
  pred = np.clip(np.rint(pred), 0, 255).astype(np.uint8)
  return patches.assemble(pred.reshape(len(blocks), m.patch_size,
                                       m.patch_size),
                          blocks.grid_shape, blocks.image_shape)


class RefineTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("odd", 37, 53), ("tiny", 3, 2), ("thin", 5, 41), ("exact", 16, 24))
  def test_returns_input_size(self, h, w):
    img = image(h, w)
    out = refine.refine(img, model(), batch_size=7)
    self.assertEqual(out.shape, (h, w))
    self.assertEqual(out.dtype, np.uint8)

  @parameterized.named_parameters(
      ("paper_single", "paper", False), ("replicate_single", "replicate",
                                         False),
      ("paper_sne", "paper", True))
  def test_zero_readout_reproduces_decoded(self, strategy, sne):
    m = model(residual=True, boundary=strategy, sne=sne)
    for v in m.readout_variables:
      v.assign(tf.zeros_like(v))
    img = image(29, 46)
    self.assertAllEqual(refine.refine(img, m, batch_size=5), img)
    self.assertAllEqual(refine.refine(img, m, K=1, batch_size=4096), img)

  @parameterized.named_parameters(
      ("paper", "paper", 3), ("replicate", "replicate", 2))
  def test_matches_unbatched_reference(self, strategy, K):
    m = model(boundary=strategy)
    img = image(30, 45, seed=2)
    want = reference(img, m, K, strategy)
    for batch_size in (1, 5, 11, 4096):  # bands of 1 row and batches < row
      self.assertAllEqual(refine.refine(img, m, K=K, batch_size=batch_size),
                          want)
    self.assertNotAllEqual(want, img)

  def test_k_and_strategy_selectable(self):
    m = model(boundary="paper", K=2)
    img = image(24, 36, seed=3)
    default = refine.refine(img, m)
    self.assertAllEqual(default, reference(img, m, 2, "paper"))
    self.assertAllEqual(refine.refine(img, m, K=4),
                        reference(img, m, 4, "paper"))
    self.assertNotAllEqual(refine.refine(img, m, K=4), default)
    self.assertAllEqual(refine.refine(img, m, strategy="replicate"),
                        reference(img, m, 2, "replicate"))

  def test_loaded_model(self):
    m = model(K=2)
    path = self.create_tempdir().full_path
    decoder.export_saved_model(m, path)
    loaded = decoder.load_decoder(path)
    img = image(21, 19, seed=4)
    self.assertAllEqual(refine.refine(img, loaded), refine.refine(img, m))

  def test_errors(self):
    m = model()
    with self.assertRaisesRegex(ValueError, "uint8"):
      refine.refine(image(8, 8).astype(np.float32), m)
    with self.assertRaisesRegex(ValueError, "2-D"):
      refine.refine(np.zeros((8, 8, 3), np.uint8), m)
    with self.assertRaisesRegex(ValueError, "batch_size"):
      refine.refine(image(8, 8), m, batch_size=0)
    with self.assertRaisesRegex(ValueError, "K must"):
      refine.refine(image(8, 8), m, K=0)


_BIG_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from tf_hbd.model import decoder
    from tf_hbd.inference import refine
    m = decoder.build_decoder(units=8, patch_size=8)
    for v in m.readout_variables:
      v.assign(v * 0)
    img = np.tile(np.arange(256, dtype=np.uint8), (10000, 40))[:, :10000]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = refine.refine(img, m, K=1, batch_size=65536)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert out.shape == img.shape and (out == img).all()
    print((after - before) / 2**20)
""")


@pytest.mark.slow
def test_10000x10000_memory_bounded():
  """Refining a 10000 x 10000 image grows the peak RSS by < 3 GB."""
  out = subprocess.run([sys.executable, "-c", _BIG_SCRIPT], check=True,
                       capture_output=True, text=True)
  growth_gb = float(out.stdout.strip().splitlines()[-1])
  assert growth_gb < 3.0, growth_gb


if __name__ == "__main__":
  tf.test.main()
