"""Codec round trips kept on disk, shared by the runs of a study.

Every run of the study codes the same test images with its codec at the same
rates before refining them, and JPEG 2000's rate search costs seconds per
image and rate (``benchmarks/study_eval_profile.py``). `RoundTripCache` keeps
what `tf_hbd.codecs.legacy.roundtrip` returns, the decoded image and the
`Encoded` bitstream with its setting and target (hence the exact rate the
evaluation records), in one file per round trip, and codes only what is
missing.

An entry is addressed by its content: the key is the SHA-256 of a version
tag (this module's `VERSION`, the SHA-256 of `tf_hbd.codecs.legacy`'s source,
Pillow's, libjpeg's and OpenJPEG's versions), the codec, the setting or
target rate, and the image's dtype, shape and bytes. A new codec library or
a changed rate search simply misses.

Files are ``<directory>/<key[:2]>/<key>.npz`` (`tf_hbd.evaluation.disk_cache`:
written through a unique temporary file renamed over the entry, so
concurrent runs are safe) holding ``decoded`` (uint8 H x W), ``data`` (the
bitstream's bytes) and ``meta`` (JSON: key, tag, codec, shape, setting,
target bpp, SHA-256 of the bitstream and of the decoded image). An entry
that does not load, names another key, tag or codec, or whose arrays do not
match their shape and hashes, is coded again and rewritten.

The default directory is ``$TF_HBD_CODEC_CACHE``, else the metric cache's
sibling ``~/.cache/tf_hbd/codecs`` (``$XDG_CACHE_HOME`` honoured). Deleting
it is always safe.
"""

import hashlib
import inspect
import json
import os
import zipfile

import numpy as np

from tf_hbd.codecs import legacy
from tf_hbd.evaluation import disk_cache

__all__ = ["RoundTripCache", "default_directory", "ENV_VAR", "VERSION"]

ENV_VAR = "TF_HBD_CODEC_CACHE"
# Part of every key: bump it when what an entry holds changes meaning.
VERSION = 1


def default_directory() -> str:
  """``$TF_HBD_CODEC_CACHE``, else the user's cache folder + tf_hbd/codecs."""
  return disk_cache.default_directory("codecs", ENV_VAR)


def _tag() -> str:
  import PIL  # pylint: disable=g-import-not-at-top
  from PIL import features  # pylint: disable=g-import-not-at-top
  source = hashlib.sha256(inspect.getsource(legacy).encode()).hexdigest()
  return (f"tf_hbd codec cache v{VERSION}; legacy.py {source[:16]}; "
          f"Pillow {PIL.__version__}; libjpeg {features.version('jpg')}; "
          f"OpenJPEG {features.version('jpg_2000')}")


def _sha(array: np.ndarray) -> str:
  return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


class RoundTripCache:
  """`tf_hbd.codecs.legacy.roundtrip` backed by a directory.

  Attributes:
    directory: where the entries are.
    hits: round trips read from the cache.
    computed: round trips coded (and written).
    write_errors: entries that could not be written.
  """

  def __init__(self, directory: str):
    self.directory = os.fspath(directory)
    self.hits = 0
    self.computed = 0
    self.write_errors = 0
    self._tag = _tag()

  def key(self, image, codec: str, **setting) -> str:
    """The content key of a round trip (see the module docstring)."""
    x = np.ascontiguousarray(image)
    h = hashlib.sha256(self._tag.encode())
    h.update(json.dumps([codec, {k: float(v) for k, v in setting.items()}],
                        sort_keys=True).encode())
    h.update(f"|{x.dtype.str}{x.shape}|".encode())
    h.update(x.tobytes())
    return h.hexdigest()

  def path(self, key: str) -> str:
    return disk_cache.entry_path(self.directory, key, ".npz")

  def roundtrip(self, image, codec: str, *, quality=None, bpp=None):
    """(decoded uint8 image, `legacy.Encoded`), as `legacy.roundtrip`."""
    setting = {k: v for k, v in (("quality", quality), ("bpp", bpp))
               if v is not None}
    key = self.key(image, codec, **setting)
    got = self._read(key, codec)
    if got is not None:
      self.hits += 1
      return got
    self.computed += 1
    decoded, enc = legacy.roundtrip(image, codec, quality=quality, bpp=bpp)
    self._write(key, decoded, enc)
    return decoded, enc

  def _read(self, key: str, codec: str):
    """(decoded, Encoded) of a valid entry, else None."""
    try:
      with np.load(self.path(key), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        decoded, data = z["decoded"], z["data"]
      shape = tuple(meta["shape"])
      setting = meta["setting"]
      if (meta["key"] != key or meta["tag"] != self._tag
          or meta["codec"] != codec or decoded.dtype != np.uint8
          or data.dtype != np.uint8 or decoded.shape != shape
          or type(setting) not in (int, float)
          or type(meta["target_bpp"]) not in (type(None), float)
          or meta["data_sha256"] != _sha(data)
          or meta["decoded_sha256"] != _sha(decoded)):
        return None
      return decoded, legacy.Encoded(codec, data.tobytes(), shape, setting,
                                     meta["target_bpp"])
    except (OSError, ValueError, KeyError, TypeError, EOFError,
            zipfile.BadZipFile):
      return None

  def _write(self, key: str, decoded: np.ndarray, enc: legacy.Encoded):
    data = np.frombuffer(enc.data, np.uint8)
    meta = {"key": key, "tag": self._tag, "codec": enc.codec,
            "shape": list(enc.shape), "setting": enc.setting,
            "target_bpp": enc.target_bpp, "data_sha256": _sha(data),
            "decoded_sha256": _sha(decoded)}
    if not disk_cache.write_atomic(self.path(key), lambda f: np.savez(
        f, decoded=decoded, data=data, meta=np.array(json.dumps(meta))),
                                   binary=True):
      self.write_errors += 1
