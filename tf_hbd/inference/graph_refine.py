"""Whole-image refinement entirely in the TF graph (for SavedModel serving).

The same geometry as `tf_hbd.codecs.patches` (edge-replication padding, d x d grid,
3 x 3 blocks with the ``paper`` or ``replicate`` boundary rule, row-major
block members, target position 0..8), written with TF ops so that an exported
signature needs no Python code of ours. `tf_hbd.inference.graph_refine_test` checks it
against the NumPy implementation index for index.

Memory: the padded image and the output live in memory as float32
(8 bytes/pixel together); blocks are formed and run through the model
`batch_size` targets at a time inside a `tf.while_loop`, so the block tensors
are bounded by ``batch_size * 9 * d * d`` floats whatever the image size.
Images above `max_pixels` are refused with an InvalidArgumentError that gives
the limit.
"""

import tensorflow as tf

from tf_hbd.codecs import images

__all__ = ["pad_to_grid", "block_index_tensors", "refine_in_graph",
           "refine_steps_in_graph",
           "jpeg_setting_in_graph", "DEFAULT_MAX_PIXELS"]

DEFAULT_MAX_PIXELS = 120_000_000  # ~ 11000 x 11000; about 1 GB of float32


def pad_to_grid(image, d):
  """(H, W) float -> (R, C, d, d) patch grid with edge replication."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  r = (h + d - 1) // d
  c = (w + d - 1) // d
  rows = tf.minimum(tf.range(r * d), h - 1)
  cols = tf.minimum(tf.range(c * d), w - 1)
  padded = tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)
  grid = tf.transpose(tf.reshape(padded, [r, d, c, d]), [0, 2, 1, 3])
  return grid, r, c


def _centres(n, index, strategy):
  if strategy == "replicate":
    return index
  return tf.where(n >= 3, tf.clip_by_value(index, 1, tf.maximum(n - 2, 1)),
                  index)


def block_index_tensors(r, c, strategy):
  """TF version of `tf_hbd.codecs.patches.block_indices` (rows, cols, position)."""
  if strategy not in ("paper", "replicate"):
    raise ValueError(f"unknown boundary strategy {strategy!r}")
  n = r * c
  flat = tf.range(n)
  ti, tj = flat // c, flat % c
  ci, cj = _centres(r, ti, strategy), _centres(c, tj, strategy)
  off = tf.constant([-1, 0, 1], tf.int32)
  di = tf.repeat(off, 3)
  dj = tf.tile(off, [3])
  rows = tf.clip_by_value(ci[:, None] + di[None, :], 0, r - 1)
  cols = tf.clip_by_value(cj[:, None] + dj[None, :], 0, c - 1)
  position = (ti - ci + 1) * 3 + (tj - cj + 1)
  return rows, cols, position


def refine_in_graph(image, model_fn, patch_size, strategy, batch_size=4096,
                    max_pixels=DEFAULT_MAX_PIXELS):
  """Refines a decoded uint8 image (H, W) or (H, W, 1) with `model_fn`.

  Args:
    image: uint8 tensor.
    model_fn: callable(context (n, 9, d, d) float32 in [0,1], position (n,)
      int32) -> (n, d*d) float32 prediction of each target in [0,1] units.
    patch_size: d (Python int).
    strategy: "paper" or "replicate" (Python str).
    batch_size: targets per model call (bounds memory).
    max_pixels: larger images are refused.

  Returns:
    uint8 tensor of the input's shape.
  """
  d = int(patch_size)
  preds, (h, w, r, c, in_shape) = _predict_blocks(
      image, model_fn, d, strategy, batch_size, max_pixels, [d * d])
  preds = tf.reshape(preds, [r, c, d, d])
  full = tf.reshape(tf.transpose(preds, [0, 2, 1, 3]), [r * d, c * d])
  full = full[:h, :w]
  result = tf.cast(tf.clip_by_value(tf.round(full * 255.0), 0, 255), tf.uint8)
  return tf.reshape(result, in_shape)


def refine_steps_in_graph(image, steps_fn, patch_size, strategy,
                          batch_size=4096, max_pixels=DEFAULT_MAX_PIXELS):
  """`refine_in_graph` keeping every refinement step: (K,) + image shape.

  Args:
    image: uint8 tensor (H, W) or (H, W, 1).
    steps_fn: callable(context, position) -> (n, K, d*d) float32, the
      prediction of each target after steps 1..K (K the same for every
      call).
    patch_size, strategy, batch_size, max_pixels: as for `refine_in_graph`.

  Returns:
    uint8 tensor (K, H, W) or (K, H, W, 1): image k - 1 is assembled from
    the step-k predictions exactly as `refine_in_graph` assembles its one
    prediction (pixel for pixel the same operations).
  """
  d = int(patch_size)
  preds, (h, w, r, c, in_shape) = _predict_blocks(
      image, steps_fn, d, strategy, batch_size, max_pixels, [None, d * d])
  k = tf.shape(preds)[1]
  preds = tf.reshape(preds, [r, c, k, d, d])
  full = tf.reshape(tf.transpose(preds, [2, 0, 3, 1, 4]), [k, r * d, c * d])
  full = full[:, :h, :w]
  result = tf.cast(tf.clip_by_value(tf.round(full * 255.0), 0, 255), tf.uint8)
  return tf.reshape(result, tf.concat([[k], in_shape], axis=0))


def _predict_blocks(image, model_fn, d, strategy, batch_size, max_pixels,
                    element_shape):
  """`model_fn` on every block of `image`, `batch_size` targets at a time:
  (the predictions concatenated, (h, w, rows, cols of the grid, image
  shape))."""
  image = tf.convert_to_tensor(image)
  in_shape = tf.shape(image)
  img2d = images.check_gray_in_graph(image)
  h, w = tf.shape(img2d)[0], tf.shape(img2d)[1]
  pixels = tf.cast(h, tf.int64) * tf.cast(w, tf.int64)
  checks = [
      tf.debugging.Assert(pixels <= max_pixels,
                          ["image too large:", pixels, "pixels; the limit is",
                           max_pixels, "(refine tiles of it instead)"]),
  ]
  with tf.control_dependencies(checks):
    x = tf.cast(img2d, tf.float32) / 255.0
  grid, r, c = pad_to_grid(x, d)
  rows, cols, position = block_index_tensors(r, c, strategy)
  n = r * c
  out = tf.TensorArray(tf.float32, size=0, dynamic_size=True,
                       infer_shape=False, element_shape=tf.TensorShape(
                           [None] + list(element_shape)))

  def body(i, start, out):
    stop = tf.minimum(start + batch_size, n)
    idx = tf.stack([rows[start:stop], cols[start:stop]], axis=-1)
    context = tf.gather_nd(grid, idx)  # (m, 9, d, d)
    pred = tf.cast(model_fn(context, position[start:stop]), tf.float32)
    if len(element_shape) == 1:
      pred = tf.reshape(pred, [-1, d * d])
    return i + 1, stop, out.write(i, pred)

  _, _, out = tf.while_loop(lambda i, start, out: start < n, body,
                            [tf.constant(0), tf.constant(0), out])
  return out.concat(), (h, w, r, c, in_shape)


def jpeg_setting_in_graph(jpeg):
  """`tf_hbd.codecs.codec_setting.features` of a JPEG file's bytes, with TF ops.

  Walks the marker segments to the first DQT segment and reads its first
  table (libjpeg and Pillow write table 0 first), 8- or 16-bit.

  Args:
    jpeg: string scalar, the file.

  Returns:
    (64,) float32, ``log(q) / log(255)``.
  """
  b = tf.cast(tf.io.decode_raw(jpeg, tf.uint8), tf.int32)
  n = tf.size(b)

  def is_dqt(pos):
    return tf.logical_and(tf.equal(b[pos], 0xFF), tf.equal(b[pos + 1], 0xDB))

  def cond(pos):
    return tf.logical_and(pos + 4 < n, tf.logical_not(is_dqt(pos)))

  def body(pos):
    return pos + 2 + b[pos + 2] * 256 + b[pos + 3]

  pos, = tf.while_loop(cond, lambda p: (body(p),), (tf.constant(2),))
  tf.debugging.assert_less(pos + 4, n, message="JPEG has no DQT segment")
  precision = b[pos + 4] // 16
  start = pos + 5
  table = tf.cond(
      tf.equal(precision, 0), lambda: b[start:start + 64],
      lambda: b[start:start + 128:2] * 256 + b[start + 1:start + 128:2])
  table = tf.clip_by_value(tf.cast(table, tf.float32), 1.0, 255.0)
  return tf.math.log(table) / tf.math.log(255.0)
