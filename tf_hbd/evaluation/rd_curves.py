"""Reading rate-distortion curves: a value at a rate, and BD-PSNR.

A curve is a codec's measured points (bpp, PSNR) on one image (or a mean
over images). Before anything is read off it, `envelope` keeps the points
a user would choose: sorted by rate, each strictly above the previous one
in both rate and PSNR (a point that costs more and gives less is
dominated and dropped). Then:

* `interpolate` reads the curve at a rate, by one of `METHODS`:
  ``"pchip_log_bpp"`` (monotone piecewise cubic Hermite, Fritsch-Carlson
  slopes with the usual shape-preserving end slopes, in log bpp; the
  default), ``"linear_log_bpp"`` or ``"linear_bpp"`` (the chord). None
  outside the measured rates: nothing is extrapolated.
* `bd_psnr` is the Bjontegaard delta PSNR (VCEG-M33): each curve's PSNR is
  fitted by a cubic polynomial in log10 rate (least squares; exact through
  four points), and the mean difference of the two fits is taken over the
  overlap of the two rate ranges (optionally within a window of rates, the
  fits then made on the points around the window). Each fit uses the
  curve's points covering the overlap and one point beyond each end (at
  least four), so a long reference curve is fitted where it is compared.

Everything is NumPy; no SciPy.
"""

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["METHODS", "DEFAULT_METHOD", "envelope", "pchip",
           "interpolate", "bd_psnr"]

METHODS = ("pchip_log_bpp", "linear_log_bpp", "linear_bpp")
DEFAULT_METHOD = "pchip_log_bpp"


def envelope(bpp: Sequence[float], psnr: Sequence[float]
            ) -> Tuple[np.ndarray, np.ndarray]:
  """The points a user would choose: rising in rate and in PSNR.

  Sorted by rate (then PSNR, highest first); a point is kept when both its
  rate and its PSNR exceed the last kept point's.

  Returns:
    (bpp, psnr) as float arrays, both strictly increasing.
  """
  bpp = np.asarray(bpp, dtype=float)
  psnr = np.asarray(psnr, dtype=float)
  if bpp.shape != psnr.shape or bpp.ndim != 1:
    raise ValueError(f"bpp and psnr must be 1-D of one length, got "
                     f"{bpp.shape} and {psnr.shape}")
  keep_x, keep_y = [], []
  for i in np.lexsort((-psnr, bpp)):
    if not keep_x or (bpp[i] > keep_x[-1] and psnr[i] > keep_y[-1]):
      keep_x.append(bpp[i])
      keep_y.append(psnr[i])
  return np.array(keep_x), np.array(keep_y)


def _pchip_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Fritsch-Carlson slopes: weighted harmonic means of the neighbouring
  secants inside, 0 at a local extremum; ends by the three-point formula
  limited so the interpolant keeps the data's shape."""
  h = np.diff(x)
  delta = np.diff(y) / h
  n = len(x)
  if n == 2:
    return np.full(2, delta[0])
  d = np.zeros(n)
  for k in range(1, n - 1):
    a, b = delta[k - 1], delta[k]
    if a * b > 0:
      w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
      d[k] = (w1 + w2) / (w1 / a + w2 / b)
  d[0] = _end_slope(h[0], h[1], delta[0], delta[1])
  d[-1] = _end_slope(h[-1], h[-2], delta[-1], delta[-2])
  return d


def _end_slope(h0, h1, d0, d1) -> float:
  """An end slope (three-point, shape preserving)."""
  d = ((2 * h0 + h1) * d0 - h0 * d1) / (h0 + h1)
  if np.sign(d) != np.sign(d0):
    return 0.0
  if np.sign(d0) != np.sign(d1) and abs(d) > abs(3 * d0):
    return 3 * d0
  return float(d)


def pchip(x: Sequence[float], y: Sequence[float], at) -> np.ndarray:
  """Monotone piecewise cubic Hermite interpolation of (x, y) at `at`.

  Args:
    x: strictly increasing knots (at least 2).
    y: values at the knots.
    at: where to read it (within [x[0], x[-1]]).

  Returns:
    float array shaped like `at`. Between monotone data it is monotone;
    it passes through every knot and reproduces a straight line exactly.
  """
  x = np.asarray(x, dtype=float)
  y = np.asarray(y, dtype=float)
  if len(x) < 2 or np.any(np.diff(x) <= 0):
    raise ValueError("pchip needs at least 2 strictly increasing knots")
  at = np.asarray(at, dtype=float)
  if np.any(at < x[0]) or np.any(at > x[-1]):
    raise ValueError(f"pchip does not extrapolate: {at} outside "
                     f"[{x[0]}, {x[-1]}]")
  d = _pchip_slopes(x, y)
  k = np.clip(np.searchsorted(x, at, side="right") - 1, 0, len(x) - 2)
  h = x[k + 1] - x[k]
  t = (at - x[k]) / h
  h00, h10 = (1 + 2 * t) * (1 - t) ** 2, t * (1 - t) ** 2
  h01, h11 = t * t * (3 - 2 * t), t * t * (t - 1)
  return h00 * y[k] + h10 * h * d[k] + h01 * y[k + 1] + h11 * h * d[k + 1]


def interpolate(bpp: Sequence[float], psnr: Sequence[float], at: float,
                method: str = DEFAULT_METHOD) -> Optional[float]:
  """The curve's value at rate `at`, or None outside its measured rates.

  Args:
    bpp, psnr: the measured points (any order; `envelope` is applied).
    at: the rate (bpp) to read.
    method: one of `METHODS`.
  """
  if method not in METHODS:
    raise ValueError(f"unknown method {method!r}; known: {METHODS}")
  x, y = envelope(bpp, psnr)
  if not len(x) or not x[0] <= at <= x[-1]:
    return None
  if len(x) == 1:
    return float(y[0])
  if method == "linear_bpp":
    return float(np.interp(at, x, y))
  if method == "linear_log_bpp":
    return float(np.interp(np.log(at), np.log(x), y))
  return float(pchip(np.log(x), y, np.log(at)))


def _fit_points(x: np.ndarray, lo: float, hi: float) -> slice:
  """The points a windowed fit uses: those in [lo, hi] and one beyond each
  end, widened one point a side until there are 4 (or none are left)."""
  i = max(int(np.searchsorted(x, lo, side="right")) - 1, 0)
  j = min(int(np.searchsorted(x, hi, side="left")) + 1, len(x))
  while j - i < 4 and (i > 0 or j < len(x)):
    i, j = max(i - 1, 0), min(j + 1, len(x))
  return slice(i, j)


def bd_psnr(bpp_ref: Sequence[float], psnr_ref: Sequence[float],
            bpp_test: Sequence[float], psnr_test: Sequence[float],
            window: Optional[Tuple[float, float]] = None) -> Optional[float]:
  """Bjontegaard delta PSNR (dB) of the test curve over the reference.

  VCEG-M33: PSNR of each curve fitted by a cubic in log10(bpp), the mean
  difference test - reference over the overlap of their rate ranges.
  Dominated points are dropped first (`envelope`).

  Args:
    bpp_ref, psnr_ref: the reference curve (e.g. JPEG).
    bpp_test, psnr_test: the curve compared (e.g. E2E).
    window: (low, high) bpp: the overlap is cut to it; None: the whole
      overlap. Each fit uses the points around the compared range
      (`_fit_points`).

  Returns:
    the delta in dB; None when a curve has fewer than 4 points to fit or
    the rate ranges (within the window) do not overlap.
  """
  curves = [envelope(bpp_ref, psnr_ref), envelope(bpp_test, psnr_test)]
  lo = max(c[0][0] if len(c[0]) else np.inf for c in curves)
  hi = min(c[0][-1] if len(c[0]) else -np.inf for c in curves)
  if window is not None:
    lo, hi = max(lo, window[0]), min(hi, window[1])
  if not lo < hi:
    return None
  means = []
  for x, y in curves:
    part = _fit_points(x, lo, hi)
    x, y = np.log10(x[part]), y[part]
    if len(x) < 4:
      return None
    integral = np.polyint(np.polyfit(x, y, 3))
    a, b = np.log10(lo), np.log10(hi)
    means.append((np.polyval(integral, b) - np.polyval(integral, a)) /
                 (b - a))
  return float(means[1] - means[0])
