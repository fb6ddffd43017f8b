"""The file format of the neural baselines' bitstreams.

A neural codec's payload (E2E: the range-coded latents; GOOG: the packed bits
of its iterations) cannot be decoded without knowing which model made it and
the image's shape, so every compressed file carries a small header. All
integers are big-endian::

  offset  size  field
  0       4     magic b"HBNC"
  4       1     format version (1)
  5       1     n = length of the model name (1..64)
  6       n     model name, ASCII (e.g. "e2e-l0.005", "goog")
  6+n     4     image height (pixels, >= 1)
  10+n    4     image width (pixels, >= 1)
  14+n    2     m = length of the codec parameters
  16+n    m     codec parameters (codec specific, e.g. GOOG's iteration count)
  16+n+m  4     p = payload length
  20+n+m  p     payload
  20+n+m+p 4    CRC-32 of all the bytes before it

The header costs 24 + n + m bytes and is counted in the bit rate: a file's
bpp is always ``8 * len(file) / (height * width)``. A truncated file, a file
with trailing bytes, a wrong magic number or version, or any flipped bit (the
CRC) raises `tf_hbd.errors.BitstreamError` before anything is decoded.
"""

import dataclasses
import struct
import zlib

from tf_hbd import errors

__all__ = ["MAGIC", "VERSION", "MAX_SIDE", "Container", "pack", "unpack",
           "header_bytes"]

MAGIC = b"HBNC"
VERSION = 1
MAX_SIDE = 1 << 16  # largest height or width a file may declare


@dataclasses.dataclass(frozen=True)
class Container:
  """The parsed contents of a neural-codec file.

  Attributes:
    model: name of the model that wrote it.
    shape: (height, width) of the image.
    params: codec-specific parameter bytes.
    payload: the compressed data.
  """
  model: str
  shape: tuple
  params: bytes
  payload: bytes


def header_bytes(model: str, params: bytes = b"") -> int:
  """Bytes a file spends on everything but the payload."""
  return 24 + len(model) + len(params)


def _check_model_name(model: str):
  if not isinstance(model, str) or not 1 <= len(model) <= 64:
    raise ValueError(f"model name must be 1..64 characters, got {model!r}")
  if not model.isascii() or not model.isprintable():
    raise ValueError(f"model name must be printable ASCII, got {model!r}")


def pack(model: str, shape, params: bytes, payload: bytes) -> bytes:
  """Builds a file from its parts (see the module docstring)."""
  _check_model_name(model)
  height, width = (int(s) for s in shape)
  if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
    raise errors.CodecError(f"image shape {shape} outside 1..{MAX_SIDE}")
  params, payload = bytes(params), bytes(payload)
  if len(params) > 0xFFFF or len(payload) > 0xFFFFFFFF:
    raise errors.CodecError("codec parameters or payload too long")
  body = b"".join([
      MAGIC, struct.pack(">BB", VERSION, len(model)), model.encode("ascii"),
      struct.pack(">IIH", height, width, len(params)), params,
      struct.pack(">I", len(payload)), payload])
  return body + struct.pack(">I", zlib.crc32(body))


def unpack(data: bytes, name: str = "<bytes>") -> Container:
  """Parses and checks a file.

  Args:
    data: the file's bytes.
    name: used in error messages (e.g. the file name).

  Returns:
    A `Container`.

  Raises:
    BitstreamError: the bytes are not a complete, intact file of this format.
  """
  try:
    data = bytes(data)
  except TypeError as e:
    raise errors.BitstreamError(f"{name}: not a byte string ({e})") from e
  fail = lambda why: errors.BitstreamError(f"{name}: {why}")
  if not data:
    raise fail("empty bitstream")
  if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
    raise fail("not a tf_hbd neural-codec bitstream (bad magic number)")
  if len(data) < 6:
    raise fail("truncated header")
  version, n = data[4], data[5]
  if version != VERSION:
    raise fail(f"unsupported format version {version} (this reader: "
               f"{VERSION})")
  pos = 6 + n
  if len(data) < pos + 10:
    raise fail("truncated header")
  if zlib.crc32(data[:-4]) != struct.unpack(">I", data[-4:])[0]:
    # Checked before the lengths are trusted, but reported with the most
    # useful cause: a length mismatch usually means a truncated file.
    reason = "CRC mismatch (corrupt data)"
    try:
      height, width, m = struct.unpack(">IIH", data[pos:pos + 10])
      end = pos + 10 + m + 4
      if len(data) >= end:
        (p,) = struct.unpack(">I", data[end - 4:end])
        if len(data) < end + p + 4:
          reason = (f"truncated: payload declares {p} bytes, "
                    f"{max(0, len(data) - end - 4)} present")
        elif len(data) > end + p + 4:
          reason = f"{len(data) - end - p - 4} unexpected trailing bytes"
      else:
        reason = "truncated header"
    except struct.error:
      pass
    raise fail(reason)
  try:
    model = data[6:pos].decode("ascii")
    _check_model_name(model)
  except (UnicodeDecodeError, ValueError) as e:
    raise fail(f"bad model name ({e})") from e
  height, width, m = struct.unpack(">IIH", data[pos:pos + 10])
  pos += 10
  if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
    raise fail(f"bad image shape {height}x{width}")
  if len(data) < pos + m + 4:
    raise fail("truncated header")
  params = data[pos:pos + m]
  pos += m
  (p,) = struct.unpack(">I", data[pos:pos + 4])
  pos += 4
  if len(data) != pos + p + 4:
    raise fail(f"payload length {p} does not match the file size")
  return Container(model=model, shape=(height, width), params=params,
                   payload=data[pos:pos + p])
