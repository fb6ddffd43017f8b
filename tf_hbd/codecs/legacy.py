"""Legacy codecs (JPEG, JPEG 2000) at a quality setting or a target bit rate.

The hybrid decoder refines what a standard decoder produced, so the codec is
the first stage of the data flow (image -> codec -> patches -> model). Both
codecs run through Pillow and return the *real* bitstream; the achieved rate is
always ``bpp = 8 * len(bytes) / (H * W)``.

* ``jpeg``: libjpeg baseline, Huffman tables optimised (``optimize=True``),
  quality 1..100. For a target rate, a binary search finds the **highest
  quality whose bpp <= target**; by construction quality + 1 exceeds the target
  (unless quality is 100). If even quality 1 exceeds the target the quality-1
  stream is returned and `Encoded.met_target` is False.
* ``jp2``: OpenJPEG, irreversible 9/7 wavelet, one quality layer with
  ``quality_mode="rates"`` and ratio = 8 / target. The bitstream is a raw
  JPEG 2000 codestream (``.j2k``, no JP2 box wrapper: the boxes add ~85 bytes
  that carry no image data). OpenJPEG's rate control can overshoot, so the
  ratio is corrected by a search until the achieved bpp is at most the target
  (in practice it lands 0-2 % below it); `encode_once_at_bpp` skips the
  search (one encode at 8/target). A quality setting for jp2 is a
  compression ratio (``quality_mode="rates"``) or, with ``jp2_mode="dB"``, a
  PSNR target.

Images are 2-D uint8 arrays (8-bit gray, see `tf_hbd.codecs.images`).
"""

import dataclasses
import io
import math
from typing import Optional

import numpy as np
from PIL import Image

from tf_hbd import errors
from tf_hbd.codecs import images

__all__ = ["Encoded", "CODECS", "encode", "decode", "encode_at_bpp",
           "encode_at_quality", "encode_once_at_bpp", "roundtrip"]

CODECS = ("jpeg", "jp2")
_JP2_TOLERANCE = 0.0  # achieved bpp may exceed the target by this fraction


@dataclasses.dataclass(frozen=True)
class Encoded:
  """A real encoded bitstream and what produced it.

  Attributes:
    codec: "jpeg" or "jp2".
    data: the bytes (a JFIF file or a raw J2K codestream).
    shape: (H, W) of the image.
    setting: JPEG quality (int) or JP2 compression ratio (float).
    target_bpp: requested rate or None for a fixed setting.
  """
  codec: str
  data: bytes
  shape: tuple
  setting: float
  target_bpp: Optional[float] = None

  @property
  def bpp(self) -> float:
    return 8.0 * len(self.data) / float(self.shape[0] * self.shape[1])

  @property
  def met_target(self) -> bool:
    return self.target_bpp is None or self.bpp <= self.target_bpp * (
        1 + _JP2_TOLERANCE) + 1e-12


def _check_codec(codec):
  if codec not in CODECS:
    raise errors.CodecError(f"unknown codec {codec!r}; choose from {CODECS}")


def _jpeg_bytes(image: np.ndarray, quality: int) -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(
      buf, format="JPEG", quality=int(quality), optimize=True)
  return buf.getvalue()


def _jp2_resolutions(shape) -> int:
  # OpenJPEG needs every resolution level to be at least 1 pixel; keep the
  # library default of 6 levels where the image allows it.
  return max(1, min(6, int(math.floor(math.log2(min(shape)))) + 1))


def _jp2_bytes(image: np.ndarray, ratio: float, mode: str = "rates") -> bytes:
  buf = io.BytesIO()
  Image.fromarray(image).save(
      buf, format="JPEG2000", irreversible=True, quality_mode=mode,
      quality_layers=[float(ratio)], no_jp2=True,
      num_resolutions=_jp2_resolutions(image.shape))
  return buf.getvalue()


def encode_at_quality(image, codec: str, quality: float,
                      jp2_mode: str = "rates") -> Encoded:
  """Encodes at a fixed setting: JPEG quality 1..100, or JP2 ratio/dB."""
  _check_codec(codec)
  image = images.check_gray(image, errors.CodecError)
  if codec == "jpeg":
    q = int(quality)
    if not 1 <= q <= 100:
      raise errors.CodecError(f"JPEG quality must be in 1..100, got {quality}")
    data = _jpeg_bytes(image, q)
    return Encoded(codec, data, image.shape, q)
  if quality <= 0:
    raise errors.CodecError(f"JP2 setting must be positive, got {quality}")
  data = _jp2_bytes(image, quality, jp2_mode)
  return Encoded(codec, data, image.shape, float(quality))


def encode_at_bpp(image, codec: str, bpp: float) -> Encoded:
  """Encodes at the highest setting whose achieved rate is <= `bpp`."""
  _check_codec(codec)
  image = images.check_gray(image, errors.CodecError)
  if not bpp > 0 or not math.isfinite(bpp):
    raise errors.CodecError(f"target bpp must be a positive number, got {bpp}")
  pixels = float(image.shape[0] * image.shape[1])
  rate = lambda data: 8.0 * len(data) / pixels
  if codec == "jpeg":
    cache = {}

    def enc(q):
      if q not in cache:
        cache[q] = _jpeg_bytes(image, q)
      return cache[q]

    if rate(enc(1)) > bpp:
      return Encoded(codec, enc(1), image.shape, 1, bpp)
    if rate(enc(100)) <= bpp:
      return Encoded(codec, enc(100), image.shape, 100, bpp)
    lo, hi = 1, 100  # invariant: rate(lo) <= bpp < rate(hi)
    while hi - lo > 1:
      mid = (lo + hi) // 2
      if rate(enc(mid)) <= bpp:
        lo = mid
      else:
        hi = mid
    return Encoded(codec, enc(lo), image.shape, lo, bpp)

  # JPEG 2000: bracket the compression ratio, then bisect it (log scale) to
  # the smallest ratio (highest quality) whose achieved rate is <= bpp.
  cache = {}

  def enc2(r):
    if r not in cache:
      cache[r] = _jp2_bytes(image, r)
    return cache[r]

  ok = bad = None  # ok: rate <= bpp (larger ratio); bad: rate > bpp
  r = 8.0 / bpp
  for _ in range(30):
    achieved = rate(enc2(r))
    if achieved <= bpp:
      ok = r
      break
    bad = r
    r *= achieved / bpp * 1.005  # proportional correction of the overshoot
  if ok is None:  # not even the headers fit the target
    return Encoded(codec, enc2(r), image.shape, r, bpp)
  if bad is None:
    r = ok
    for _ in range(8):  # look for a bracketing lower ratio
      r /= 1.15
      if rate(enc2(r)) > bpp:
        bad = r
        break
      ok = r
  if bad is not None:
    for _ in range(14):
      if rate(enc2(ok)) >= 0.995 * bpp:
        break
      mid = math.sqrt(ok * bad)
      if rate(enc2(mid)) <= bpp:
        ok = mid
      else:
        bad = mid
  return Encoded(codec, enc2(ok), image.shape, ok, bpp)


def encode_once_at_bpp(image, codec: str, bpp: float) -> Encoded:
  """JPEG 2000 in one encode at compression ratio 8 / `bpp`, no search.

  OpenJPEG's rate control then decides the achieved rate, which lands near
  `bpp` but may exceed it (`Encoded.met_target` tells; `Encoded.bpp` is the
  real rate). One encode instead of `encode_at_bpp`'s ~9, for data where the
  rate is itself a random draw (training sets) and an exact target does not
  matter. It is the first step of `encode_at_bpp`'s search.

  Raises:
    CodecError: `codec` is not "jp2" (libjpeg has no rate control), or `bpp`
      is not a positive number.
  """
  _check_codec(codec)
  if codec != "jp2":
    raise errors.CodecError("a single encode at a target rate needs the jp2 "
                            f"codec (JPEG has no rate control), got {codec!r}")
  image = images.check_gray(image, errors.CodecError)
  if not bpp > 0 or not math.isfinite(bpp):
    raise errors.CodecError(f"target bpp must be a positive number, got {bpp}")
  ratio = 8.0 / bpp
  return Encoded(codec, _jp2_bytes(image, ratio), image.shape, ratio, bpp)


def encode(image, codec: str, *, quality: Optional[float] = None,
           bpp: Optional[float] = None) -> Encoded:
  """Encodes `image` with `codec` at either a `quality` or a target `bpp`."""
  if (quality is None) == (bpp is None):
    raise errors.CodecError("give exactly one of quality= or bpp=")
  if bpp is not None:
    return encode_at_bpp(image, codec, bpp)
  return encode_at_quality(image, codec, quality)


def decode(data, codec: Optional[str] = None, name: str = "<bytes>"):
  """Decodes a JPEG or JPEG 2000 bitstream to a uint8 gray array (H, W).

  Args:
    data: bytes, or an `Encoded`.
    codec: optional expected codec; a mismatch raises `BitstreamError`.
    name: used in error messages (e.g. the file name).

  Raises:
    BitstreamError: empty, truncated or corrupt data, or the wrong codec.
  """
  if isinstance(data, Encoded):
    codec = codec or data.codec
    data = data.data
  data = bytes(data)
  if not data:
    raise errors.BitstreamError(f"{name}: empty bitstream")
  fmt = sniff_codec(data)
  if fmt is None:
    raise errors.BitstreamError(f"{name}: not a JPEG or JPEG 2000 bitstream")
  if codec is not None and fmt != codec:
    raise errors.BitstreamError(f"{name}: expected {codec}, found {fmt} data")
  if fmt == "jpeg" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
    raise errors.BitstreamError(f"{name}: truncated JPEG (no end-of-image "
                                "marker)")
  try:
    with Image.open(io.BytesIO(data)) as img:
      img.load()
      if img.mode == "L":
        out = np.asarray(img, dtype=np.uint8)
      else:
        from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
        out = images.to_gray8(img)[0]
  except Image.DecompressionBombError as e:
    raise errors.BitstreamError(f"{name}: {e}") from e
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise errors.BitstreamError(f"{name}: corrupt {fmt} bitstream "
                                f"({type(e).__name__}: {e})") from e
  return np.ascontiguousarray(out)


def sniff_codec(data: bytes) -> Optional[str]:
  """'jpeg', 'jp2' or None from the first bytes of a file."""
  if data[:3] == b"\xff\xd8\xff":
    return "jpeg"
  if data[:4] == b"\xff\x4f\xff\x51":  # J2K codestream SOC+SIZ
    return "jp2"
  if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":  # JP2 box signature
    return "jp2"
  return None


def roundtrip(image, codec: str, *, quality=None, bpp=None):
  """Encodes then decodes; returns (decoded uint8 image, Encoded)."""
  enc = encode(image, codec, quality=quality, bpp=bpp)
  return decode(enc), enc
