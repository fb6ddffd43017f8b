"""Context-model range coding of GOOG's binary codes.

GOOG (`tf_hbd.baselines.goog`) emits, per iteration t, a bit
b[t, y, x, c] for every code position (y, x) and channel c = 0..31. This
module codes those bits with tensorflow-compression's range coder under a
fixed (not adaptive) causal context model. The probability of b[t, y, x, c]
depends on t, c and `PARENTS` parent bits at the same position (y, x), each
either a lower channel of the same iteration, b[t, y, x, c'] with c' < c,
or any channel of the previous iteration, b[t-1, y, x, c'] (0 when t = 0).
The parents of each (t, c) are chosen on training codes, greedily, each
the one that shortens the fitted code length most (`fit`). Within an
iteration the bits are coded channel by channel, all positions of a channel
at once, so decoding takes 32 vectorised coder calls per iteration.

The tables (`fit`): ``parents`` int32 (T, 32, PARENTS), column numbers of
`columns` (0..31: channels of the same iteration, 32..63: of the previous
one, `NO_PARENT`: a constant 0), and ``p0`` int32 (T * 32 * 2^PARENTS,),
the probability of a 0 bit times 2^`PRECISION` per (t, c, parent bits),
from counts plus 1/2, at least 1 and at most 2^PRECISION - 1. Each iteration
is its own range-coded segment, so the first k segments decode alone. Table
indices and the coder are integer arithmetic: decoding is bit-exact across
processes.
"""

import numpy as np
import tensorflow as tf
from tensorflow_compression.python.ops import gen_ops

from tf_hbd import errors

__all__ = ["PARENTS", "PRECISION", "NO_PARENT", "columns", "fit",
           "check_tables", "lookup_of", "min_segment_bytes", "encode_iteration",
           "decode_iteration"]

PARENTS = 8  # parent bits per context
PRECISION = 16  # range coder precision (bits)
_BITS = 32
NO_PARENT = 2 * _BITS  # the column of a constant 0


def columns(bits, previous) -> np.ndarray:
  """int32 (h, w, 65): the bits of iteration t, of t - 1 (zeros when
  `previous` is None) and a 0 column (`NO_PARENT`)."""
  bits = np.asarray(bits, np.int32)
  prev = (np.zeros_like(bits) if previous is None
          else np.asarray(previous, np.int32))
  return np.concatenate([bits, prev, np.zeros_like(bits[..., :1])], -1)


def _cost(ctx, y, size):
  """Bits of y (0/1) under add-1/2 counts of the contexts themselves."""
  ones = np.bincount(ctx, weights=y, minlength=size)
  total = np.bincount(ctx, minlength=size)
  p = (ones + 0.5) / (total + 1.0)
  return -(ones * np.log2(p) + (total - ones) * np.log2(1.0 - p)).sum()


def _select(x, t, c, parents):
  """Greedy choice of the parents of (t, c) on columns x (N, 65)."""
  candidates = list(range(c)) + (list(range(_BITS, 2 * _BITS)) if t else [])
  chosen, ctx = [], np.zeros(len(x), np.int64)
  for _ in range(min(parents, len(candidates))):
    best = min((j for j in candidates if j not in chosen),
               key=lambda j: _cost(ctx * 2 + x[:, j], x[:, c],
                                   2 ** (len(chosen) + 1)))
    chosen.append(best)
    ctx = ctx * 2 + x[:, best]
  return chosen + [NO_PARENT] * (parents - len(chosen))


def _context(x, parent_list):
  """Context numbers (N,) of rows x (N, 65) from a list of parents."""
  ctx = np.zeros(x.shape[:-1], np.int64)
  for j in parent_list:
    ctx = ctx * 2 + x[..., j]
  return ctx


def fit(code_list, iterations: int, parents: int = PARENTS):
  """The tables fitted on training codes.

  Args:
    code_list: bits uint8 (T, h, w, 32) per image, T >= `iterations`.
    iterations: how many iterations the tables cover.
    parents: parent bits per context.

  Returns:
    (parents int32 (iterations, 32, parents), p0 int32 (iterations * 32 *
    2^parents,)); see the module docstring.
  """
  size = 2 ** parents
  table = np.zeros((iterations, _BITS, parents), np.int32)
  p0 = np.zeros((iterations, _BITS, size), np.int64)
  one = 1 << PRECISION
  for t in range(iterations):
    x = np.concatenate([
        columns(b[t], b[t - 1] if t else None).reshape(-1, NO_PARENT + 1)
        for b in code_list])
    for c in range(_BITS):
      table[t, c] = _select(x, t, c, parents)
      ctx = _context(x, table[t, c])
      ones = np.bincount(ctx, weights=x[:, c], minlength=size)
      total = np.bincount(ctx, minlength=size)
      p0[t, c] = np.round((total - ones + 0.5) / (total + 1.0) * one)
  return table, np.clip(p0, 1, one - 1).astype(np.int32).ravel()


def check_tables(parents, p0):
  """The tables as int32 arrays, checked (causal parents, valid
  probabilities); ValueError if malformed."""
  parents = np.asarray(parents, np.int32)
  p0 = np.asarray(p0, np.int32)
  if parents.ndim != 3 or parents.shape[1] != _BITS or parents.shape[0] < 1:
    raise ValueError("GOOG bit-model parents must be (T, 32, P)")
  channel = np.arange(_BITS)[None, :, None]
  causal = ((parents < channel) & (parents >= 0)) | (
      (parents >= _BITS) & (parents <= NO_PARENT))
  if not causal.all() or parents.shape[2] > 16:
    raise ValueError("GOOG bit-model parents are not causal")
  if (p0.shape != (parents.shape[0] * _BITS * 2 ** parents.shape[2],)
      or p0.min() < 1 or p0.max() >= 1 << PRECISION):
    raise ValueError("GOOG bit-model probabilities do not match the parents")
  return parents, p0


def lookup_of(p0) -> tf.Tensor:
  """The range coder's lookup table (rows [precision, 0, P(0), 1])."""
  p0 = tf.constant(p0, tf.int32)
  n = tf.shape(p0)
  return tf.stack([tf.fill(n, PRECISION), tf.zeros(n, tf.int32), p0,
                   tf.fill(n, 1 << PRECISION)], axis=1)


def min_segment_bytes(p0, num_bits: int) -> int:
  """A lower bound of the length of a segment of `num_bits` bits: each
  costs at least -log2 of the largest probability in the table (less 8
  bytes for the coder's rounding). Checked before decoding, so that a
  short file cannot declare a huge image."""
  p0 = np.asarray(p0, np.int64)
  top = max(int(p0.max()), (1 << PRECISION) - int(p0.min()))
  cost = -np.log2(top / float(1 << PRECISION))
  return max(0, int(num_bits * cost / 8.0) - 8)


def _base(t, c, parents):
  return (t * _BITS + c) << parents.shape[2]


def encode_iteration(t: int, bits, previous, parents, lookup) -> bytes:
  """The range-coded segment of iteration `t`'s bits (h, w, 32)."""
  x = columns(bits, previous)
  index = np.stack([_base(t, c, parents) + _context(x, parents[t, c])
                    for c in range(_BITS)]).astype(np.int32)
  values = np.ascontiguousarray(np.moveaxis(x[..., :_BITS], -1, 0))
  handle = gen_ops.create_range_encoder([], lookup)
  handle = gen_ops.entropy_encode_index(handle, index, values)
  return gen_ops.entropy_encode_finalize(handle).numpy()


def decode_iteration(t: int, segment: bytes, previous, shape, parents,
                     lookup, name: str = "<bytes>") -> np.ndarray:
  """Inverse of `encode_iteration`: bits uint8 (h, w, 32).

  Raises:
    BitstreamError: the coder's sanity check fails.
  """
  x = columns(np.zeros(tuple(shape) + (_BITS,), np.int32), previous)
  handle = gen_ops.create_range_decoder(tf.constant(segment, tf.string),
                                        lookup)
  for c in range(_BITS):
    index = (_base(t, c, parents) + _context(x, parents[t, c])).astype(
        np.int32)
    handle, decoded = gen_ops.entropy_decode_index(handle, index, shape,
                                                   tf.int32)
    x[..., c] = decoded.numpy()
  if not bool(gen_ops.entropy_decode_finalize(handle).numpy()):
    raise errors.BitstreamError(f"{name}: range decoder sanity check failed "
                                f"in iteration {t + 1}")
  return x[..., :_BITS].astype(np.uint8)
