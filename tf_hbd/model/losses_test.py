"""Tests of tf_hbd.model.losses (eqs. 17-19)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import losses


def np_paper(target, recons, alpha):
  """Eqs. 17-19 as printed, written out with explicit loops."""
  b, k = recons.shape[:2]
  mae = mse = 0.0
  for kk in range(k):
    for bb in range(b):
      diff = recons[bb, kk].ravel() - target[bb].ravel()
      mae += np.sum(np.abs(diff))
      mse += np.sum(diff**2)
  return (1 - alpha) * mae / (2 * k) + alpha * mse / (2 * b * k)


def data(b=6, k=4, d=3, seed=0):
  rng = np.random.default_rng(seed)
  target = rng.uniform(0, 1, (b, d * d))
  recons = target[:, None] + rng.normal(0, 0.2, (b, k, d * d))
  return target, recons


class DistortionTest(tf.test.TestCase, parameterized.TestCase):

  def test_paper_form(self):
    target, recons = data()
    got = losses.distortion(target, recons, form="paper")
    self.assertAllClose(got, np_paper(target, recons, 0.235), rtol=1e-12)

  def test_batch_mean_form(self):
    target, recons = data()
    diff = recons - target[:, None]
    b, k = recons.shape[:2]
    want = np.sum(0.765 * np.abs(diff) + 0.235 * diff**2) / (2 * b * k)
    self.assertAllClose(losses.distortion(target, recons), want, rtol=1e-12)
    self.assertEqual(losses.DEFAULT_FORM, "batch_mean")
    self.assertEqual(losses.ALPHA, 0.235)

  def test_forms_relation(self):
    target, recons = data(b=1)
    self.assertAllClose(losses.distortion(target, recons, form="paper"),
                        losses.distortion(target, recons), rtol=1e-12)
    target, recons = data(b=8)
    mae_mean = losses.distortion(target, recons, alpha=0.0)
    mse = losses.distortion(target, recons, alpha=1.0)
    self.assertAllClose(
        losses.distortion(target, recons, form="paper"),
        0.765 * 8 * mae_mean + 0.235 * mse, rtol=1e-12)
    self.assertAllClose(losses.distortion(target, recons, alpha=1.0,
                                          form="paper"), mse, rtol=1e-12)

  @parameterized.parameters("paper", "batch_mean")
  def test_terms_sum_to_total(self, form):
    target, recons = data(k=5)
    terms = losses.distortion_terms(target, recons, form=form)
    self.assertEqual(terms.shape, (5,))
    self.assertAllClose(tf.reduce_sum(terms),
                        losses.distortion(target, recons, form=form))
    # Term k only depends on step k.
    moved = recons.copy()
    moved[:, 2] += 0.1
    terms2 = losses.distortion_terms(target, moved, form=form).numpy()
    self.assertAllClose(np.delete(terms2, 2), np.delete(terms.numpy(), 2))
    self.assertNotAllClose(terms2[2], terms.numpy()[2])

  def test_shapes_and_dtypes(self):
    target, recons = data(d=3)
    flat = losses.distortion(target, recons)
    square = losses.distortion(target.reshape(6, 3, 3),
                               recons.reshape(6, 4, 3, 3))
    self.assertAllClose(flat, square)
    self.assertEqual(losses.distortion(target.astype(np.float32),
                                       recons.astype(np.float32)).dtype,
                     tf.float32)
    self.assertEqual(flat.dtype, tf.float64)
    self.assertAllEqual(losses.distortion(target, np.repeat(
        target[:, None], 4, 1)), 0.0)

  def test_gradient(self):
    target, recons = data()
    r = tf.constant(recons)
    with tf.GradientTape() as tape:
      tape.watch(r)
      loss = losses.distortion(target, r)
    g = tape.gradient(loss, r).numpy()
    diff = recons - target[:, None]
    want = (0.765 * np.sign(diff) + 0.235 * 2 * diff) / (2 * 6 * 4)
    self.assertAllClose(g, want, rtol=1e-13, atol=0)

  def test_keras_loss(self):
    target, recons = data()
    loss = losses.HBDDistortion(form="paper")
    self.assertAllClose(loss(target, recons),
                        losses.distortion(target, recons, form="paper"))
    clone = losses.HBDDistortion.from_config(loss.get_config())
    self.assertEqual(clone.form, "paper")
    self.assertEqual(clone.alpha, 0.235)
    revived = tf.keras.losses.deserialize(tf.keras.losses.serialize(loss))
    self.assertIsInstance(revived, losses.HBDDistortion)

  def test_errors(self):
    target, recons = data()
    with self.assertRaisesRegex(ValueError, "form"):
      losses.distortion(target, recons, form="mean")
    with self.assertRaisesRegex(ValueError, "form"):
      losses.HBDDistortion(form="sum")
    with self.assertRaisesRegex(ValueError, r"\(B, K"):
      losses.distortion(target[0], recons[0, 0])
    with self.assertRaisesRegex(ValueError, "floating"):
      losses.distortion(target, recons.astype(np.int32))


class NormalisedTest(tf.test.TestCase, parameterized.TestCase):
  """The loss divided by the codec's own error per example."""

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(4)
    self.target = rng.uniform(0, 1, (5, 9))
    # Codec errors of very different size per example, as on real data.
    scale = np.array([0.002, 0.01, 0.03, 0.1, 0.3])[:, None]
    self.decoded = self.target + scale * rng.normal(size=(5, 9))
    self.recons = self.target[:, None] + scale[:, None] * rng.normal(
        size=(5, 3, 9))

  def test_example_error(self):
    diff = self.decoded - self.target
    want = np.mean(0.765 * np.abs(diff) + 0.235 * diff**2, -1)
    self.assertAllClose(losses.example_error(self.target, self.decoded),
                        want, rtol=1e-12)
    self.assertAllClose(losses.example_error(self.target, self.decoded, 1.0),
                        np.mean(diff**2, -1), rtol=1e-12)

  @parameterized.parameters("ratio", "log_ratio")
  def test_matches_written_out(self, norm):
    ref = losses.example_error(self.target, self.decoded, 1.0).numpy()
    e = 2.0 / 255**2
    got = losses.distortion(self.target, self.recons, 1.0,
                            reference_error=ref, normalise=norm, eps=2.0)
    want = 0.0
    for b in range(5):
      for k in range(3):
        err = np.mean((self.recons[b, k] - self.target[b])**2)
        want += (err / (ref[b] + e) if norm == "ratio"
                 else np.log((err + e) / (ref[b] + e)))
    self.assertAllClose(got, want / 15, rtol=1e-12)
    terms = losses.distortion_terms(self.target, self.recons, 1.0,
                                    reference_error=ref, normalise=norm)
    self.assertEqual(terms.shape, (3,))
    self.assertAllClose(tf.reduce_sum(terms), losses.distortion(
        self.target, self.recons, 1.0, reference_error=ref, normalise=norm),
                        rtol=1e-12)

  def test_codec_output_scores_zero_log_ratio_and_about_one_ratio(self):
    ref = losses.example_error(self.target, self.decoded)
    same = np.repeat(self.decoded[:, None], 4, 1)
    self.assertAllClose(losses.distortion(
        self.target, same, reference_error=ref, normalise="log_ratio"), 0.0,
                        atol=1e-14)
    ratio = losses.distortion(self.target, same, reference_error=ref,
                              normalise="ratio", eps=1e-9)
    self.assertAllClose(ratio, 1.0, rtol=1e-6)

  @parameterized.parameters("ratio", "log_ratio")
  def test_every_example_weighs_alike(self, norm):
    # Halving every example's error (a uniform relative gain) lowers the
    # plain MSE mostly through the worst-coded example; normalised, each
    # example contributes the same share.
    ref = losses.example_error(self.target, self.decoded, 1.0)
    half = self.target[:, None] + 0.5 * (self.decoded - self.target)[:, None]
    per = [float(losses.distortion(
        self.target[b:b + 1], half[b:b + 1], 1.0, reference_error=ref[b:b + 1],
        normalise=norm, eps=1e-9)) for b in range(5)]
    self.assertAllClose(per, [per[0]] * 5, rtol=1e-5)
    plain = [float(losses.distortion(self.target[b:b + 1], half[b:b + 1],
                                     1.0)) for b in range(5)]
    self.assertGreater(plain[-1] / plain[0], 1e3)

  def test_gradient_of_ratio_is_a_weighted_mse(self):
    ref = losses.example_error(self.target, self.decoded, 1.0).numpy()
    r = tf.constant(self.recons)
    with tf.GradientTape() as tape:
      tape.watch(r)
      loss = losses.distortion(self.target, r, 1.0, reference_error=ref,
                               normalise="ratio", eps=1.0)
    g = tape.gradient(loss, r).numpy()
    diff = self.recons - self.target[:, None]
    w = 1.0 / (ref + 1.0 / 255**2)
    want = 2 * diff * w[:, None, None] / (9 * 5 * 3)
    self.assertAllClose(g, want, rtol=1e-12)

  def test_errors(self):
    ref = losses.example_error(self.target, self.decoded)
    with self.assertRaisesRegex(ValueError, "reference_error"):
      losses.distortion(self.target, self.recons, normalise="ratio")
    with self.assertRaisesRegex(ValueError, "batch_mean"):
      losses.distortion(self.target, self.recons, form="paper",
                        reference_error=ref, normalise="ratio")
    with self.assertRaisesRegex(ValueError, "normalisation"):
      losses.distortion(self.target, self.recons, reference_error=ref,
                        normalise="psnr")
    self.assertAllClose(
        losses.distortion(self.target, self.recons, reference_error=ref),
        losses.distortion(self.target, self.recons))


if __name__ == "__main__":
  tf.test.main()
