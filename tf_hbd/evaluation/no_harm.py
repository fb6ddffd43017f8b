"""The do-no-harm check: a refined image is never worse than its decoded input.

For a refinement function and a codec, `check` compresses every image at
every setting, refines the decoded image and records the PSNR of both
against the original. The contract (`passes`):

* PSNR(refined) >= PSNR(decoded) - `TOLERANCE_DB` on every image and setting
  (when the decoded image is exact, so must the refined one be);
* a flat image keeps its value: every refined pixel is within +-1 gray level
  (`FLAT_TOLERANCE`) of the original level -- or, where the codec itself
  moved the level further (JPEG at quality 5 can shift it by 10), no further
  from it than the decoded image is. This replaces the PSNR rule for flat
  images (an exact decode refined to within +-1 is not harm).

The image sets are the stress set (`tf_hbd.data.stress_set`) and, where present,
ordinary photographs (Kodak, BSD68). `benchmarks/no_harm.py` runs the full
check on the shipped decoders and prints the worst image per setting; a CI
test runs a small fixed subset.
"""

import dataclasses
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.evaluation import metrics

__all__ = ["TOLERANCE_DB", "FLAT_TOLERANCE", "Row", "check", "worst",
           "failures", "served_refiner"]

TOLERANCE_DB = 0.05
FLAT_TOLERANCE = 1

# PSNR of an exact reconstruction, so that exact == exact compares equal.
_EXACT_DB = 1000.0


@dataclasses.dataclass
class Row:
  """One image at one setting."""
  image: str
  setting: float
  bpp: float
  psnr_decoded: float
  psnr_refined: float
  flat_value: int = -1        # the level of a flat original, else -1
  flat_deviation: int = 0     # max |refined - flat_value| for flat images
  decoded_deviation: int = 0  # max |decoded - flat_value| for flat images

  @property
  def delta_db(self) -> float:
    return self.psnr_refined - self.psnr_decoded

  @property
  def ok(self) -> bool:
    if self.flat_value >= 0:
      return self.flat_deviation <= max(FLAT_TOLERANCE,
                                        self.decoded_deviation)
    return self.delta_db >= -TOLERANCE_DB - 1e-9


def _psnr(a, b):
  if np.array_equal(a, b):
    return _EXACT_DB
  return metrics.psnr(a, b)


def served_refiner(model, codec: str, shifts: Optional[int] = None
                   ) -> Callable:
  """A refine(decoded, encoded) for a `tf_hbd.inference.serving.ServedModel`.

  `shifts`: grid offsets to average (`hbd enhance --shifts`); None keeps the
  export's own setting.
  """
  def refine(decoded, encoded):
    setting = (codec_setting.features(encoded.data, codec, decoded.shape)
               if model.setting_size else None)
    return model.refine(decoded, setting=setting, shifts=shifts)
  return refine


def check(refine: Callable, codec: str, images: Dict[str, np.ndarray],
          settings: Iterable[float]) -> List[Row]:
  """Runs the check.

  Args:
    refine: ``refine(decoded uint8, encoded tf_hbd.codecs.legacy.Encoded) ->
      uint8``.
    codec: "jpeg" (settings are qualities) or "jp2" (settings are bpps).
    images: name -> original gray uint8.
    settings: the codec settings.

  Returns:
    One `Row` per image and setting.
  """
  rows = []
  for setting in settings:
    for name, img in images.items():
      kw = {"quality": setting} if codec == "jpeg" else {"bpp": setting}
      decoded, enc = codecs.roundtrip(img, codec, **kw)
      refined = np.asarray(refine(decoded, enc))
      flat = img.min() == img.max()
      level = int(img.flat[0]) if flat else -1
      dev = lambda x: int(np.abs(x.astype(int) - level).max()) if flat else 0
      rows.append(Row(name, float(setting), enc.bpp, _psnr(img, decoded),
                      _psnr(img, refined), level, dev(refined), dev(decoded)))
  return rows


def failures(rows: List[Row]) -> List[Row]:
  return [r for r in rows if not r.ok]


def worst(rows: List[Row]) -> Dict[float, Row]:
  """The non-flat row with the lowest PSNR change, per setting (flat images
  are judged by their deviation, see `Row.ok`)."""
  out = {}
  for r in rows:
    if r.flat_value >= 0:
      continue
    if r.setting not in out or r.delta_db < out[r.setting].delta_db:
      out[r.setting] = r
  return out
