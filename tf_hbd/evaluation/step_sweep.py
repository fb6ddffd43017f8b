"""A trained decoder's K sweep from one refinement pass per image.

The study evaluates every run's decoder at its trained K and at every K of
the sweep (Table 1, claim c). The decoder's reconstruction after step k does
not depend on how many steps follow, so one pass of max(K) steps
(`tf_hbd.evaluation.systems.LoadedDecoder.refine_steps`, the exports'
``refine_steps`` signature) gives every K's refinement: 8 steps per image
instead of 1 + 2 + 4 + 6 + 8 = 21 for the sweep K = 1 / 2 / 4 / 6 / 8.

`StepSweep` hands out those refinements as evaluation systems
(`tf_hbd.evaluation.systems.decoder_system`), each image's pass computed
once and dropped when every K has taken its image. The first pass is checked
against the decoder's own refinement at its trained K (`LoadedDecoder.refine`,
what the run's rows used before): on any difference in any pixel, every K
is refined separately from then on (`exact` False), so the numbers are the
same with or without the sweep. Decoders without ``refine_steps`` (model
dirs without an export, exports made before it) are refined at each K.
"""

import hashlib
from typing import Iterable, Optional

import numpy as np

from tf_hbd.evaluation import systems

__all__ = ["StepSweep"]


class StepSweep:
  """Refinements of one decoder at several K, one pass per image.

  Args:
    dec: a `tf_hbd.evaluation.systems.LoadedDecoder`.
    ks: every K that will be asked for (its trained K is added).

  Attributes:
    exact: None before the first pass, then whether the pass's image at the
      trained K equalled `dec.refine`'s (False: refined at each K).
    passes: K-step passes made; calls: single-K refinements made.
  """

  def __init__(self, dec: systems.LoadedDecoder, ks: Iterable[int]):
    self._dec = dec
    self._ks = sorted({int(k) for k in ks} | {int(dec.K)})
    self._pending = {}
    self.exact: Optional[bool] = None
    self.passes = 0
    self.calls = 0

  def system(self, k: int, label: str) -> systems.System:
    """An evaluation system refining at K = `k` (one of `ks`)."""
    if int(k) not in self._ks:
      raise ValueError(f"K={k} is not in the sweep {self._ks}")
    return systems.decoder_system(
        label, self._dec.codec,
        lambda img, encoded: self.refine(img, encoded, int(k)),
        f"HBD decoder from {self._dec.path} refining {self._dec.codec} "
        f"(trained K={self._dec.K}, evaluated K={k}, one pass of "
        f"K={self._ks[-1]} per image)")

  def refine(self, decoded: np.ndarray, encoded, k: int) -> np.ndarray:
    """`dec.refine(decoded, K=k, encoded=encoded)`, from the image's pass."""
    if self._dec.refine_steps is None or self.exact is False:
      return self._single(decoded, encoded, k)
    key = _key(decoded, encoded)
    if k not in self._pending.get(key, {}):
      steps = self._dec.refine_steps(decoded, self._ks[-1], encoded=encoded)
      self.passes += 1
      if self.exact is None:
        self.exact = bool(np.array_equal(
            steps[self._dec.K - 1], self._single(decoded, encoded, None)))
        if not self.exact:
          return self._single(decoded, encoded, k)
      self._pending[key] = {q: steps[q - 1] for q in self._ks}
    taken = self._pending[key]
    out = taken.pop(k)
    if not taken:
      del self._pending[key]
    return out

  def _single(self, decoded, encoded, k):
    """The decoder's own refinement (its default K as such, as before)."""
    self.calls += 1
    return self._dec.refine(decoded, K=None if k in (None, self._dec.K)
                            else k, encoded=encoded)


def _key(decoded, encoded):
  """What identifies one image's pass: the decoded pixels and bitstream."""
  h = hashlib.sha256(np.ascontiguousarray(decoded).tobytes())
  h.update(repr(np.shape(decoded)).encode())
  if encoded is not None:
    h.update(bytes(encoded.data))
  return h.hexdigest()
