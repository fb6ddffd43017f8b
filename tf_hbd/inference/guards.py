"""Inference guards: where the decoder cannot know better, keep the codec's
output.

`passthrough`: at settings so fine that the codec's error is below the
decoder's own error floor the image is returned as decoded. The codec
setting (`tf_hbd.codecs.codec_setting`) says how fine: for JPEG the RMS
quantization noise of the luma table, ``sqrt(mean(q^2) / 12)`` gray levels
(IJG quality 90: 3.9, 95: 1.9, 100: 0.3); for JPEG 2000 the rate.
Thresholds are chosen per shipped model from `benchmarks/no_harm.py`
(recorded in its hbd_model.json and MODEL.md).

`keep_flat_context`: a block whose 9 decoded patches are all one constant
level carries no information about any structure the codec removed; the
decoder's output there can only add a pattern of its own (a flat image would
come out tiled with the same 8 x 8 texture). Such targets keep their decoded
patch. Measured effect: `benchmarks/no_harm.py` (flat images, text and
graphics backgrounds) and BUILD.md, "Do no harm".

`jpeg_coded_noise_rms`: the passthrough for one image's content. The table
alone bounds the codec's error from above; what the file actually coded is
sharper: every DCT coefficient quantized to a nonzero level carries an error
of about ``q^2 / 12``, so the RMS over the image's coefficients of that term
says how much quantization noise the image carries. Smooth near-lossless
content (synthetic gradients at JPEG quality 70-80: 0.3-0.5 gray levels,
decoded at 50-53 dB) sits far below any photograph (>= 1.1 at quality 80 on
Kodak and BSD68); there, the decoder's sub-level corrections were the only
harm it did, so such images are returned as decoded (``jpeg_min_coded_noise``
of `passthrough`).

`flat_tile_fraction` and `laplacian_activity`: JPEG 2000 passthroughs for one
image's content. The rate in a JPEG 2000 codestream is what the encoder
*spent*, and what that buys depends on the content: a graphic or a smooth
gradient asked for 2 bpp stops at 0.2-0.4 bpp because nothing is left to
code and decodes at 60-80 dB, a smooth photograph at 0.5 bpp decodes at
45-50 dB, a photograph squeezed into 40 levels at 0.1 bpp at 42-45 dB. The
decoder, trained on ordinary photographs, reads only the rate and corrects as
for a typical photograph at it (-40 dB on the graphic, -2.4 dB on the smooth
photograph). JPEG 2000 spends its rate on local activity, so the decoded
image's mean absolute 4-neighbour Laplacian per bit per pixel says how
finely it was coded: below ``jp2_min_activity_per_bpp`` (gray levels per bpp)
the image is coded above the decoder's training distribution and is returned
as decoded. The fraction of exactly constant 8 x 8 tiles
(``jp2_max_flat_fraction``) catches hard-edged graphics and clean documents
whatever their activity (Kodak and BSD68 photographs: <= 0.26 at 0.1-2 bpp;
the stress set's graphics coded near-losslessly: 0.91). Both statistics are
integer counts and sums, so the two runtimes decide identically. Thresholds
and their measured effect: BUILD.md ("Ablation").

`activity_weight`: the soft form of the activity passthrough. Between
``jp2_min_activity_per_bpp`` (weight 0: returned as decoded) and
``jp2_full_activity_per_bpp`` (weight 1: the decoder's output) the
correction is scaled linearly (`blend`), so an image near the threshold
keeps part of its gain instead of all or nothing.

The guards act on the blocks the model sees, so `tf_hbd.inference.refine` (Python
path, also used for validation) and the serving graph (`tf_hbd.inference.serving`)
apply it identically.
"""

import tensorflow as tf

__all__ = ["keep_flat_context", "jpeg_noise_rms",
           "jpeg_coded_noise_rms", "flat_tile_fraction", "laplacian_activity",
           "activity_weight", "blend", "passthrough"]


def keep_flat_context(context, position, prediction):
  """The prediction, with the decoded patch where the context is constant.

  Args:
    context: (B, 9, d, d) decoded blocks (any dtype, any scale).
    position: (B,) int, the target's index in the block.
    prediction: (B, d*d) or (B, d, d) model output, same scale as context.

  Returns:
    `prediction` with rows replaced by the decoded target patch where all
    9 * d * d context values are equal.
  """
  b = tf.shape(context)[0]
  flat_ctx = tf.reshape(context, [b, -1])
  flat = tf.equal(tf.reduce_max(flat_ctx, axis=1),
                  tf.reduce_min(flat_ctx, axis=1))
  own = tf.gather(context, tf.cast(position, tf.int32), axis=1, batch_dims=1)
  own = tf.reshape(tf.cast(own, prediction.dtype), tf.shape(prediction))
  return tf.where(tf.reshape(flat, [-1] + [1] * (len(prediction.shape) - 1)),
                  own, prediction)


def jpeg_noise_rms(setting):
  """RMS quantization noise (gray levels) of a JPEG setting vector (64,)."""
  steps = tf.round(tf.exp(tf.cast(setting, tf.float32) * tf.math.log(255.0)))
  return tf.sqrt(tf.reduce_mean(tf.square(steps)) / 12.0)


def jpeg_coded_noise_rms(decoded, setting):
  """RMS of q^2/12 over the nonzero quantized DCT coefficients (gray levels).

  Args:
    decoded: (H, W) or (H, W, 1) uint8, the JPEG decoder's output.
    setting: its (64,) setting vector (`tf_hbd.codecs.codec_setting.features`).

  Returns:
    float32 scalar: ``sqrt(mean(nonzero * q^2 / 12))`` over every
    coefficient of every 8 x 8 block (edge-replicated to the grid).
  """
  from tf_hbd.codecs import jpeg_constraint  # pylint: disable=g-import-not-at-top
  x = tf.cast(decoded, tf.float32)
  x = tf.reshape(x, tf.shape(x)[:2])
  q = jpeg_constraint.table_from_setting(tf.reshape(setting, [-1]))
  c = tf.constant(jpeg_constraint.dct_matrix(), tf.float32)
  z = jpeg_constraint.blocks(jpeg_constraint.pad8(x) - 128.0)
  k = tf.round((c @ z @ tf.transpose(c)) / q)
  noise = tf.where(tf.not_equal(k, 0.0), tf.square(q) / 12.0, 0.0)
  return tf.sqrt(tf.reduce_mean(noise))


def _gray_int(decoded):
  x = tf.cast(decoded, tf.int32)
  return tf.reshape(x, tf.shape(x)[:2])


def flat_tile_fraction(decoded):
  """Fraction of the 8 x 8 tiles of an image that are exactly constant.

  Args:
    decoded: (H, W) or (H, W, 1) integer image (uint8).

  Returns:
    float64 scalar in [0, 1]; the image is edge-replicated to a multiple of
    8 first (as `tf_hbd.codecs.patches` does), so every pixel is in a tile.
  """
  from tf_hbd.codecs import jpeg_constraint  # pylint: disable=g-import-not-at-top
  t = jpeg_constraint.blocks(jpeg_constraint.pad8(_gray_int(decoded)))
  flat = tf.equal(tf.reduce_max(t, axis=[2, 3]), tf.reduce_min(t, axis=[2, 3]))
  return tf.reduce_mean(tf.cast(flat, tf.float64))


def laplacian_activity(decoded):
  """Mean |4 x[i, j] - x[i-1, j] - x[i+1, j] - x[i, j-1] - x[i, j+1]|.

  Args:
    decoded: (H, W) or (H, W, 1) integer image (uint8).

  Returns:
    float64 scalar, gray levels: the mean over interior pixels (an exact
    integer sum over their count); 0 for images under 3 x 3 pixels.
  """
  x = _gray_int(decoded)
  lap = (4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] -
         x[1:-1, 2:])
  total = tf.reduce_sum(tf.cast(tf.abs(lap), tf.int64))
  count = tf.cast(tf.size(lap, out_type=tf.int64), tf.float64)
  return tf.cast(total, tf.float64) / tf.maximum(count, 1.0)


def activity_weight(decoded, setting, low, high):
  """Weight of the correction of a JPEG 2000 image (float32 scalar in [0, 1]).

  Args:
    decoded: (H, W) or (H, W, 1) uint8 decoded image.
    setting: its (1,) setting vector (the rate).
    low: ``jp2_min_activity_per_bpp``: weight 0 at or below low x bpp.
    high: ``jp2_full_activity_per_bpp`` (> low): weight 1 at or above.

  Returns:
    ``clip((laplacian_activity / bpp - low) / (high - low), 0, 1)``,
    computed in float64 and cast to float32.
  """
  bpp64 = tf.pow(tf.constant(2.0, tf.float64),
                 4.0 * tf.cast(tf.reshape(setting, [-1])[0], tf.float64))
  ratio = laplacian_activity(decoded) / bpp64
  w = (ratio - float(low)) / (float(high) - float(low))
  return tf.cast(tf.clip_by_value(w, 0.0, 1.0), tf.float32)


def blend(decoded, refined, weight):
  """``round(decoded + weight * (refined - decoded))`` as uint8 (float32).

  Weight 1 returns `refined` exactly, weight 0 `decoded`.
  """
  d = tf.cast(decoded, tf.float32)
  out = tf.round(d + weight * (tf.cast(refined, tf.float32) - d))
  return tf.cast(tf.clip_by_value(out, 0.0, 255.0), tf.uint8)


def passthrough(codec, setting, jpeg_min_noise=0.0, jp2_max_bpp=0.0,
                jpeg_min_coded_noise=0.0, decoded=None,
                jp2_max_flat_fraction=0.0, jp2_min_activity_per_bpp=0.0,
                jp2_full_activity_per_bpp=0.0):
  """True (a bool tensor) where the image should be returned as decoded.

  Args:
    codec: "jpeg" or "jp2".
    setting: the image's setting vector (`tf_hbd.codecs.codec_setting.features`).
    jpeg_min_noise: JPEG: pass through below this table RMS noise (0: never).
    jp2_max_bpp: JPEG 2000: pass through at or above this rate (0: never).
    jpeg_min_coded_noise: JPEG: pass through when `jpeg_coded_noise_rms` of
      `decoded` is below this (0: never).
    decoded: the decoded image (needed for ``jpeg_min_coded_noise``,
      ``jp2_max_flat_fraction`` and ``jp2_min_activity_per_bpp``).
    jp2_max_flat_fraction: JPEG 2000: pass through when `flat_tile_fraction`
      of `decoded` is at or above this (0: never).
    jp2_min_activity_per_bpp: JPEG 2000: pass through when
      `laplacian_activity` of `decoded` is below this many gray levels per
      bit per pixel of the codestream (0: never).
    jp2_full_activity_per_bpp: not a passthrough (ignored here): the upper
      end of `activity_weight`'s ramp, applied by the runtimes after
      refinement when above ``jp2_min_activity_per_bpp``.
  """
  del jp2_full_activity_per_bpp  # the runtimes' blend, not a passthrough
  setting = tf.cast(tf.reshape(setting, [-1]), tf.float32)
  if codec == "jpeg" and (jpeg_min_noise > 0 or jpeg_min_coded_noise > 0):
    out = tf.constant(False)
    if jpeg_min_noise > 0:
      out = jpeg_noise_rms(setting) < float(jpeg_min_noise)
    if jpeg_min_coded_noise > 0:
      if decoded is None:
        raise ValueError("jpeg_min_coded_noise needs the decoded image")
      out = tf.logical_or(out, jpeg_coded_noise_rms(decoded, setting) <
                          float(jpeg_min_coded_noise))
    return out
  if codec == "jp2" and (jp2_max_bpp > 0 or jp2_max_flat_fraction > 0 or
                         jp2_min_activity_per_bpp > 0):
    out = tf.constant(False)
    if jp2_max_bpp > 0:
      bpp = tf.pow(2.0, 4.0 * setting[0])  # codec_setting: log2(bpp) / 4
      out = bpp >= float(jp2_max_bpp) * (1.0 - 1e-6)
    if jp2_max_flat_fraction > 0 or jp2_min_activity_per_bpp > 0:
      if decoded is None:
        raise ValueError("jp2_max_flat_fraction and jp2_min_activity_per_bpp "
                         "need the decoded image")
    if jp2_max_flat_fraction > 0:
      out = tf.logical_or(out, flat_tile_fraction(decoded) >=
                          float(jp2_max_flat_fraction))
    if jp2_min_activity_per_bpp > 0:
      bpp64 = tf.pow(tf.constant(2.0, tf.float64),
                     4.0 * tf.cast(setting[0], tf.float64))
      out = tf.logical_or(out, laplacian_activity(decoded) <
                          float(jp2_min_activity_per_bpp) * bpp64)
    return out
  return tf.constant(False)
