"""Compressing image files to neural-codec files and back (the CLI's logic).

``compress_file`` reads any image (`tf_hbd.codecs.images.load_image`: colour becomes
8-bit gray) and writes the bytes of a shipped GOOG or E2E model;
``decompress_file`` reads such a file and writes the decoded gray PNG. The
model that wrote a file is named in its header, so decompression needs no
option.
"""

import os
from typing import Optional

from PIL import Image

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.evaluation import metrics
from tf_hbd.baselines import codec_base

__all__ = ["compress_file", "decompress_file"]


def compress_file(in_path, out_path, codec: str = "e2e",
                  bpp: Optional[float] = None,
                  iterations: Optional[int] = None) -> dict:
  """Compresses an image file with a shipped neural codec.

  Args:
    in_path: the image (any format Pillow reads).
    out_path: the file to write.
    codec: a family ("e2e", "goog") or a shipped model name.
    bpp: target rate (the largest setting that does not exceed it); or
    iterations: GOOG only, a fixed number of iterations (1..16).
      With neither, GOOG uses 16 iterations; for E2E a model name is needed.

  Returns:
    dict: ``model``, ``bytes``, ``bpp``, ``shape``, ``psnr`` (of the decoded
    image against the gray input).
  """
  gray = images.load_image(in_path).gray
  if bpp is not None and iterations is not None:
    raise errors.CodecError("give at most one of bpp and iterations")
  if bpp is not None:
    decoded, data, rate = baselines.encode_at_bpp(codec, gray, bpp)
  else:
    family = baselines.family_of(codec)
    if iterations is not None and family != "goog":
      raise errors.CodecError("iterations apply to GOOG models only")
    names = [codec] if codec in baselines.available() else []
    if not names and family == "goog":
      names = baselines.available("goog")
    if not names:
      raise errors.HbdError(
          f"give --bpp, or a shipped model name instead of {codec!r} "
          f"(available: {baselines.available()})")
    model = baselines.load(names[0])
    data = (model.compress(gray, iterations or 16) if family == "goog" else
            model.compress(gray))
    decoded = model.decompress(data)
    rate = codec_base.bpp_of(data, gray.shape)
  out_path = os.fspath(out_path)
  with open(out_path, "wb") as f:
    f.write(data)
  return {"model": baselines.model_of(data), "bytes": len(data), "bpp": rate,
          "shape": gray.shape, "psnr": metrics.psnr(gray, decoded)}


def decompress_file(in_path, out_path) -> dict:
  """Decodes a neural-codec file and writes the gray image (PNG or other
  format chosen by the extension).

  Returns:
    dict: ``model``, ``shape``.

  Raises:
    BitstreamError: the file is missing, or not an intact neural-codec file
      of a shipped model.
  """
  in_path = os.fspath(in_path)
  if not os.path.isfile(in_path):
    raise errors.BitstreamError(f"{in_path}: no such file")
  with open(in_path, "rb") as f:
    data = f.read()
  image = baselines.decompress(data, in_path)
  Image.fromarray(image, mode="L").save(os.fspath(out_path))
  return {"model": baselines.model_of(data, in_path), "shape": image.shape}
