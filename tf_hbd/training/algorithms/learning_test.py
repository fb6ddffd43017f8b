"""Training actually learns: on a tiny fixed set of real blocks, every
algorithm brings the loss below the codec's own (identity) loss."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import decoder as decoder_lib
from tf_hbd.model import losses
from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import testing_utils as tu

STEPS = 40


class LearningTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # 64 blocks of a JPEG (quality 10) crop of a real photograph.
    cls.batch = tu.image_batch(size=64, d=8, quality=10)
    ctx = tf.reshape(cls.batch["context"], [-1, 9, 64])
    own = tf.gather(ctx, cls.batch["position"], batch_dims=1)
    # The codec's reconstruction at every step: what the decoder must beat.
    cls.identity = float(losses.distortion(cls.batch["target"],
                                           tf.repeat(own[:, None], 4, 1)))

  def _train(self, name, **kwargs):
    """Losses of STEPS Adam updates of a tiny decoder, its optimizer, algorithm."""
    model = decoder_lib.build_decoder("lstm", units=8, patch_size=8, K=4,
                                      seed=0)
    algo = base.make_algorithm(name, model, **kwargs)
    opt = tf.keras.optimizers.Adam(0.01)

    def apply(grads):
      grads, _ = tf.clip_by_global_norm(grads, 13.0)
      opt.apply_gradients(zip(grads, algo.variables))

    step = tf.function(lambda b: algo.train_step(b, apply))
    hist = [float(step(self.batch)["loss"]) for _ in range(STEPS)]
    return hist, opt, algo

  @parameterized.parameters("bptt", "sab", "rtrl", "uoro", "snap1")
  def test_loss_drops_below_identity(self, name):
    hist, opt, algo = self._train(name)
    self.assertGreater(hist[0], self.identity)  # starts above the codec
    self.assertLess(np.mean(hist[-5:]), self.identity)
    self.assertEqual(int(opt.iterations.numpy()),
                     STEPS * algo.updates_per_batch)

  @parameterized.parameters("bptt", "sab", "rtrl", "uoro", "snap1")
  def test_normalised_loss_drops_below_the_codecs(self, name):
    # --loss_norm=log_ratio: 0 is the codec's own error, every example alike.
    hist, _, _ = self._train(name, alpha=1.0, loss_norm="log_ratio")
    self.assertGreater(hist[0], 0.0)
    self.assertLess(np.mean(hist[-5:]), 0.0)


if __name__ == "__main__":
  tf.test.main()
