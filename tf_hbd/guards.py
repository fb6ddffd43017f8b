"""Inference guards: where the decoder cannot know better, keep the codec's
output.

`keep_flat_context`: a block whose 9 decoded patches are all one constant
level carries no information about any structure the codec removed; the
decoder's output there can only add a pattern of its own (a flat image would
come out tiled with the same 8 x 8 texture). Such targets keep their decoded
patch. Measured effect: `benchmarks/no_harm.py` (flat images, text and
graphics backgrounds) and BUILD.md, "Do no harm".

The guard acts on the blocks the model sees, so `tf_hbd.refine` (Python
path, also used for validation) and the serving graph (`tf_hbd.serving`)
apply it identically.
"""

import tensorflow as tf

__all__ = ["keep_flat_context"]


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
