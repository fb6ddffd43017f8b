"""Whole-image refinement: decoded image -> blocks -> HBD -> refined image.

``refine(decoded, model)`` runs the trained decoder over every d x d patch of
a decoded (JPEG / JPEG 2000) image and reassembles the K-th reconstructions
(section 2: inference uses the last step) into a uint8 image of the input
size. Patching, blocks and reassembly are `tf_hbd.codecs.patches`:

1. `patches.to_patches` cuts the image into an R x C grid (edge-replication
   pad to a multiple of d);
2. `patches.block_indices` gives, for every target, the grid coordinates of
   its 9 block patches and its position under the model's boundary strategy
   (``model.boundary``: "paper" or "replicate");
3. the grid is processed in **row bands** of ``max(1, batch_size // C)``
   patch rows, each band in batches of at most ``batch_size`` targets; the
   blocks of a batch are gathered from the grid only when the batch runs;
4. each batch goes through one compiled function (uint8 -> [0, 1] ->
   ``model.predict_last`` -> round and clip to uint8), and its patches are
   written into a uint8 array of all targets;
5. `patches.assemble` crops the grid back to the input size.

Memory is bounded by the batch: the image and its grid (uint8), the output
grid (uint8), the block indices (N x 9 ints for each of rows and cols) and one
batch of blocks (``batch_size * 9 * d * d`` floats plus the model's
activations, about ``batch_size * units * 8`` floats). A 10000 x 10000 image
with d = 8 needs well under 2 GB with the default batch size.
"""

import weakref

import numpy as np
import tensorflow as tf

from tf_hbd.inference import guards
from tf_hbd.codecs import images
from tf_hbd.codecs import patches as patches_lib

__all__ = ["refine", "refine_blocks", "predictor"]

_PREDICTORS = weakref.WeakKeyDictionary()


def predictor(model, K=None, guard=True):
  """A compiled ``(context uint8 (B, 9, d, d), position (B,), setting (S,))
  -> uint8 (B, d, d)`` for `model` at K steps (cached per model and K).

  ``setting`` is the image's codec setting (`tf_hbd.codecs.codec_setting`), shared
  by every block; a (0,) vector for models without one. ``guard``: keep the
  decoded patch where the block is constant (`tf_hbd.inference.guards`).
  """
  K = int(model.K if K is None else K)
  if K < 1:
    raise ValueError(f"K must be >= 1, got {K}")
  cache = _PREDICTORS.setdefault(model, {})
  if (K, guard) in cache:
    return cache[(K, guard)]
  d = int(model.patch_size)
  dtype = model.compute_dtype
  model_ref = weakref.ref(model)  # the cache must not keep the model alive

  size = int(getattr(model, "setting_size", 0))

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec([None, 9, d, d], tf.uint8),
      tf.TensorSpec([None], tf.int32),
      tf.TensorSpec([size], tf.float32)])
  def run(context, position, setting):
    ctx = tf.cast(context, dtype) / tf.constant(255.0, dtype)
    setting = (tf.tile(setting[None], [tf.shape(ctx)[0], 1]) if size
               else None)
    p = model_ref().predict_last(ctx, position, K, setting=setting)
    if guard:
      p = guards.keep_flat_context(ctx, position, p)
    p = tf.clip_by_value(tf.round(p * 255.0), 0.0, 255.0)
    return tf.reshape(tf.cast(p, tf.uint8), [-1, d, d])

  cache[(K, guard)] = run
  return run


def _setting_vector(model, setting):
  size = int(getattr(model, "setting_size", 0))
  if not size:
    return np.zeros([0], np.float32)
  if setting is None:
    raise ValueError(f"this model takes the codec setting of the image "
                     f"({size} values, tf_hbd.codecs.codec_setting.features)")
  setting = np.asarray(setting, np.float32).reshape(-1)
  if setting.size != size:
    raise ValueError(f"setting has {setting.size} values, the model takes "
                     f"{size}")
  return setting


def refine_blocks(grid, model, K=None, batch_size=4096, strategy=None,
                  setting=None, guard=True):
  """Refines every patch of a `patches.PatchGrid`; returns (N, d, d) uint8.

  Targets are in row-major grid order (as `patches.assemble` expects).
  `setting`: the image's codec setting (models with ``setting_size``).
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  strategy = strategy or model.boundary
  d = grid.patch_size
  if d != model.patch_size:
    raise ValueError(f"grid has {d}x{d} patches, model expects "
                     f"{model.patch_size}")
  rows, cols, position, _ = patches_lib.block_indices(grid.grid_shape,
                                                      strategy)
  r, c = grid.grid_shape
  out = np.empty((r * c, d, d), np.uint8)
  run = predictor(model, K, guard)
  setting = _setting_vector(model, setting)
  band_rows = max(1, batch_size // c)
  for r0 in range(0, r, band_rows):
    band_end = min(r, r0 + band_rows) * c
    for start in range(r0 * c, band_end, batch_size):
      stop = min(band_end, start + batch_size)
      context = grid.patches[rows[start:stop], cols[start:stop]]
      out[start:stop] = run(context, position[start:stop], setting).numpy()
  return out


def refine(decoded, model, K=None, batch_size=4096, strategy=None,
           setting=None, guard=True):
  """Refines a decoded image with a trained HBD.

  Args:
    decoded: uint8 (H, W) image as the standard decoder produced it.
    model: a `HybridDecoder` / `SiblingDecoder` (or one loaded with
      `tf_hbd.model.decoder.load_decoder`); its ``patch_size`` and ``boundary``
      configure the patching.
    K: refinement steps at inference (default ``model.K``).
    batch_size: blocks per model call (bounds memory, see module docstring).
    strategy: override the model's boundary strategy.
    setting: the codec setting of the image (`tf_hbd.codecs.codec_setting`), for
      models built with ``setting_size`` > 0.
    guard: keep the decoded patch where the block is constant
      (`tf_hbd.inference.guards.keep_flat_context`).

  Returns:
    uint8 (H, W), the refined image.
  """
  decoded = images.check_gray(decoded)
  grid = patches_lib.to_patches(decoded, model.patch_size)
  refined = refine_blocks(grid, model, K, batch_size, strategy, setting,
                          guard)
  return patches_lib.assemble(refined, grid.grid_shape, grid.image_shape)
