"""Tests of tf_hbd.evaluation.rd_curves (interpolation, BD-PSNR)."""

import math

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from tf_hbd.evaluation import rd_curves

# An analytic RD curve: PSNR = 20 + 6 log2(bpp / 0.05) (6 dB per doubling).
_RATES = np.array([0.06, 0.1, 0.17, 0.3, 0.5, 0.8, 1.3])


def _log_curve(bpp, offset=0.0, slope=6.0):
  return 20.0 + offset + slope * np.log2(np.asarray(bpp) / 0.05)


class EnvelopeTest(absltest.TestCase):

  def test_drops_dominated_points_and_sorts(self):
    x, y = rd_curves.envelope([0.5, 0.1, 0.3, 0.4, 0.3, 0.6],
                              [30.0, 25.0, 28.0, 27.5, 27.0, 30.0])
    # 0.4 (27.5 < 28.0 at 0.3) and 0.6 (no gain over 0.5) are dominated;
    # the worse of two points at one rate goes.
    np.testing.assert_array_equal(x, [0.1, 0.3, 0.5])
    np.testing.assert_array_equal(y, [25.0, 28.0, 30.0])

  def test_rejects_mismatched_lengths(self):
    with self.assertRaisesRegex(ValueError, "one length"):
      rd_curves.envelope([0.1, 0.2], [20.0])


class PchipTest(absltest.TestCase):

  def test_straight_line_is_exact(self):
    x = np.array([0.0, 0.5, 2.0, 2.5, 4.0])
    at = np.linspace(0, 4, 41)
    np.testing.assert_allclose(rd_curves.pchip(x, 3 * x - 1, at), 3 * at - 1,
                               atol=1e-12)

  def test_passes_through_knots_and_stays_monotone(self):
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.0, 0.1, 3.0, 3.05, 6.0])  # steps: a cubic spline wiggles
    np.testing.assert_allclose(rd_curves.pchip(x, y, x), y, atol=1e-12)
    v = rd_curves.pchip(x, y, np.linspace(0, 4, 401))
    self.assertTrue(np.all(np.diff(v) >= -1e-12))

  def test_hand_computed_value(self):
    # knots 0, 1, 2 with values 0, 1, 3: secants 1 and 2, equal spacing, so
    # the inner slope is the harmonic mean 2 * 1 * 2 / 3 = 4/3 and the end
    # slopes ((2 + 1) * 1 - 1 * 2) / 2 = 0.5 and ((2 + 1) * 2 - 1) / 2 =
    # 2.5; at t = 0.5 of [0, 1]: 0.5 * 0 + 0.125 * 0.5 + 0.5 * 1
    # - 0.125 * 4/3 = 0.39583...
    self.assertAlmostEqual(float(rd_curves.pchip([0, 1, 2], [0, 1, 3], 0.5)),
                           0.5 + 0.0625 - 1 / 6)

  def test_end_slope_is_limited_to_three_secants(self):
    # Secants 1 then -10: the three-point end slope (2.1 + 10) / 1.1 = 11
    # exceeds 3 x the first secant and is cut to 3; the inner knot is an
    # extremum (slope 0). At t = 0.5 of [0, 1]: 0.125 * 3 + 0.5 * 1.
    self.assertAlmostEqual(
        float(rd_curves.pchip([0.0, 1.0, 1.1], [0.0, 1.0, 0.0], 0.5)), 0.875)

  def test_matches_an_independent_implementation(self):
    try:
      from scipy import interpolate as sp  # pylint: disable=g-import-not-at-top
    except ImportError:
      self.skipTest("scipy not installed")
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.uniform(0.1, 1.0, 9))
    y = np.cumsum(rng.uniform(-0.5, 2.0, 9))
    at = np.linspace(x[0], x[-1], 97)
    np.testing.assert_allclose(rd_curves.pchip(x, y, at),
                               sp.PchipInterpolator(x, y)(at), atol=1e-10)

  def test_does_not_extrapolate(self):
    with self.assertRaisesRegex(ValueError, "extrapolate"):
      rd_curves.pchip([0.0, 1.0], [0.0, 1.0], 1.5)


class InterpolateTest(parameterized.TestCase):

  def test_log_linear_curve_is_exact_in_log_bpp(self):
    want = float(_log_curve(0.37))
    for method in ("pchip_log_bpp", "linear_log_bpp"):
      self.assertAlmostEqual(
          rd_curves.interpolate(_RATES, _log_curve(_RATES), 0.37, method),
          want, places=10)
    # The chord in bpp under this concave curve reads low: between 0.3 and
    # 0.5 by a fraction 0.35 of the 4.42 dB step, against log2 gives 0.303.
    chord = rd_curves.interpolate(_RATES, _log_curve(_RATES), 0.37,
                                  "linear_bpp")
    lo, hi = _log_curve([0.3, 0.5])
    self.assertAlmostEqual(chord, lo + (hi - lo) * 0.07 / 0.2)
    self.assertLess(chord, want - 0.1)

  def test_pchip_beats_the_chord_on_a_smooth_curve(self):
    # PSNR = 40 - 12 exp(-3 bpp): neither linear in bpp nor in log bpp.
    f = lambda b: 40 - 12 * np.exp(-3 * np.asarray(b))
    want = float(f(0.37))
    errors = {m: abs(rd_curves.interpolate(_RATES, f(_RATES), 0.37, m) -
                     want) for m in rd_curves.METHODS}
    self.assertLess(errors["pchip_log_bpp"], 0.02)
    self.assertLess(errors["pchip_log_bpp"], errors["linear_log_bpp"])
    self.assertLess(errors["pchip_log_bpp"], errors["linear_bpp"])

  @parameterized.parameters(*rd_curves.METHODS)
  def test_no_extrapolation(self, method):
    y = _log_curve(_RATES)
    self.assertIsNone(rd_curves.interpolate(_RATES, y, 0.05, method))
    self.assertIsNone(rd_curves.interpolate(_RATES, y, 1.4, method))
    self.assertIsNone(rd_curves.interpolate([], [], 0.37, method))
    self.assertAlmostEqual(rd_curves.interpolate(_RATES, y, 1.3, method),
                           float(y[-1]))

  def test_dominated_points_are_ignored(self):
    y = _log_curve(_RATES)
    x2 = np.append(_RATES, 0.4)
    y2 = np.append(y, 10.0)  # a bad point between 0.3 and 0.5
    for method in rd_curves.METHODS:
      self.assertAlmostEqual(rd_curves.interpolate(x2, y2, 0.37, method),
                             rd_curves.interpolate(_RATES, y, 0.37, method))

  def test_unknown_method(self):
    with self.assertRaisesRegex(ValueError, "unknown method"):
      rd_curves.interpolate(_RATES, _RATES, 0.3, "cubic")


class BdPsnrTest(absltest.TestCase):

  def test_constant_offset_is_exact(self):
    y = 30 + 8 * np.log10(_RATES) - 2 * np.log10(_RATES) ** 2
    self.assertAlmostEqual(rd_curves.bd_psnr(_RATES, y, _RATES, y + 1.25),
                           1.25, places=10)
    self.assertAlmostEqual(rd_curves.bd_psnr(_RATES, y + 1.25, _RATES, y),
                           -1.25, places=10)

  def test_same_curve_sampled_elsewhere_is_zero(self):
    y = lambda b: 30 + 8 * np.log10(b) - 2 * np.log10(b) ** 2
    other = np.array([0.08, 0.2, 0.45, 0.9, 1.2])
    self.assertAlmostEqual(rd_curves.bd_psnr(_RATES, y(_RATES), other,
                                             y(other)), 0.0, places=9)

  def test_log_linear_curves_by_hand(self):
    # ref: 20 + 6 log2(r / 0.05); test: 21 + 5 log2(r / 0.05). Overlap
    # [0.1, 0.8] (test's range): the mean of 1 - log2(r / 0.05) over log r
    # uniform in [0.1, 0.8] is 1 - log2(sqrt(0.08) / 0.05) = 1 - 2.5 = -1.5.
    ref_r, test_r = _RATES, np.array([0.1, 0.2, 0.4, 0.8])
    got = rd_curves.bd_psnr(ref_r, _log_curve(ref_r), test_r,
                            _log_curve(test_r, offset=1.0, slope=5.0))
    self.assertAlmostEqual(got, 1 - math.log2(math.sqrt(0.08) / 0.05),
                           places=10)
    self.assertAlmostEqual(got, -1.5, places=10)
    # Within the window [0.1, 0.2] (log-midpoint sqrt(0.02)):
    # 1 - log2(2.83) = -0.5.
    got = rd_curves.bd_psnr(ref_r, _log_curve(ref_r), test_r,
                            _log_curve(test_r, offset=1.0, slope=5.0),
                            window=(0.1, 0.2))
    self.assertAlmostEqual(got, 1 - math.log2(math.sqrt(0.02) / 0.05),
                           places=10)
    self.assertAlmostEqual(got, -0.5, places=10)

  def test_window_uses_the_points_around_it(self):
    # A kink far from the window does not reach a windowed fit.
    y = _log_curve(_RATES)
    bent = y.copy()
    bent[-1] -= 2.0  # 1.3 bpp, still above 0.8 bpp's point
    whole = rd_curves.bd_psnr(_RATES, y, _RATES, bent)
    near = rd_curves.bd_psnr(_RATES, y, _RATES, bent, window=(0.1, 0.3))
    self.assertLess(whole, -0.05)
    self.assertAlmostEqual(near, 0.0, places=10)

  def test_fit_points_cover_the_window_and_one_beyond(self):
    # Window [0.2, 0.4] on _RATES: 0.17 and 0.5 are the points beyond it,
    # widened one a side to 0.1 ... 0.8 (at least four). The test curve is
    # one no cubic fits exactly, so the points chosen show in the figure
    # (0.002-0.05 dB apart); the reference is linear in log bpp, exact
    # whatever points fit it: its mean is its value at sqrt(0.2 * 0.4).
    f = lambda b: 40 - 12 * np.exp(-3 * np.asarray(b))
    lo, hi = np.log10(0.2), np.log10(0.4)

    def mean(rates):
      p = np.polyint(np.polyfit(np.log10(rates), f(rates), 3))
      return (np.polyval(p, hi) - np.polyval(p, lo)) / (hi - lo)

    want = mean(_RATES[1:6]) - float(_log_curve(math.sqrt(0.08)))
    got = rd_curves.bd_psnr(_RATES, _log_curve(_RATES), _RATES, f(_RATES),
                            window=(0.2, 0.4))
    self.assertAlmostEqual(got, want, places=9)
    for other in (_RATES[1:5], _RATES[2:6], _RATES[1:], _RATES):
      self.assertGreater(abs(mean(other) - mean(_RATES[1:6])), 1e-3)

  def test_none_without_overlap_or_points(self):
    y = _log_curve(_RATES)
    self.assertIsNone(rd_curves.bd_psnr(_RATES[:3], y[:3], _RATES, y))
    self.assertIsNone(rd_curves.bd_psnr(_RATES[:4], y[:4], _RATES[4:] * 3,
                                        y[:3]))
    self.assertIsNone(rd_curves.bd_psnr(_RATES, y, _RATES, y,
                                        window=(2.0, 3.0)))


if __name__ == "__main__":
  absltest.main()
