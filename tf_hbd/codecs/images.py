"""Reading images into tf_hbd's working representation: 8-bit grayscale.

The study works on single-channel images (paper, section 3.1). Conventions,
used everywhere in the package:

* **Colour to gray**: ITU-R BT.601 luma, ``Y = 0.299 R + 0.587 G + 0.114 B``
  rounded to the nearest integer (Pillow's ``convert("L")``). RGBA/LA images
  drop alpha (no compositing); palette images are expanded to RGB first.
* **16-bit gray** (PNG/PGM/TIFF, e.g. the imagecompression.info 16-bit sets):
  mapped linearly to 8 bits by ``round(v / 257)`` (65535 -> 255, exact for
  values that are multiples of 257). The 16-bit array is kept in
  `LoadedImage.original` for callers that want it; all metrics are computed on
  the 8-bit working image (see `tf_hbd.evaluation.metrics`).
* **Decompression bombs**: Pillow's guard stays on; an oversize image raises
  `ImageReadError` naming the file.
"""

import dataclasses
import io
import os
from typing import Optional, Union

import numpy as np
from PIL import Image

from tf_hbd import errors

__all__ = [
    "LoadedImage",
    "load_image",
    "pillow_reason",
    "decode_image_bytes",
    "to_gray8",
    "list_images",
    "IMAGE_EXTENSIONS",
    "maybe_resize_max",
    "check_gray",
    "check_gray_in_graph",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm",
                    ".tif", ".tiff", ".jp2", ".j2k", ".webp", ".gif")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


@dataclasses.dataclass
class LoadedImage:
  """An image in the working representation.

  Attributes:
    gray: uint8 array (H, W), the 8-bit grayscale working image.
    bit_depth: 8 or 16, the depth of the source samples.
    original: the source samples as read (uint8 or uint16, (H, W) or (H, W, C)).
    path: where it came from (or "<bytes>").
    mode: Pillow mode of the source.
  """
  gray: np.ndarray
  bit_depth: int
  original: np.ndarray
  path: str
  mode: str


def to_gray8(img: Image.Image):
  """Converts a Pillow image to (gray uint8, bit depth, original array)."""
  mode = img.mode
  if mode in _SIXTEEN_BIT_MODES:
    arr = np.asarray(img)
    arr16 = np.clip(arr.astype(np.int64), 0, 65535).astype(np.uint16)
    gray = np.floor(arr16.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    return gray, 16, arr16
  if mode == "F":
    raise ValueError("floating-point images are not supported")
  if mode in ("1", "L"):
    gray = np.asarray(img.convert("L"), dtype=np.uint8)
    return gray, 8, gray
  if mode == "P":
    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
  original = np.asarray(img)
  if img.mode in ("RGBA", "LA", "PA"):
    img = img.convert("RGB" if img.mode != "LA" else "L")
  gray = np.asarray(img.convert("L"), dtype=np.uint8)
  return gray, 8, original


def _open(fp, name):
  try:
    with Image.open(fp) as img:
      img.load()
      if img.size[0] == 0 or img.size[1] == 0:
        raise errors.ImageReadError(name, "image has zero pixels")
      gray, depth, original = to_gray8(img)
      mode = img.mode
  except errors.ImageReadError:
    raise
  except (OSError, SyntaxError, ValueError, EOFError, MemoryError,
          Image.DecompressionBombError) as e:
    raise errors.ImageReadError(name, pillow_reason(e)) from e
  if gray.size == 0:
    raise errors.ImageReadError(name, "image has zero pixels")
  return LoadedImage(gray=np.ascontiguousarray(gray), bit_depth=depth,
                     original=original, path=str(name), mode=mode)


def decode_image_bytes(data: bytes, name: str = "<bytes>") -> LoadedImage:
  """Decodes an image file held in memory (any format Pillow reads)."""
  if not data:
    raise errors.ImageReadError(name, "empty input (0 bytes)")
  return _open(io.BytesIO(data), name)


def pillow_reason(e: BaseException) -> str:
  """Why Pillow could not open or decode a file, for a one-line message."""
  if isinstance(e, Image.DecompressionBombError):
    return f"refused by Pillow's decompression-bomb guard ({e})"
  if isinstance(e, Image.UnidentifiedImageError):  # its text names a BytesIO
    return "not an image file of a format Pillow reads"
  return f"{type(e).__name__}: {e}"


def load_image(path: Union[str, os.PathLike]) -> LoadedImage:
  """Reads an image file into the working representation.

  Args:
    path: a file path (local or any `tf.io.gfile` path).

  Returns:
    A `LoadedImage`.

  Raises:
    ImageReadError: missing, empty, truncated, corrupt or non-image file.
  """
  path = os.fspath(path)
  data = _read_bytes(path)
  return decode_image_bytes(data, path)


def _read_bytes(path: str) -> bytes:
  if "://" in path:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not tf.io.gfile.exists(path):
      raise errors.ImageReadError(path, "no such file")
    with tf.io.gfile.GFile(path, "rb") as f:
      return f.read()
  if not os.path.exists(path):
    raise errors.ImageReadError(path, "no such file")
  if os.path.isdir(path):
    raise errors.ImageReadError(path, "is a directory")
  with open(path, "rb") as f:
    return f.read()


def list_images(folder_or_glob: str, recursive: bool = True) -> list:
  """Sorted list of image files in a folder (recursively) or matching a glob.

  Raises:
    ImageReadError: the folder does not exist or holds no image.
  """
  import glob as _glob  # pylint: disable=g-import-not-at-top
  spec = os.fspath(folder_or_glob)
  if os.path.isdir(spec):
    pattern = os.path.join(spec, "**", "*") if recursive else os.path.join(
        spec, "*")
    files = _glob.glob(pattern, recursive=recursive)
  elif os.path.isfile(spec):
    files = [spec]
  else:
    files = _glob.glob(spec, recursive=True)
    if not files and not any(c in spec for c in "*?["):
      raise errors.ImageReadError(spec, "no such file or folder")
  files = sorted(f for f in files
                 if os.path.isfile(f) and f.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise errors.ImageReadError(spec, "no image files found (extensions: "
                                + ", ".join(IMAGE_EXTENSIONS) + ")")
  return files


def maybe_resize_max(gray: np.ndarray, size: Optional[int]) -> np.ndarray:
  """Downsamples (Lanczos) so that the longer side is at most `size`."""
  if not size or max(gray.shape) <= size:
    return gray
  h, w = gray.shape
  scale = size / max(h, w)
  new = (max(1, round(w * scale)), max(1, round(h * scale)))
  return np.asarray(Image.fromarray(gray).resize(new, Image.LANCZOS))


def check_gray(image, error=errors.HbdError) -> np.ndarray:
  """The one check of tf_hbd's working representation: gray uint8 (H, W).

  Args:
    image: array-like, (H, W) or (H, W, 1).
    error: the `errors.HbdError` subclass to raise (e.g. `errors.CodecError`
      in the codecs).

  Returns:
    A C-contiguous uint8 (H, W) array (the input itself when it already is).

  Raises:
    error: not 2-D gray, empty, or not uint8.
  """
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if image.ndim != 2 or image.size == 0:
    raise error(f"expected a non-empty 2-D gray image (H, W) or (H, W, 1), "
                f"got shape {image.shape}")
  if image.dtype != np.uint8:
    raise error(f"expected uint8 pixels, got {image.dtype}")
  return np.ascontiguousarray(image)


def check_gray_in_graph(image):
  """`check_gray`'s twin for graph code: a uint8 tensor (H, W) or (H, W, 1)
  -> (H, W), checked when the graph runs.

  Imports TensorFlow when called (the rest of this module does not need it).

  Raises:
    TypeError: at trace time, when the pixels are not uint8.
    tf.errors.InvalidArgumentError: when run, on another shape or an empty
      image.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  image = tf.convert_to_tensor(image)
  if image.dtype != tf.uint8:
    raise TypeError(f"expected uint8 pixels, got {image.dtype.name}")
  shape = tf.shape(image)
  rank = tf.rank(image)
  gray = tf.logical_or(
      tf.equal(rank, 2),
      tf.logical_and(tf.equal(rank, 3), tf.equal(shape[-1], 1)))
  check = tf.debugging.Assert(
      tf.logical_and(gray, tf.reduce_prod(shape[:2]) > 0),
      ["expected a non-empty 2-D gray image (H, W) or (H, W, 1), got shape",
       shape])
  with tf.control_dependencies([check]):
    return tf.reshape(image, shape[:2])
