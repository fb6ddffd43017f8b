"""Tests of tf_hbd.evaluation.stats (float64, NumPy only)."""

import numpy as np
from absl.testing import absltest

from tf_hbd.evaluation import stats


def _crossed(rng, seeds, images, mu, sd_seed, sd_image, sd_noise):
  """y[s, i] = mu + a_s + b_i + e_si: seed and image effects crossed."""
  return (mu + rng.normal(0, sd_seed, (seeds, 1))
          + rng.normal(0, sd_image, (1, images))
          + rng.normal(0, sd_noise, (seeds, images)))


class StatsTest(absltest.TestCase):

  def test_coverage_of_the_true_mean(self):
    # Seed variance dominates: an interval that resamples images only must
    # miss often, the hierarchical one must cover at about 95 %.
    rng = np.random.default_rng(11)
    sims, hits, naive_hits = 300, 0, 0
    for k in range(sims):
      y = _crossed(rng, 8, 24, 30.0, 1.0, 0.5, 0.2)
      iv = stats.mean_ci(y, n_boot=400, seed=k)
      hits += iv.lo <= 30.0 <= iv.hi
      naive = stats.mean_ci(y.mean(axis=0), n_boot=400, seed=k)
      naive_hits += naive.lo <= 30.0 <= naive.hi
    self.assertBetween(hits / sims, 0.87, 0.99)
    self.assertLess(naive_hits / sims, 0.6)

  def test_difference_of_identical_systems_is_centred_at_zero(self):
    rng = np.random.default_rng(3)
    a = _crossed(rng, 5, 30, 28.0, 0.3, 2.0, 0.1)
    iv = stats.diff_ci(a, a.copy(), n_boot=4000, seed=1)
    self.assertEqual(iv.estimate, 0.0)
    self.assertLess(iv.lo, 0.0)
    self.assertGreater(iv.hi, 0.0)
    # symmetric about 0 within the bootstrap's own noise
    self.assertLess(abs(iv.lo + iv.hi), 0.1 * (iv.hi - iv.lo))

  def test_pairing_by_image_cancels_image_difficulty(self):
    rng = np.random.default_rng(4)
    a = _crossed(rng, 4, 40, 28.0, 0.0, 3.0, 0.0)  # images differ by dB
    b = a + 0.1 + rng.normal(0, 0.01, a.shape)  # b better by 0.1 dB
    iv = stats.diff_ci(b, a, n_boot=2000, seed=0)
    self.assertAlmostEqual(iv.estimate, 0.1, delta=0.01)
    self.assertTrue(iv.above(0.09))
    self.assertTrue(iv.below(0.11))
    # unpaired (independent image draws) the same data is undecidable
    unpaired = stats.statistic_ci(
        [b], lambda g: g[0].mean(), n_boot=2000, seed=0)
    other = stats.mean_ci(a, n_boot=2000, seed=5)
    self.assertGreater(unpaired.hi - unpaired.lo, 10 * (iv.hi - iv.lo))
    self.assertGreater(other.hi, unpaired.lo)

  def test_degenerate_cases(self):
    const = np.full((3, 5), 31.25)
    iv = stats.mean_ci(const, n_boot=200)
    self.assertEqual((iv.estimate, iv.lo, iv.hi), (31.25, 31.25, 31.25))
    one = stats.mean_ci([[2.5]], n_boot=50)
    self.assertEqual((one.lo, one.hi, one.seeds, one.images), (2.5, 2.5, 1,
                                                                1))
    shift = stats.diff_ci(const + 0.5, const, n_boot=50)
    self.assertAlmostEqual(shift.lo, 0.5, places=12)
    self.assertAlmostEqual(shift.hi, 0.5, places=12)

  def test_one_seed_matches_the_plain_image_bootstrap_variance(self):
    # S = 1: the replicates are the ordinary bootstrap of an image mean,
    # whose variance is the population variance / I.
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 50)
    n_boot = 20000
    seed_idx, image_idx = stats.draw_indices([1], 50, n_boot, seed=2)
    del seed_idx
    reps = x[image_idx].mean(axis=1)
    self.assertAlmostEqual(reps.var() / (x.var() / 50), 1.0, delta=0.05)
    iv = stats.mean_ci(x, n_boot=n_boot, seed=2)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    self.assertAlmostEqual(iv.lo, lo, places=12)
    self.assertAlmostEqual(iv.hi, hi, places=12)

  def test_vectorised_contrast_equals_the_general_statistic(self):
    rng = np.random.default_rng(6)
    a = rng.normal(0, 1, (3, 7))
    b = rng.normal(0, 1, (4, 7))
    fast = stats.diff_ci(a, b, n_boot=300, seed=9)
    slow = stats.statistic_ci([a, b], lambda g: g[0].mean() - g[1].mean(),
                              n_boot=300, seed=9)
    self.assertAlmostEqual(fast.estimate, slow.estimate, places=12)
    self.assertAlmostEqual(fast.lo, slow.lo, places=12)
    self.assertAlmostEqual(fast.hi, slow.hi, places=12)

  def test_fixed_seed_is_reproducible(self):
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, (3, 9))
    self.assertEqual(stats.mean_ci(a, n_boot=100, seed=1),
                     stats.mean_ci(a, n_boot=100, seed=1))
    self.assertNotEqual(stats.mean_ci(a, n_boot=100, seed=1),
                        stats.mean_ci(a, n_boot=100, seed=2))

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, "non-finite"):
      stats.mean_ci([[1.0, np.nan]])
    with self.assertRaisesRegex(ValueError, "same images"):
      stats.diff_ci(np.zeros((2, 3)), np.zeros((2, 4)))
    with self.assertRaisesRegex(ValueError, "level"):
      stats.mean_ci([[1.0]], level=1.5)
    with self.assertRaisesRegex(ValueError, "weights"):
      stats.contrast_ci([np.zeros((1, 2))], [1.0, 2.0])


if __name__ == "__main__":
  absltest.main()
