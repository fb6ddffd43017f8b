"""The codec setting a decoder is told: what the bitstream says about its noise.

One decoder serves every rate of its codec, so it is told how coarsely the
image was coded, read from the bitstream itself (never from the original):

* JPEG: the luma quantization table (table 0: 64 steps, in the file's
  zig-zag order, read from the first DQT segment that defines it) as
  ``log(q) / log(255)`` -- 0 for step 1 (near lossless), 1 for step 255.
  Any encoder's table works, not only the IJG quality scaling.
  `tf_hbd.inference.graph_refine.jpeg_setting_in_graph` reads it the same way in a
  TF graph.
* JPEG 2000: the achieved rate, ``log2(bpp) / 4`` (one value; the
  codestream's size over the pixel count).

`features(data, codec)` gives the vector for one bitstream; decoders built
with ``setting_size=SIZE[codec]`` take it as their ``setting`` input
(`tf_hbd.model.decoder.HybridDecoder`).
"""

import math

import numpy as np

from tf_hbd import errors

__all__ = ["SIZE", "features", "for_model", "jpeg_luma_table", "features_from_table",
           "features_from_bpp", "ZIGZAG", "transpose_setting", "TakesSetting"]

SIZE = {"jpeg": 64, "jp2": 1}

# Natural (row-major) index of the i-th coefficient in JPEG zig-zag order.
ZIGZAG = np.array([
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33,
    40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43,
    36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
    60, 61, 54, 47, 55, 62, 63], np.int32)


def transpose_setting(setting) -> np.ndarray:
  """The JPEG setting (64,) of the transposed image (its table transposed)."""
  setting = np.asarray(setting, np.float32).reshape(64)
  natural = np.zeros(64, np.float32)
  natural[ZIGZAG] = setting
  return natural.reshape(8, 8).T.reshape(64)[ZIGZAG]


def jpeg_luma_table(data: bytes, name: str = "<bytes>") -> np.ndarray:
  """Quantization table 0 of a JPEG file, (64,) int, in file order.

  Walks the marker segments from SOI to the first scan; only the file's own
  segments are read (an EXIF thumbnail's tables sit inside APP1 and are
  skipped with it).

  Raises:
    BitstreamError: not a JPEG, a damaged header, or no table 0.
  """
  data = bytes(data)
  if data[:2] != b"\xff\xd8":
    raise errors.BitstreamError(f"{name}: not a JPEG file")
  pos = 2
  while pos + 4 <= len(data):
    if data[pos] != 0xFF:
      break
    marker = data[pos + 1]
    if marker == 0xFF:  # fill byte
      pos += 1
      continue
    if marker == 0xDA:  # start of scan: no table 0 before it
      break
    length = int.from_bytes(data[pos + 2:pos + 4], "big")
    seg = data[pos + 4:pos + 2 + length]
    if marker == 0xDB:
      i = 0
      while i < len(seg):
        precision, table_id = seg[i] >> 4, seg[i] & 15
        size = 128 if precision else 64
        raw = seg[i + 1:i + 1 + size]
        if len(raw) < size:
          break
        if table_id == 0:
          table = (np.frombuffer(raw, ">u2") if precision
                   else np.frombuffer(raw, np.uint8)).astype(np.int64)
          if table.min() < 1:
            break
          return table
        i += 1 + size
    pos += 2 + length
  raise errors.BitstreamError(f"{name}: no JPEG luma quantization table "
                              "(damaged header?)")


def features_from_table(table) -> np.ndarray:
  """(64,) float32 setting of a JPEG luma quantization table."""
  table = np.clip(np.asarray(table, np.float64).reshape(64), 1, 255)
  return (np.log(table) / math.log(255.0)).astype(np.float32)


def features_from_bpp(bpp: float) -> np.ndarray:
  """(1,) float32 setting of a JPEG 2000 codestream at `bpp`."""
  if not bpp > 0:
    raise ValueError(f"bpp must be > 0, got {bpp}")
  return np.array([math.log2(bpp) / 4.0], np.float32)


def features(data: bytes, codec: str, shape=None,
             name: str = "<bytes>") -> np.ndarray:
  """The setting vector of one bitstream.

  Args:
    data: the file's bytes (JPEG) or codestream (JPEG 2000).
    codec: "jpeg" or "jp2".
    shape: (H, W) of the image (JPEG 2000 only: for the rate).
    name: for error messages.
  """
  if codec == "jpeg":
    return features_from_table(jpeg_luma_table(data, name))
  if codec == "jp2":
    if shape is None:
      raise ValueError("JPEG 2000 settings need the image shape")
    return features_from_bpp(8.0 * len(data) / float(shape[0] * shape[1]))
  raise ValueError(f"unknown codec {codec!r}")


def for_model(setting, source, codec: str, size: int, shape,
              model: str = "<model>"):
  """The setting vector a model of `size` inputs gets for one image.

  Args:
    setting: the vector, or None to read it from `source`.
    source: path of the JPEG / JPEG 2000 file the image was decoded from.
    codec: the model's codec.
    size: the model's setting size (0: it takes none; returns None).
    shape: the decoded image's (H, W).
    model: the model's name for messages.

  Returns:
    float32 (size,) or None.
  """
  if not size:
    return None
  if setting is None:
    if source is None:
      raise errors.HbdError(f"model {model} takes the codec setting of the "
                            "image: pass setting= or source=")
    with open(source, "rb") as f:
      setting = features(f.read(), codec, shape, name=source)
  setting = np.asarray(setting, np.float32).reshape(-1)
  if setting.size != size:
    raise errors.HbdError(f"setting has {setting.size} values, model {model} "
                          f"takes {size}")
  return setting


class TakesSetting:
  """What a loaded export knows of its setting input, from its metadata.

  A mixin of the runtimes (`tf_hbd.inference.serving.ServedModel`,
  `tf_hbd.inference.numpy_serving.NumpyModel`): they set ``metadata`` (the
  export's ``hbd_model.json``) and ``path``.
  """
  metadata: dict
  path: str

  @property
  def codec(self) -> str:
    return self.metadata["codec"]

  @property
  def setting_size(self) -> int:
    """Length of the codec setting the model takes (0: none)."""
    return int(self.metadata.get("setting_size", 0))

  def setting_for(self, setting, source, image_shape):
    """`for_model` for this model: float32 (setting_size,) or None."""
    return for_model(setting, source, self.codec, self.setting_size,
                     image_shape, self.path)
