"""Tests of tf_hbd.guards."""

import numpy as np
import tensorflow as tf

from tf_hbd import decoder
from tf_hbd import guards
from tf_hbd import refine


def test_keep_flat_context():
  rng = np.random.default_rng(0)
  ctx = rng.uniform(0, 1, (4, 9, 2, 2)).astype(np.float32)
  ctx[1] = 0.25  # constant block
  ctx[3] = 0.0
  ctx[3, 0, 0, 0] = 1e-3  # one value differs: not constant
  pos = np.array([4, 0, 8, 4], np.int32)
  pred = rng.uniform(0, 1, (4, 4)).astype(np.float32)
  out = guards.keep_flat_context(tf.constant(ctx), tf.constant(pos),
                                 tf.constant(pred)).numpy()
  np.testing.assert_array_equal(out[[0, 2, 3]], pred[[0, 2, 3]])
  np.testing.assert_array_equal(out[1], np.full(4, 0.25, np.float32))
  out3 = guards.keep_flat_context(tf.constant(ctx), tf.constant(pos),
                                  tf.constant(pred.reshape(4, 2, 2))).numpy()
  np.testing.assert_array_equal(out3.reshape(4, 4), out)


def test_refine_keeps_flat_images_exactly():
  m = decoder.build_decoder(units=6, patch_size=4, K=2)
  rng = np.random.default_rng(1)
  for v in m.trainable_variables:
    v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
  for level in (0, 7, 255):
    flat = np.full((13, 18), level, np.uint8)
    np.testing.assert_array_equal(refine.refine(flat, m), flat)
    assert np.any(refine.refine(flat, m, guard=False) != flat)
  # A non-flat image is refined as before away from constant blocks.
  img = rng.integers(0, 256, (12, 16)).astype(np.uint8)
  np.testing.assert_array_equal(refine.refine(img, m),
                                refine.refine(img, m, guard=False))
