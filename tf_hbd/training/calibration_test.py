"""Tests of tf_hbd.training.calibration."""

import numpy as np
import tensorflow as tf

from tf_hbd.training import calibration
from tf_hbd.codecs import legacy as codecs
from tf_hbd.model import decoder
from tf_hbd.codecs import patches
from tf_hbd.data import sample_images


def _float_mse(model, images, codec, bpp):
  err, n = 0.0, 0
  for img in images:
    dec, _ = codecs.roundtrip(img, codec, bpp=bpp)
    b = patches.blocks_from_image(dec, model.patch_size, model.boundary,
                                  original=img)
    out = model.predict_last(tf.constant(b.context, tf.float32) / 255.0,
                             tf.constant(b.position)).numpy()
    err += np.sum((out - b.target.reshape(len(out), -1) / 255.0) ** 2)
    n += out.size
  return err / n


class CalibrationTest(tf.test.TestCase):

  def test_gamma_minimises_validation_error_and_scales_exactly(self):
    images = [sample_images.load_sample("coffee")[:96, :128]]
    model = decoder.build_decoder("lstm", units=8, patch_size=8, K=2, seed=4)
    model(model.dummy_inputs())
    ctx = tf.random.uniform([5, 9, 8, 8], seed=1)
    pos = tf.constant([0, 1, 4, 7, 8])
    own = tf.reshape(tf.gather(ctx, pos, axis=1, batch_dims=1), [5, -1])
    before = model.predict_last(ctx, pos) - own
    gamma = calibration.fit_correction_scale(model, images, "jpeg", bpp=0.5)
    self.assertTrue(np.isfinite(gamma))
    mses = {}
    for g in (0.0, 1.0, gamma):
      m = decoder.HybridDecoder.from_config(model.get_config())
      m(m.dummy_inputs())
      m.set_weights(model.get_weights())
      calibration.apply_correction_scale(m, g)
      mses[g] = _float_mse(m, images, "jpeg", 0.5)
      if g == gamma:
        self.assertAllClose(m.predict_last(ctx, pos) - own, gamma * before,
                            atol=1e-5)
    self.assertLessEqual(mses[gamma], mses[0.0] + 1e-9)
    self.assertLessEqual(mses[gamma], mses[1.0] + 1e-9)

  def test_needs_residual_decoder(self):
    plain = decoder.build_decoder("lstm", units=4, patch_size=8, K=1,
                                  residual=False)
    with self.assertRaises(ValueError):
      calibration.fit_correction_scale(plain, [], "jpeg", bpp=0.5)


if __name__ == "__main__":
  tf.test.main()
