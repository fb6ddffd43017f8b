"""Small helpers shared by the tests of the learning algorithms."""

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.codecs import patches
from tf_hbd.data import sample_images

__all__ = ["random_batch", "image_batch", "small_decoder", "by_variable",
           "rel_error", "Recorder"]


def random_batch(batch_size=3, d=2, dtype="float64", seed=0):
  """A random batch with every position represented (values in [0, 1])."""
  rng = np.random.default_rng(seed)
  return {
      "context": tf.constant(rng.uniform(size=(batch_size, 9, d, d)), dtype),
      "position": tf.constant(np.arange(batch_size) * 4 % 9, tf.int32),
      "target": tf.constant(rng.uniform(size=(batch_size, d, d)), dtype),
  }


def image_batch(size=64, d=8, quality=10, name="camera", offset=(96, 160)):
  """All blocks of a real photo crop compressed with JPEG (float32 batch)."""
  img = sample_images.load_sample(name)
  r, c = offset
  crop = np.ascontiguousarray(img[r:r + size, c:c + size])
  decoded, _ = codecs.roundtrip(crop, "jpeg", quality=quality)
  blocks = patches.blocks_from_image(decoded, d, "paper", original=crop)
  return {"context": tf.constant(blocks.context / 255.0, tf.float32),
          "position": tf.constant(blocks.position, tf.int32),
          "target": tf.constant(blocks.target / 255.0, tf.float32)}


def small_decoder(cell="lstm", units=5, d=2, K=3, dtype="float64", seed=3,
                  init_scale=0.5, **kwargs):
  """A tiny decoder with weights large enough for non-trivial dynamics."""
  return decoder_lib.build_decoder(cell, units=units, patch_size=d, K=K,
                                   dtype=dtype, seed=seed,
                                   init_scale=init_scale, **kwargs)


def by_variable(variables, grads):
  """{variable ref: gradient as NumPy}."""
  return {v.ref(): np.asarray(g) for v, g in zip(variables, grads)}


def rel_error(expected: dict, actual: dict):
  """Max over variables of |a - e| / max(|e|, tiny) (max-norms)."""
  if set(expected) != set(actual):
    raise ValueError("the two gradients cover different variables")
  worst = 0.0
  for k, e in expected.items():
    scale = max(float(np.max(np.abs(e))), 1e-30)
    worst = max(worst, float(np.max(np.abs(actual[k] - e))) / scale)
  return worst


class Recorder:
  """An ``apply_gradients`` that records what it is given (no update)."""

  def __init__(self):
    self.calls = []

  def __call__(self, grads):
    self.calls.append([np.asarray(g) for g in grads])
