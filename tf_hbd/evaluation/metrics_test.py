"""Tests of tf_hbd.evaluation.metrics."""

import numpy as np
import tensorflow as tf

from tf_hbd.evaluation import metrics


class MetricsTest(tf.test.TestCase):

  def test_psnr_known_pairs(self):
    a = np.zeros((32, 32), np.uint8)
    b = np.full((32, 32), 1, np.uint8)  # MSE 1 -> 20 log10 255
    self.assertAlmostEqual(metrics.psnr(a, b), 20 * np.log10(255), places=10)
    c = a.copy()
    c[0, :16] = 255  # MSE = 16 * 255^2 / 1024 -> 10 log10(64)
    self.assertAlmostEqual(metrics.psnr(a, c), 10 * np.log10(64), places=10)
    self.assertEqual(metrics.psnr(a, a), float("inf"))

  def test_psnr_matches_tf(self):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    b = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    want = tf.image.psnr(a[None, ..., None], b[None, ..., None], 255)[0]
    self.assertAllClose(metrics.psnr(a, b), want, atol=1e-4)

  def test_float_inputs_are_rounded_to_8_bits(self):
    a = np.full((20, 20), 100, np.uint8)
    self.assertEqual(metrics.psnr(a, a + 0.4), float("inf"))
    self.assertEqual(metrics.psnr(a, np.full((20, 20), 300.0)),
                     metrics.psnr(a, np.full((20, 20), 255, np.uint8)))

  def test_ssim_identity_and_order(self):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    noisy = np.clip(a + rng.normal(0, 20, a.shape), 0, 255)
    noisier = np.clip(a + rng.normal(0, 60, a.shape), 0, 255)
    self.assertAlmostEqual(metrics.ssim(a, a), 1.0, places=5)
    self.assertGreater(metrics.ssim(a, noisy), metrics.ssim(a, noisier))

  def test_ms_ssim_scales(self):
    self.assertEqual(metrics.ms_ssim_scales((176, 200)), 5)
    self.assertEqual(metrics.ms_ssim_scales((175, 200)), 4)
    self.assertEqual(metrics.ms_ssim_scales((21, 21)), 1)
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (200, 180), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 10, a.shape), 0, 255)
    full = metrics.ms_ssim(a, b, strict=True)
    want = tf.image.ssim_multiscale(a[None, ..., None].astype(np.float32),
                                    np.rint(b)[None, ..., None].astype(
                                        np.float32), 255.0)[0]
    self.assertAllClose(full, want, atol=1e-5)
    small = a[:64, :64], b[:64, :64]
    self.assertBetween(metrics.ms_ssim(*small), 0.0, 1.0)
    with self.assertRaisesRegex(ValueError, "5-scale"):
      metrics.ms_ssim(*small, strict=True)
    with self.assertRaisesRegex(ValueError, "at least 11"):
      metrics.ssim(a[:8, :8], b[:8, :8])

  def test_shape_mismatch(self):
    with self.assertRaises(ValueError):
      metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)))

  def test_all_metrics_keys(self):
    a = np.random.default_rng(4).integers(0, 256, (180, 180), dtype=np.uint8)
    self.assertEqual(set(metrics.all_metrics(a, a)), {"psnr", "ssim",
                                                      "ms-ssim"})
    self.assertEqual(tuple(metrics.all_metrics(a, a)), metrics.METRIC_NAMES)

  def test_ssim_and_ms_ssim_are_tf_image_s_values_to_the_bit(self):
    # odd and even sides, 1 to 5 MS-SSIM scales, identical, inverted and
    # constant pairs
    rng = np.random.default_rng(6)
    for shape in ((11, 11), (12, 13), (23, 22), (47, 64), (175, 200),
                  (176, 177), (200, 181), (353, 241)):
      a = rng.integers(0, 256, shape, dtype=np.uint8)
      noisy = np.clip(a + rng.normal(0, 20, shape), 0, 255)
      for b in (a, noisy, 255 - a, np.zeros(shape, np.uint8)):
        got = (metrics.ssim(a, b), metrics.ms_ssim(a, b))
        want = (metrics.tf_ssim(a, b), metrics.tf_ms_ssim(a, b))
        np.testing.assert_array_equal(got, want, err_msg=str(shape))
        np.testing.assert_array_equal(metrics.ssim_and_ms_ssim(a, b), got)
    self.assertEqual(metrics.tf_metrics(a, noisy),
                     metrics.all_metrics(a, noisy))

  def test_a_subset_gives_all_metrics_values(self):
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (60, 70), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255)
    full = metrics.all_metrics(a, b)
    for names in (("psnr",), ("psnr", "ms-ssim"), ("ms-ssim", "ssim"),
                  metrics.METRIC_NAMES):
      measure = metrics.subset(*names)
      self.assertEqual(measure.names, names)
      got = measure(a, b)
      self.assertEqual(tuple(got), names)  # only these, in this order
      self.assertEqual(got, {n: full[n] for n in names})
    self.assertIs(metrics.metric_function("ssim"), metrics.ssim)
    for bad in ((), ("lpips",), ("psnr", "psnr")):
      with self.assertRaises(ValueError):
        metrics.subset(*bad)


if __name__ == "__main__":
  tf.test.main()
