"""The embedded default data: real photographs shipped inside scikit-image.

These files are part of the scikit-image wheel (no network needed). The split
is fixed and documented so that results are comparable across machines:

* train: the photographs used to train on the embedded default;
* validation: used for per-epoch validation PSNR;
* test: held out, used by the quick start to report the gain over the codec.

Every image is converted to 8-bit gray with the package's luma rule
(`tf_hbd.codecs.images`).
"""

import os

import numpy as np

from tf_hbd.codecs import images

__all__ = ["SPLITS", "sample_path", "load_sample", "sample_names"]

# name -> file inside skimage/data (all bundled with the wheel).
_FILES = {
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "coins": "coins.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "moon": "moon.png",
    "page": "page.png",
    "rocket": "rocket.jpg",
    "motorcycle_left": "motorcycle_left.png",
    "motorcycle_right": "motorcycle_right.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg",
}

SPLITS = {
    # The stereo pair motorcycle_left/right stays together in train so that no
    # near-duplicate content crosses splits. Non-photographs (horse: a binary
    # silhouette; text: synthetic) are not used.
    "train": ("brick", "coins", "grass", "gravel", "moon", "page",
              "motorcycle_left", "motorcycle_right", "hubble_deep_field",
              "retina"),
    "validation": ("coffee", "rocket"),
    "test": ("astronaut", "camera", "chelsea"),
}


def sample_names(split: str):
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; choose from {tuple(SPLITS)}")
  return SPLITS[split]


def sample_path(name: str) -> str:
  import skimage  # pylint: disable=g-import-not-at-top
  if name not in _FILES:
    raise ValueError(f"unknown sample image {name!r}")
  path = os.path.join(os.path.dirname(skimage.__file__), "data", _FILES[name])
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"scikit-image does not ship {path}; reinstall scikit-image==0.26.0")
  return path


def load_sample(name: str) -> np.ndarray:
  """The sample image `name` as 8-bit gray."""
  return images.load_image(sample_path(name)).gray
