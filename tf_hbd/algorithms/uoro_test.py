"""Proofs of UORO: its rank-one estimate is an unbiased estimate of RTRL's
influence matrix, with the error falling as 1/sqrt(number of draws)."""

import numpy as np
import tensorflow as tf

from tf_hbd.algorithms import rtrl
from tf_hbd.algorithms import testing_utils as tu
from tf_hbd.algorithms import uoro


def _exact_influence(model, batch):
  """RTRL's [dz_K/dtheta_s, dz_K/de] per example: (B, |z|, |theta|+|e|)."""
  _, _, (jac, jac_e) = rtrl.RTRL(model, accumulate=True).run(
      batch, keep_influence=True)
  return np.concatenate([jac.numpy(), jac_e.numpy()], axis=-1)


def _rel(estimate, exact):
  return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


class UOROTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = tu.small_decoder("lstm", units=3, K=3)
    cls.one = tu.random_batch(batch_size=1, seed=4)
    cls.exact = _exact_influence(cls.model, cls.one)[0]

  def _mean_estimate(self, n, seed):
    """Mean of z~ (x) theta~ over n independent sign sequences.

    Per-example UORO on n copies of one example: each copy draws its own
    signs, so the copies are n independent runs.
    """
    algo = uoro.UORO(self.model, accumulate=True, per_example=True,
                     seed=seed)
    batch = {k: tf.repeat(v, n, axis=0) for k, v in self.one.items()}
    _, _, (z_t, th_t, th_e) = algo.run(batch, keep_estimate=True)
    theta = tf.concat([th_t, th_e], axis=-1)
    return tf.einsum("bi,bp->ip", z_t, theta).numpy() / n

  def test_unbiased_error_falls_as_inverse_sqrt_n(self):
    small, large = 400, 6400  # 16x the draws: expect 4x less error
    err_small = np.mean([_rel(self._mean_estimate(small, s), self.exact)
                         for s in (1, 2)])
    err_large = np.mean([_rel(self._mean_estimate(large, s), self.exact)
                         for s in (3, 4)])
    ratio = err_small / err_large
    self.assertBetween(ratio, 2.5, 6.4)
    self.assertLess(err_large, 0.1)

  def test_single_draw_is_not_exact(self):
    # The estimate is noisy; only its mean is exact (the test above).
    self.assertGreater(_rel(self._mean_estimate(1, 7), self.exact), 0.2)

  def test_first_step_is_nu_nu_transpose_jacobian(self):
    # z~_0 = 0, theta~_0 = 0: rho0 = 1 and z~_1 (x) theta~_1 = nu nu^T dF/dth.
    model = tu.small_decoder("gru", units=3, K=1)
    batch = tu.random_batch(batch_size=2, seed=5)
    exact = _exact_influence(model, batch)
    algo = uoro.UORO(model, accumulate=True, per_example=True, seed=11)
    _, _, (z_t, th_t, th_e) = algo.run(batch, keep_estimate=True)
    est = np.einsum("bi,bp->bip", z_t.numpy(),
                    np.concatenate([th_t.numpy(), th_e.numpy()], -1))
    nu = uoro.UORO(model, seed=11).signs([2, 3], tf.float64).numpy()
    expected = np.einsum("bi,bj,bjp->bip", nu, nu, exact)
    self.assertAllClose(est, expected, rtol=1e-10, atol=1e-12)

  def test_joint_batch_estimate_is_unbiased(self):
    # One rank-one estimate for a batch of 2 different examples; its mean
    # over independent runs is the exact block influence.
    model = tu.small_decoder("elman", units=2, K=2)
    batch = tu.random_batch(batch_size=2, seed=6)
    exact = _exact_influence(model, batch)  # (B, |z|, |th| + |e|)
    n_th = exact.shape[-1] - 2
    algo = uoro.UORO(model, accumulate=True, per_example=False, seed=0)
    run = tf.function(lambda b: algo.run(b, keep_estimate=True)[2])
    total = np.zeros_like(exact)
    total_sq = np.zeros_like(exact)
    draws = 1500
    for _ in range(draws):
      z_t, th_t, th_e = (t.numpy() for t in run(batch))
      one = np.empty_like(exact)
      one[..., :n_th] = np.einsum("bi,p->bip", z_t, th_t)
      # The e-part belongs to each example's own e (cross terms are zero in
      # the exact influence and average out).
      one[..., n_th:] = np.einsum("bi,bp->bip", z_t, th_e)
      total += one
      total_sq += one * one
    # Unbiased: the mean is off the exact influence by sampling error only.
    # Each entry's z-score (mean - exact) / standard error is then ~N(0, 1):
    # their mean square is ~1 and none is far out. (A fixed relative bound
    # such as "within 25 %" would pass a biased estimator.)
    mean = total / draws
    se = np.sqrt(np.maximum(total_sq / draws - mean**2, 0.0) / (draws - 1))
    noisy = se > 1e-12 * np.abs(exact).max()
    self.assertAllClose(mean[~noisy], exact[~noisy], atol=1e-12)
    z = (mean[noisy] - exact[noisy]) / se[noisy]
    self.assertGreater(z.size, 10)
    self.assertLess(float(np.mean(z**2)), 2.0)
    self.assertLess(float(np.max(np.abs(z))), 5.5)
    # The same statistic exposes a 10 % bias.
    z_biased = (1.1 * mean[noisy] - exact[noisy]) / se[noisy]
    self.assertGreater(float(np.mean(z_biased**2)), 2.0)

  def test_online_updates_every_step_and_accumulate_once(self):
    batch = tu.random_batch(seed=8)
    online = tu.Recorder()
    uoro.UORO(self.model).train_step(batch, online)
    self.assertLen(online.calls, 3)
    offline = tu.Recorder()
    uoro.UORO(self.model, accumulate=True).train_step(batch, offline)
    self.assertLen(offline.calls, 1)

  def test_signs_resume_from_checkpoint(self):
    algo = uoro.UORO(self.model, seed=5)
    algo.signs([4], tf.float64)
    ckpt = tf.train.Checkpoint(**algo.checkpoint_items())
    path = ckpt.save(self.create_tempdir().full_path + "/c")
    expected = algo.signs([16], tf.float64).numpy()
    again = uoro.UORO(self.model, seed=99)
    tf.train.Checkpoint(**again.checkpoint_items()).restore(path)
    self.assertAllEqual(again.signs([16], tf.float64), expected)
    self.assertAllEqual(np.abs(expected), np.ones(16))


if __name__ == "__main__":
  tf.test.main()
