"""The JPEG quantization constraint, and the block-grid symmetries.

**Projection.** A JPEG decoder knows, for every 8 x 8 block and frequency,
the quantization step q and the dequantized coefficient; the original
image's DCT coefficient lies within q / 2 of it. The set of images whose
coefficients all lie in their intervals is a box in the orthonormal DCT
basis, so it is convex and contains the original: projecting any estimate
onto it (clipping each coefficient into its interval) can only bring the
estimate closer to the original in L2 (before rounding to 8 bits).

We do not re-parse the entropy-coded data: the dequantized coefficients are
estimated from the decoded pixels, Z = DCT(decoded - 128), which differs
from them by the decoder's rounding (about 0.3 per coefficient). Where no
decoded pixel of the block sits at 0 or 255, the dequantized value is
recovered as ``round(Z / q) q`` and the interval is ``round(Z / q) q +-
(q / 2 + slack)`` (slack 0.5: measured on BSD68 and the stress set, the
original lies inside for all but 0.4 % of coefficients even at quality 95
and 100, by at most 0.6-1.7). Where the decoder clipped pixels at 0 or 255,
rounding no longer recovers q-multiples; there the interval is centred at Z
and widened by ``clipped_slack`` (1). Partial blocks at the right and
bottom edges are padded by edge replication, as JPEG encoders pad.

**Symmetries.** Flips and transposes of an image whose sides are multiples
of 8 map the JPEG block grid onto itself; a flip only changes the sign of
odd-frequency coefficients (same table), a transpose transposes the table.
`dihedral` / `undo_dihedral` apply them, `transpose_setting` transposes a
setting vector (`tf_hbd.codecs.codec_setting`, zig-zag order).
"""

import numpy as np
import tensorflow as tf

# The setting's layout and the symmetries live with the codec settings and
# the patch grid (NumPy only); named here too for the constraint's users.
from tf_hbd.codecs.codec_setting import transpose_setting, ZIGZAG  # pylint: disable=unused-import
from tf_hbd.codecs.patches import DIHEDRAL, dihedral, undo_dihedral  # pylint: disable=unused-import

__all__ = ["ZIGZAG", "dct_matrix", "blocks", "pad8", "table_from_setting", "transpose_setting", "project",
           "dihedral", "undo_dihedral", "DIHEDRAL"]


def _dct_matrix(n=8):
  k = np.arange(n)[:, None]
  i = np.arange(n)[None, :]
  c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
  c[0] /= np.sqrt(2.0)
  return c  # orthonormal: c @ c.T = I; 2-D DCT of x is c @ x @ c.T


_C = _dct_matrix()


def table_from_setting(setting):
  """(64,) JPEG setting (zig-zag log-table) -> (8, 8) steps, natural order."""
  setting = tf.convert_to_tensor(setting, tf.float32)
  steps = tf.round(tf.exp(setting * tf.math.log(255.0)))
  natural = tf.scatter_nd(ZIGZAG[:, None], steps, [64])
  return tf.reshape(natural, [8, 8])


def _blocks(x):
  """(H, W) with H, W multiples of 8 -> (H/8, W/8, 8, 8)."""
  h, w = tf.shape(x)[0], tf.shape(x)[1]
  x = tf.reshape(x, [h // 8, 8, w // 8, 8])
  return tf.transpose(x, [0, 2, 1, 3])


def _unblocks(b):
  n, m = tf.shape(b)[0], tf.shape(b)[1]
  return tf.reshape(tf.transpose(b, [0, 2, 1, 3]), [n * 8, m * 8])


def _pad8(x):
  h, w = tf.shape(x)[0], tf.shape(x)[1]
  ph, pw = (-h) % 8, (-w) % 8
  x = tf.concat([x, tf.repeat(x[-1:], ph, axis=0)], axis=0)
  return tf.concat([x, tf.repeat(x[:, -1:], pw, axis=1)], axis=1)


def dct_matrix():
  """The orthonormal 8 x 8 DCT-II matrix (2-D DCT of x: c @ x @ c.T)."""
  return _C.copy()


blocks = _blocks
pad8 = _pad8


def project(refined, decoded, table, slack=0.5, clipped_slack=1.0):
  """Projects a refined image onto the decoded image's quantization box.

  Args:
    refined: (H, W) estimate, pixel units (uint8 or float).
    decoded: (H, W) uint8, the JPEG decoder's output.
    table: (8, 8) quantization steps in natural order (`table_from_setting`).
    slack: widening of each interval (blocks without clipped pixels).
    clipped_slack: widening around Z in blocks with pixels at 0 or 255.

  Returns:
    (H, W) uint8, the projected estimate rounded to 8 bits.
  """
  c = tf.constant(_C, tf.float32)
  h, w = tf.shape(decoded)[0], tf.shape(decoded)[1]
  y = _blocks(_pad8(tf.cast(refined, tf.float32)) - 128.0)
  z = _blocks(_pad8(tf.cast(decoded, tf.float32)) - 128.0)
  yc = c @ y @ tf.transpose(c)
  zc = c @ z @ tf.transpose(c)
  q = tf.cast(table, tf.float32)
  clipped = tf.reduce_any(tf.logical_or(tf.equal(z, -128.0),
                                        tf.equal(z, 127.0)), axis=[2, 3],
                          keepdims=True)
  centre = tf.where(clipped, zc, tf.round(zc / q) * q)
  half = q / 2.0 + tf.where(clipped, float(clipped_slack), float(slack))
  yc = tf.clip_by_value(yc, centre - half, centre + half)
  out = _unblocks(tf.transpose(c) @ yc @ c) + 128.0
  out = tf.clip_by_value(tf.round(out[:h, :w]), 0.0, 255.0)
  return tf.cast(out, tf.uint8)
