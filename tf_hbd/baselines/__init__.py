"""Neural baseline codecs GOOG and E2E, and the registry of shipped models.

The paper (Mali et al., section 4, Table 3) compares the hybrid decoder with
two neural codecs:

* GOOG: Toderici et al., "Full Resolution Image Compression with Recurrent
  Neural Networks", CVPR 2017 (`tf_hbd.baselines.goog`);
* E2E: Ballé, Laparra, Simoncelli, "End-to-end Optimized Image Compression",
  ICLR 2017 (`tf_hbd.baselines.e2e`).

Both are real codecs: `compress` returns the bytes of a file (format in
`tf_hbd.baselines.container`) and `decompress` reads them back; the bit rate
is ``8 * len(bytes) / pixels``, header included. Small models trained by
``hbd-train-baseline --family=e2e|goog`` (`tf_hbd.baselines.main`; also
``scripts/train_baseline.py``) ship in
``tf_hbd/baselines/pretrained/<name>/`` (a SavedModel and a MODEL.md with
the data, steps, time and rate-distortion point), so that evaluation runs
offline:

>>> codec = tf_hbd.baselines.load("goog")
>>> data = codec.compress(gray_uint8)
>>> image = tf_hbd.baselines.decompress(data)   # any shipped model's file
>>> decoded, data, bpp = tf_hbd.baselines.encode_at_bpp("e2e", gray, 0.37)

Model names are ``<family>`` or ``<family>-<detail>``; a family name in
`encode_at_bpp` picks among all shipped models of the family.

Models that are not shipped (a training campaign's exports or snapshots,
`tf_hbd.baselines.folders`) join the registry for a while with `use`:

>>> with tf_hbd.baselines.use({"e2e-l0.005": saved_model_dir},
...                           shipped=False):
...   tf_hbd.baselines.encode_at_bpp("e2e", gray, 0.37)  # picks among them
"""

import contextlib
import math
import os
from typing import Mapping, Optional

import numpy as np

from tf_hbd import errors

__all__ = ["PRETRAINED_DIR", "FAMILIES", "available", "family_of", "load",
           "load_path", "decompress", "model_of", "encode_at_bpp",
           "goog_iterations_for", "use"]

PRETRAINED_DIR = os.path.join(os.path.dirname(__file__), "pretrained")
FAMILIES = ("e2e", "goog")
_CACHE = {}  # SavedModel folder -> codec
# What `use` added: {name: SavedModel folder}, and whether the shipped
# models stay visible meanwhile.
_EXTRA = {}
_SHIPPED = [True]


def _codec_class(family):
  # Imported lazily: they pull in TensorFlow and TFC.
  if family == "e2e":
    from tf_hbd.baselines import e2e  # pylint: disable=g-import-not-at-top
    return e2e.E2ECodec
  if family == "goog":
    from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
    return goog.GoogCodec
  raise errors.HbdError(f"unknown neural codec family {family!r}; choose from "
                        f"{FAMILIES}")


def family_of(name: str) -> str:
  """The family ("e2e" or "goog") of a model name."""
  family = name.split("-", 1)[0]
  if family not in FAMILIES:
    raise errors.HbdError(f"model name {name!r} does not start with one of "
                          f"{FAMILIES}")
  return family


def _shipped() -> list:
  if not os.path.isdir(PRETRAINED_DIR):
    return []
  names = []
  for name in sorted(os.listdir(PRETRAINED_DIR)):
    path = os.path.join(PRETRAINED_DIR, name)
    if (os.path.isfile(os.path.join(path, "saved_model.pb")) and
        name.split("-", 1)[0] in FAMILIES):
      names.append(name)
  return names


def available(family: Optional[str] = None) -> list:
  """Sorted names of the shipped models (of one family, if given), and of
  the models added by `use` while it is in effect."""
  names = set(_shipped() if _SHIPPED[0] else ()) | set(_EXTRA)
  return sorted(n for n in names if family is None or family_of(n) == family)


@contextlib.contextmanager
def use(models: Mapping[str, str], shipped: bool = True):
  """Within: the registry also holds `models` (not shipped).

  `available`, `load`, `decompress` and `encode_at_bpp` (hence the
  evaluation's neural systems) then see them like shipped models; a name
  given here hides a shipped model of that name.

  Args:
    models: {model name: SavedModel folder}; the name (``e2e-...``,
      ``goog...``) is written into every file the model makes.
    shipped: keep the shipped models visible (False: only `models`).
  """
  for name, path in models.items():
    family_of(name)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      raise errors.HbdError(f"no SavedModel in {path!r} (model {name!r})")
  saved = dict(_EXTRA), _SHIPPED[0]
  _EXTRA.update(models)
  _SHIPPED[0] = shipped
  try:
    yield
  finally:
    _EXTRA.clear()
    _EXTRA.update(saved[0])
    _SHIPPED[0] = saved[1]


def load_path(path, family: str, name: Optional[str] = None):
  """Loads a codec from any SavedModel folder (e.g. a fresh training run)."""
  return _codec_class(family)(path, name)


def load(name: str):
  """The shipped model `name` as a codec (cached per process).

  Returns:
    An `E2ECodec` or `GoogCodec`: ``compress(gray uint8 (H, W)) -> bytes``,
    ``decompress(bytes) -> gray uint8 (H, W)``.

  Raises:
    HbdError: no shipped model of that name.
  """
  names = available()
  if name not in names:
    raise errors.HbdError(f"no shipped neural codec {name!r}; available: "
                          f"{names}")
  path = _EXTRA.get(name) or os.path.join(PRETRAINED_DIR, name)
  if (path, name) not in _CACHE:
    _CACHE[(path, name)] = load_path(path, family_of(name), name)
  return _CACHE[(path, name)]


def model_of(data, name: str = "<bytes>") -> str:
  """The name of the model that wrote a file (checks the file first)."""
  from tf_hbd.baselines import container  # pylint: disable=g-import-not-at-top
  return container.unpack(data, name).model


def decompress(data, name: str = "<bytes>") -> np.ndarray:
  """Decodes a file written by any shipped model into gray uint8 (H, W).

  Raises:
    BitstreamError: corrupt, truncated or not a neural-codec file, or
      written by a model that is not shipped.
  """
  model = model_of(data, name)
  if model not in available():
    raise errors.BitstreamError(f"{name}: written by model {model!r}, which "
                                f"is not shipped (available: {available()})")
  return load(model).decompress(data, name)


def goog_iterations_for(codec, shape, target_bpp: float) -> int:
  """Most GOOG iterations whose file (header included) is <= target_bpp.

  At least 1 (then the target is not met).
  """
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  best = 1
  for k in range(1, goog.MAX_ITERATIONS + 1):
    if codec.bpp(shape, k, len(codec.name)) <= target_bpp + 1e-12:
      best = k
  return best


def _goog_file_at_bpp(codec, image, target_bpp: float) -> bytes:
  """The file of the most GOOG iterations that is <= target_bpp (at least
  1): `goog_iterations_for` for raw bits; with entropy coding (sizes depend
  on the image) the real files of one 16-iteration compression."""
  from tf_hbd.baselines import codec_base  # pylint: disable=g-import-not-at-top
  if codec.bit_tables is None:
    return codec.compress(image, goog_iterations_for(codec, image.shape,
                                                     target_bpp))
  codes = codec.codes(image)
  best = codec.pack(image.shape, codes, 1)
  for k in range(2, codes.shape[0] + 1):
    data = codec.pack(image.shape, codes, k)
    if codec_base.bpp_of(data, image.shape) > target_bpp + 1e-12:
      break
    best = data
  return best


def encode_at_bpp(name: str, image, target_bpp: float):
  """Encodes at the largest rate that does not exceed `target_bpp`.

  * GOOG: the number of iterations (each adds 1/8 bpp);
  * E2E: among the shipped E2E models (or the one named) whose file does not
    exceed the target, the one with the highest PSNR on this image (ties:
    the smaller file). With a monotone family this is the largest file
    under the target; unlike "largest", it never picks a model that a
    cheaper one beats.

  When no setting meets the target, the smallest one is used (its bpp then
  exceeds the target; callers compare `bpp` with the target).

  Args:
    name: a family ("e2e", "goog") or a model name.
    image: gray uint8 (H, W).
    target_bpp: the rate budget, header included.

  Returns:
    (decoded uint8 (H, W), file bytes, bpp).
  """
  from tf_hbd.baselines import codec_base  # pylint: disable=g-import-not-at-top
  if not target_bpp > 0 or not math.isfinite(target_bpp):
    raise errors.CodecError(f"target bpp must be a positive number, got "
                            f"{target_bpp}")
  from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
  image = images.check_gray(image, errors.CodecError)
  family = family_of(name)
  if family == "goog":
    names = [name] if name in available() else available("goog")
    if not names or (name != "goog" and name not in names):
      raise errors.HbdError(f"no shipped GOOG model {name!r}")
    codec = load(names[0])
    data = _goog_file_at_bpp(codec, image, target_bpp)
  else:
    names = available("e2e") if name == "e2e" else [name]
    if not names or not set(names) <= set(available()):
      raise errors.HbdError(f"no shipped E2E model {name!r}")
    files = [load(n).compress(image) for n in names]
    sizes = [len(f) for f in files]
    fitting = [i for i, s in enumerate(sizes)
               if codec_base.bpp_of(files[i], image.shape) <= target_bpp]
    if len(fitting) > 1:
      # The best model under the target: highest PSNR on this image (what
      # its file decodes to, `reconstruct`), ties to the smaller file.
      from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
      quality = {i: metrics.psnr(image, load(names[i]).reconstruct(image))
                 for i in fitting}
      pick = max(fitting, key=lambda i: (quality[i], -sizes[i]))
    elif fitting:
      pick = fitting[0]
    else:
      pick = min(range(len(files)), key=lambda i: sizes[i])
    codec, data = load(names[pick]), files[pick]
  return (codec.decompress(data), data,
          codec_base.bpp_of(data, image.shape))
