"""Bootstrap confidence intervals over training seeds and test images.

The study's numbers vary for two reasons: the training run (seed: initial
weights, data order, UORO's signs) and the test images. Each quantity is a
*group*: an array of shape ``(S, I, ...)`` with one row per seed and one
column per test image (trailing axes, e.g. epochs, are carried along). The
images are the same in every group (the same test set), the seeds are not
paired across groups (different runs).

The bootstrap is hierarchical over the two factors. One replicate draws

1. for every group, ``S_g`` seed rows with replacement (independently per
   group: different runs share nothing);
2. once for all groups, ``I`` image columns with replacement (the same draw
   for every group, so differences are paired by image: an image that is
   hard for one system is hard for the other, and that shared difficulty
   cancels);

and evaluates the statistic on the resampled groups. The interval is the
percentile interval of ``n_boot`` replicates; the point estimate is the
statistic of the data itself. Draws come from ``numpy.random.default_rng(
seed)``, so the same call gives the same interval.

With one seed the seed draw is trivial and the interval reflects the images
only (it then says nothing about training noise: `tf_hbd.evaluation.claims`
refuses to decide on fewer than two seeds). With one image the interval
reflects the seeds only.

Everything is float64 NumPy; no TensorFlow.
"""

import dataclasses
from typing import Callable, List, Optional, Sequence

import numpy as np

__all__ = ["Interval", "DEFAULT_BOOT", "draw_indices", "contrast_ci",
           "mean_ci", "diff_ci", "statistic_ci", "as_group"]

DEFAULT_BOOT = 2000


@dataclasses.dataclass(frozen=True)
class Interval:
  """A point estimate with a bootstrap percentile interval.

  Attributes:
    estimate: the statistic of the data.
    lo, hi: the interval's bounds.
    level: its nominal coverage (e.g. 0.95).
    n_boot: bootstrap replicates behind it.
    seeds: seeds per group (the smallest if several groups).
    images: images per seed.
  """
  estimate: float
  lo: float
  hi: float
  level: float
  n_boot: int
  seeds: int
  images: int

  def above(self, value: float = 0.0) -> bool:
    """True if the whole interval lies above `value`."""
    return self.lo > value

  def below(self, value: float = 0.0) -> bool:
    """True if the whole interval lies below `value`."""
    return self.hi < value

  def as_list(self) -> List[float]:
    return [float(self.lo), float(self.hi)]


def as_group(values) -> np.ndarray:
  """`values` as a float64 group array (S, I, ...), checked finite.

  A 1-D input is one seed's images (shape (1, I)).
  """
  a = np.asarray(values, dtype=np.float64)
  if a.ndim == 1:
    a = a[None, :]
  if a.ndim < 2 or a.shape[0] < 1 or a.shape[1] < 1:
    raise ValueError(f"a group needs shape (seeds, images, ...) with at "
                     f"least one of each, got {a.shape}")
  if not np.all(np.isfinite(a)):
    raise ValueError("a group holds non-finite values (NaN or inf); remove "
                     "the runs or images they come from")
  return a


def _groups(groups) -> List[np.ndarray]:
  gs = [as_group(g) for g in groups]
  if not gs:
    raise ValueError("no groups")
  images = {g.shape[1] for g in gs}
  if len(images) != 1:
    raise ValueError(f"every group must have the same images (paired); got "
                     f"image counts {sorted(images)}")
  return gs


def draw_indices(seed_counts: Sequence[int], images: int, n_boot: int,
                 seed: int = 0):
  """The resampling indices of `n_boot` replicates.

  Returns:
    (seed_idx, image_idx): a list with one (n_boot, S_g) int array per
    group, and one (n_boot, I) int array shared by the groups.
  """
  rng = np.random.default_rng(seed)
  image_idx = rng.integers(0, images, size=(n_boot, images))
  seed_idx = [rng.integers(0, s, size=(n_boot, s)) for s in seed_counts]
  return seed_idx, image_idx


def _percentiles(reps, level):
  tail = (1.0 - level) / 2.0
  lo, hi = np.quantile(reps, [tail, 1.0 - tail])
  return float(lo), float(hi)


def _check(level, n_boot):
  if not 0.0 < level < 1.0:
    raise ValueError(f"level must be in (0, 1), got {level}")
  if n_boot < 1:
    raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _counts(idx, size):
  """(n_boot, size) how often each index was drawn per replicate."""
  out = np.zeros((idx.shape[0], size), np.float64)
  rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
  np.add.at(out, (rows, idx.ravel()), 1.0)
  return out


def contrast_ci(groups: Sequence, weights: Sequence[float],
                level: float = 0.95, n_boot: int = DEFAULT_BOOT,
                seed: int = 0) -> Interval:
  """Interval of ``sum_g weights[g] * mean(groups[g])`` (2-D groups).

  The mean of a group is over its seeds and images. Vectorised: a
  replicate's mean is ``c_s^T G c_i / (S I)`` with the draw counts c of its
  seeds and images (the same draws as `statistic_ci` with the same seed).

  Args:
    groups: arrays (S_g, I) with the same images.
    weights: one per group (e.g. (1, -1) for a difference).
    level, n_boot, seed: interval level, replicates, RNG seed.
  """
  _check(level, n_boot)
  gs = _groups(groups)
  if len(weights) != len(gs):
    raise ValueError(f"{len(weights)} weights for {len(gs)} groups")
  if any(g.ndim != 2 for g in gs):
    raise ValueError("contrast_ci takes 2-D groups (seeds, images); use "
                     "statistic_ci for more axes")
  n_img = gs[0].shape[1]
  seed_idx, image_idx = draw_indices([g.shape[0] for g in gs], n_img, n_boot,
                                     seed)
  c_img = _counts(image_idx, n_img)
  reps = np.zeros(n_boot, np.float64)
  estimate = 0.0
  for w, g, s_idx in zip(weights, gs, seed_idx):
    c_seed = _counts(s_idx, g.shape[0])
    reps += float(w) * np.einsum("bs,si,bi->b", c_seed, g, c_img) / g.size
    estimate += float(w) * float(np.mean(g))
  lo, hi = _percentiles(reps, level)
  return Interval(estimate, lo, hi, level, n_boot,
                  min(g.shape[0] for g in gs), n_img)


def mean_ci(values, level: float = 0.95, n_boot: int = DEFAULT_BOOT,
            seed: int = 0) -> Interval:
  """Interval of the mean of one group (seeds x images)."""
  return contrast_ci([values], [1.0], level, n_boot, seed)


def diff_ci(a, b, level: float = 0.95, n_boot: int = DEFAULT_BOOT,
            seed: int = 0) -> Interval:
  """Interval of ``mean(a) - mean(b)``, paired by image (same columns)."""
  return contrast_ci([a, b], [1.0, -1.0], level, n_boot, seed)


def statistic_ci(groups: Sequence, statistic: Callable[[List[np.ndarray]],
                                                        float],
                 level: float = 0.95, n_boot: int = DEFAULT_BOOT,
                 seed: int = 0,
                 estimate: Optional[float] = None) -> Interval:
  """Interval of any statistic of resampled groups.

  Args:
    groups: arrays (S_g, I, ...) with the same images (axis 1).
    statistic: callable(list of arrays shaped like `groups`) -> float.
    level, n_boot, seed: as `contrast_ci` (same draws for the same seed).
    estimate: the point estimate (default: the statistic of the data).
  """
  _check(level, n_boot)
  gs = _groups(groups)
  n_img = gs[0].shape[1]
  seed_idx, image_idx = draw_indices([g.shape[0] for g in gs], n_img, n_boot,
                                     seed)
  reps = np.empty(n_boot, np.float64)
  for b in range(n_boot):
    cols = image_idx[b]
    reps[b] = float(statistic([g[s[b]][:, cols] for g, s in
                               zip(gs, seed_idx)]))
  if not np.all(np.isfinite(reps)):
    raise ValueError("the statistic is not finite on some replicates")
  lo, hi = _percentiles(reps, level)
  point = float(statistic(gs)) if estimate is None else float(estimate)
  return Interval(point, lo, hi, level, n_boot,
                  min(g.shape[0] for g in gs), n_img)
