"""The do-no-harm stress set: content photographs lack, made in the repo.

A refinement that helps photographs can harm what they rarely contain:
black or white regions, documents, graphics, flat fields. `images()` makes a
fixed, named set of such images with no downloads:

* ``flat-<v>``: flat fields at every level near 0 and 255 (0..15 and
  240..255 in steps of 1) and every 8th level between;
* ``text-dark-on-light-<i>`` / ``text-light-on-dark-<i>``, ``lines-<i>``,
  ``gradient-<i>``, ``graphics-<i>``, ``checkerboard-<i>``: synthetic images
  (`tf_hbd.data.synthetic`) drawn from seeds disjoint from training's;
* ``<photo>-dark`` / ``<photo>-bright``: photographs mapped into 0..40 and
  215..255 (by default the sample photographs' held-out test split; any
  gray photographs can be passed).

`SETTINGS` lists the codec settings the check covers (JPEG quality 5..95,
JPEG 2000 0.1..2 bpp). `benchmarks/no_harm.py` runs every shipped decoder
over the set (plus Kodak and BSD68 when present) at every setting; a CI test
runs a fixed subset.
"""

from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from tf_hbd.data import sample_images
from tf_hbd.data import synthetic

__all__ = ["SETTINGS", "FLAT_LEVELS", "images", "flat_levels"]

# Codec settings of the check: JPEG qualities and JPEG 2000 target bpps.
SETTINGS = {
    "jpeg": (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95),
    "jp2": (0.1, 0.25, 0.37, 0.5, 0.75, 1.0, 1.5, 2.0),
}

_SEED = 1_000_003  # training draws from [seed, epoch]; never this
_SYNTH_SIDE = 128


def flat_levels():
  """0..15, every 8th level from 16 to 239, 240..255."""
  return tuple(range(0, 16)) + tuple(range(16, 240, 8)) + tuple(
      range(240, 256))


FLAT_LEVELS = flat_levels()


def _synthetic(per_kind: int) -> Dict[str, np.ndarray]:
  out = {}
  shape = (_SYNTH_SIDE, _SYNTH_SIDE)
  for i in range(per_kind):
    for k, kind in enumerate(("lines", "gradient", "graphics",
                              "checkerboard")):
      rng = np.random.default_rng([_SEED, k, i])
      out[f"{kind}-{i}"] = synthetic.make(kind, rng, shape)
    # Text both ways round: choose seeds until each polarity appears.
    for polarity in ("dark-on-light", "light-on-dark"):
      for j in range(100):
        rng = np.random.default_rng([_SEED, 100, i, j])
        img = synthetic.make("text", rng, shape)
        bg = np.bincount(img.reshape(-1), minlength=256).argmax()
        if (bg > 127) == (polarity == "dark-on-light"):
          out[f"text-{polarity}-{i}"] = img
          break
  return out


def images(photos: Optional[Iterable[Tuple[str, np.ndarray]]] = None,
           per_kind: int = 2, flat_size: int = 64) -> Dict[str, np.ndarray]:
  """The stress set, name -> uint8 gray image.

  Args:
    photos: (name, gray uint8) photographs to map dark and bright (default:
      the sample photographs' test split, which training never sees).
    per_kind: synthetic images of each kind.
    flat_size: side of the flat images.
  """
  out = {f"flat-{v}": np.full((flat_size, flat_size), v, np.uint8)
         for v in FLAT_LEVELS}
  out.update(_synthetic(per_kind))
  if photos is None:
    photos = ((n, sample_images.load_sample(n))
              for n in sample_images.sample_names("test"))
  for name, img in photos:
    out[f"{name}-dark"] = synthetic.tone_map(img, 0, 40)
    out[f"{name}-bright"] = synthetic.tone_map(img, 215, 255)
  return out
