"""Tests of tf_hbd.evaluation.step_sweep: one pass per image, same pixels."""

import numpy as np
import tensorflow as tf

from tf_hbd.data import pipelines
from tf_hbd.evaluation import step_sweep
from tf_hbd.evaluation import systems


def _blur(img, K=None, encoded=None):
  """A K-step blur (K = None: 3 steps, the trained K)."""
  del encoded
  out = img.astype(np.float64)
  for _ in range(K or 3):
    out = (out + np.roll(out, 1, axis=1)) / 2
  return np.round(out).astype(np.uint8)


class StepSweepTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.images = [rng.integers(0, 256, (9, 13)).astype(np.uint8)
                   for _ in range(3)]
    self.singles, self.passes = [], []

    def refine(img, K=None, encoded=None, ensemble=False):
      del ensemble
      self.singles.append(K)
      return _blur(img, K, encoded)

    def refine_steps(img, K, encoded=None):
      self.passes.append(K)
      return np.stack([_blur(img, k, encoded) for k in range(1, K + 1)])

    self.dec = systems.LoadedDecoder("blur", "jpeg", refine, 3, None, "-",
                                     refine_steps=refine_steps)

  def _sweep_all(self, sweep, ks):
    """Every image at the trained K, then at every other K (the study's
    order), as {k: [images]}."""
    out = {3: [sweep.refine(im, None, 3) for im in self.images]}
    for im in self.images:
      for k in ks:
        out.setdefault(k, []).append(sweep.refine(im, None, k))
    return out

  def test_one_pass_per_image_same_pixels(self):
    sweep = step_sweep.StepSweep(self.dec, (1, 2, 5))
    got = self._sweep_all(sweep, (1, 2, 5))
    for k, outs in got.items():
      for im, out in zip(self.images, outs):
        self.assertAllEqual(out, _blur(im, k))
    self.assertTrue(sweep.exact)
    self.assertEqual(self.passes, [5, 5, 5])  # max K, once per image
    self.assertEqual(self.singles, [None])  # the first image's check
    self.assertEqual(sweep._pending, {})  # pylint: disable=protected-access
    # asked again: a new pass, the same pixels
    self.assertAllEqual(sweep.refine(self.images[0], None, 2),
                        _blur(self.images[0], 2))
    self.assertEqual(len(self.passes), 4)

  def test_a_pass_that_differs_is_not_used(self):
    def off_by_one(img, K, encoded=None):
      self.passes.append(K)
      return np.stack([_blur(img, k) ^ 1 for k in range(1, K + 1)])
    self.dec.refine_steps = off_by_one
    sweep = step_sweep.StepSweep(self.dec, (1, 2))
    got = self._sweep_all(sweep, (1, 2))
    for k, outs in got.items():
      for im, out in zip(self.images, outs):
        self.assertAllEqual(out, _blur(im, k))
    self.assertFalse(sweep.exact)
    self.assertEqual(self.passes, [3])  # the first image's, then none
    # the trained K as the decoder's default (K=None), the others by K
    self.assertEqual(self.singles[:2], [None, None])
    self.assertEqual(sorted(self.singles[2:], key=str),
                     sorted([None, None] + [1, 2] * 3, key=str))

  def test_no_refine_steps_refines_at_each_k(self):
    self.dec.refine_steps = None
    sweep = step_sweep.StepSweep(self.dec, (1, 3))
    got = self._sweep_all(sweep, (1,))
    self.assertAllEqual(got[1][2], _blur(self.images[2], 1))
    self.assertEqual(self.singles, [None] * 3 + [1] * 3)
    self.assertIsNone(sweep.exact)

  def test_system_and_unknown_k(self):
    sweep = step_sweep.StepSweep(self.dec, (1,))
    with self.assertRaisesRegex(ValueError, "K=4 is not in the sweep"):
      sweep.system(4, "K=4")
    rows = systems.evaluate(
        [pipelines.EvalImage("a", self.images[0], None, 8)],
        [sweep.system(1, "K=1")], [None],
        cache=_FixedCodec(self.images[0]), measure=lambda a, b: {})
    self.assertEqual(rows["K=1"][0]["image"], "a")


class _FixedCodec(systems.CodecCache):
  """A codec cache whose round trip returns the image as decoded."""

  def __init__(self, image):
    super().__init__()
    self._image = image

  def roundtrip(self, key, image, codec, point):
    return self._image, 8.0

  def encoded(self, key, image, codec, point):
    return None


if __name__ == "__main__":
  tf.test.main()
