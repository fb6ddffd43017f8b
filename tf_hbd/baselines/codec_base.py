"""What every neural baseline codec has in common: a SavedModel behind the
package's file format (`tf_hbd.baselines.container`).

A `NeuralCodec` turns a gray uint8 image (H, W) into the bytes of a file and
back; the bit rate of a file is ``8 * len(bytes) / (H * W)``, header
included. Subclasses (`E2ECodec`, `GoogCodec`) implement `compress` and
`decompress` with their SavedModel's functions.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc  # registers TFC's ops for SavedModels

from tf_hbd import errors
from tf_hbd.baselines import container

__all__ = ["NeuralCodec", "Untracked", "bpp_of", "save_module", "SIGNATURES"]

# The signatures of every baseline's SavedModel (what `NeuralCodec` calls).
SIGNATURES = ("compress", "decompress", "reconstruct")

del tfc


class Untracked:
  """Holds an object without making it a checkpoint/SavedModel dependency.

  The export modules read a Keras model's variables (tracked separately) but
  keep the Keras model itself out of the SavedModel: otherwise every layer's
  traced call functions are serialized too, which doubles the file and
  slows loading tenfold.
  """
  __slots__ = ("value",)

  def __init__(self, value):
    self.value = value


def save_module(module: tf.Module, path: str) -> str:
  """Writes a baseline's export module (with the `SIGNATURES` methods) as a
  SavedModel at `path`; returns `path`."""
  tf.saved_model.save(module, path, signatures={
      name: getattr(module, name) for name in SIGNATURES})
  return path


def bpp_of(data: bytes, shape) -> float:
  """Bits per pixel of a file of `len(data)` bytes for an image `shape`."""
  return 8.0 * len(data) / float(shape[0] * shape[1])


class NeuralCodec:
  """Base class: a named SavedModel that compresses gray images to files.

  Attributes:
    family: "e2e" or "goog".
    name: the model's name, written into every file it makes (a file is
      decoded only by the model of that name).
    path: the SavedModel folder.
  """

  family = None

  def __init__(self, path, name: str = None):
    self.path = os.fspath(path)
    self.name = name or os.path.basename(os.path.normpath(self.path))
    if not tf.saved_model.contains_saved_model(self.path):
      raise errors.HbdError(f"no SavedModel in {self.path!r}")
    self.module = tf.saved_model.load(self.path)

  def __repr__(self):
    return f"{type(self).__name__}(name={self.name!r}, path={self.path!r})"

  def compress(self, image) -> bytes:
    """Compresses a gray uint8 image (H, W) into a file's bytes."""
    raise NotImplementedError

  def decompress(self, data, name: str = "<bytes>") -> np.ndarray:
    """Decodes a file's bytes into a gray uint8 image (H, W)."""
    raise NotImplementedError

  def unpack(self, data, name: str = "<bytes>") -> container.Container:
    """Parses a file and checks that this model wrote it."""
    box = container.unpack(data, name)
    if box.model != self.name:
      raise errors.BitstreamError(
          f"{name}: written by model {box.model!r}, not {self.name!r}")
    return box
