"""Post-training calibration of a residual decoder's correction strength.

A residual decoder outputs ``p = q_target + U s_K + c``; the correction
``delta = U s_K + c`` is linear in (U, c). Scaling both by gamma scales the
correction exactly, so the gamma that minimises the squared error on
validation blocks has the closed form

    gamma* = sum(delta * r) / sum(delta * delta),   r = p_original - q_target.

gamma* < 1 shrinks an over-confident correction towards the codec's output
(gamma = 0 is the codec itself), so calibrated decoders do not do worse than
the codec on data like the validation set. This is fitted on *validation*
images (never the test set) and stored in the export's metadata.
"""

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import patches

__all__ = ["fit_correction_scale", "apply_correction_scale"]


def fit_correction_scale(model, images, codec, *, bpp=None, quality=None,
                         batch_size=2048, max_blocks=200_000):
  """gamma* over all blocks of `images` (gray uint8 arrays) at a setting."""
  if not getattr(model, "residual", False):
    raise ValueError("correction calibration needs a residual decoder")
  num = den = 0.0
  used = 0
  for img in images:
    decoded, _ = codecs.roundtrip(img, codec, bpp=bpp, quality=quality)
    blocks = patches.blocks_from_image(decoded, model.patch_size,
                                       model.boundary, original=img)
    n = min(len(blocks), max_blocks - used)
    for start in range(0, n, batch_size):
      sl = slice(start, min(n, start + batch_size))
      ctx = tf.constant(blocks.context[sl], model.compute_dtype) / 255.0
      pos = tf.constant(blocks.position[sl], tf.int32)
      out = model.predict_last(ctx, pos).numpy().astype(np.float64)
      own = blocks.own_target[sl].reshape(len(out), -1) / 255.0
      ref = blocks.target[sl].reshape(len(out), -1) / 255.0
      delta, r = out - own, ref - own
      num += float(np.sum(delta * r))
      den += float(np.sum(delta * delta))
    used += n
    if used >= max_blocks:
      break
  return num / den if den > 0 else 0.0


def apply_correction_scale(model, gamma):
  """Scales the readout (U, c) of a residual `HybridDecoder` by gamma."""
  if type(model).__name__ != "HybridDecoder":
    raise ValueError(f"calibration supports HybridDecoder, not "
                     f"{type(model).__name__}")
  for v in model.readout_variables:
    v.assign(v * tf.cast(gamma, v.dtype))
  return model
