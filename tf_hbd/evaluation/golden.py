"""Golden figures: the shipped decoders', baselines' and codecs' PSNR and bpp
on fixed images that a dependency ships (scikit-image's photographs).

`compute()` gives ``{"<image>/<system>": {"psnr": dB, "bpp": bits}}`` for
two 256 x 256 gray crops and these systems:

* ``jpeg``, ``jp2``: the codec at 0.37 bpp (`tf_hbd.codecs.legacy.encode`);
* ``hbd-lstm-jpeg``, ``hbd-lstm-jp2``: the shipped decoder (its trained K)
  on that codec's output (same bpp);
* ``e2e-*``: every shipped E2E model, ``compress`` / ``decompress``;
* ``goog``: the shipped GOOG model with 4 iterations.

The expected values live in one JSON file, written by
``scripts/golden.py --write`` and checked by ``tests/golden_test.py``
(PSNR within `PSNR_TOLERANCE_DB`, bpp within `BPP_TOLERANCE`). Rerun the
script when a shipped model or a codec is replaced on purpose.
"""

from typing import Dict

import numpy as np

from tf_hbd.data import sample_images
from tf_hbd.evaluation import metrics

__all__ = ["IMAGES", "TARGET_BPP", "GOOG_ITERATIONS", "PSNR_TOLERANCE_DB",
           "BPP_TOLERANCE", "images", "compute", "compare"]

# name -> (top, left) of a 256 x 256 crop of scikit-image's photograph.
IMAGES = {"camera": (64, 128), "astronaut": (0, 128)}
CROP = 256
TARGET_BPP = 0.37
GOOG_ITERATIONS = 4
PSNR_TOLERANCE_DB = 0.01
BPP_TOLERANCE = 1e-3


def images() -> Dict[str, np.ndarray]:
  """The fixed gray uint8 crops, by name."""
  out = {}
  for name, (top, left) in IMAGES.items():
    gray = sample_images.load_sample(name)
    out[name] = np.ascontiguousarray(gray[top:top + CROP, left:left + CROP])
  return out


def _psnr(reference, image):
  return {"psnr": metrics.psnr(reference, image)}


def compute() -> Dict[str, Dict[str, float]]:
  """PSNR and bpp of every shipped system on every fixed image.

  Measured by `tf_hbd.evaluation.systems.evaluate`: the codecs and the
  shipped decoders at `TARGET_BPP`, the neural models at their own setting.
  """
  # pylint: disable=g-import-not-at-top
  from tf_hbd import baselines
  from tf_hbd.data import pipelines
  from tf_hbd.evaluation import systems
  from tf_hbd.inference import serving
  # pylint: enable=g-import-not-at-top
  at_target = []
  for codec in ("jpeg", "jp2"):
    dec = systems.load_trained_decoder(serving.pretrained_dir(codec))
    at_target += [systems.codec_system(codec, name=codec),
                  systems.trained_decoder_system(
                      dec, label=serving.PRETRAINED[codec])]
  own = [systems.neural_system(
      model, iterations=(GOOG_ITERATIONS if baselines.family_of(model) ==
                         "goog" else None)) for model in baselines.available()]
  imgs = [pipelines.EvalImage(name, img) for name, img in images().items()]
  out = {}
  for group, point in ((at_target, TARGET_BPP), (own, None)):
    for name, rows in systems.evaluate(imgs, group, [point],
                                       measure=_psnr).items():
      for r in rows:
        out[f"{r['image']}/{name}"] = {"psnr": round(float(r["psnr"]), 4),
                                       "bpp": round(r["bpp"], 6)}
  return out


def compare(expected: Dict[str, Dict[str, float]],
            got: Dict[str, Dict[str, float]]) -> list:
  """Lines naming every figure outside its tolerance (empty: all match)."""
  problems = []
  for key in sorted(set(expected) | set(got)):
    if key not in got:
      problems.append(f"{key}: expected, not computed")
      continue
    if key not in expected:
      problems.append(f"{key}: computed, no expected value (regenerate)")
      continue
    e, g = expected[key], got[key]
    if abs(e["psnr"] - g["psnr"]) > PSNR_TOLERANCE_DB:
      problems.append(f"{key}: PSNR {g['psnr']:.4f} dB, expected "
                      f"{e['psnr']:.4f} +- {PSNR_TOLERANCE_DB}")
    if abs(e["bpp"] - g["bpp"]) > BPP_TOLERANCE:
      problems.append(f"{key}: {g['bpp']:.6f} bpp, expected {e['bpp']:.6f} "
                      f"+- {BPP_TOLERANCE}")
  return problems
