"""Context-model range coding of GOOG's binary codes.

GOOG (`tf_hbd.baselines.goog`) emits, per iteration t, a bit
b[t, y, x, c] for every code position (y, x) and channel c = 0..31. This
module codes those bits with tensorflow-compression's range coder under a
fixed (not adaptive) causal context model: the probability of a bit depends
on its iteration t, its channel c, the same channel's bit at the same
position in the previous iteration, b[t-1, y, x, c], and the bits of the
`LOWER` channels just below it at the same position in the same iteration,
b[t, y, x, c-1], ..., b[t, y, x, c-LOWER] (absent ones count as 0). Within an
iteration the bits are coded channel by channel (all positions of a channel
at once), so decoding takes 32 vectorised coder calls per iteration.

The model is a table of ``MAX_ITERATIONS * 32 * 2 ** (1 + LOWER)`` integer
CDFs (precision `PRECISION`), fitted on training codes by `fit_lookup`
(counts plus 1/2, the probability of either bit at least 2^-PRECISION) and
stored with the SavedModel. Each iteration is its own range-coded segment,
so the first k segments of a file decode alone. Table indices and the coder
are integer arithmetic: decoding is bit-exact across processes.
"""

import numpy as np
import tensorflow as tf
from tensorflow_compression.python.ops import gen_ops

from tf_hbd import errors

__all__ = ["LOWER", "PRECISION", "num_contexts", "context_index",
           "fit_lookup", "check_lookup", "encode_iteration",
           "decode_iteration"]

LOWER = 2  # lower channels in the context
PRECISION = 16  # range coder precision (bits)
_BITS = 32


def num_contexts(iterations: int) -> int:
  """Rows of the CDF table of a model coding `iterations` iterations."""
  return iterations * _BITS * 2 ** (1 + LOWER)


def _lower(bits, j):
  """b[..., c - j] (0 where c < j) of bits (..., 32)."""
  return np.pad(bits[..., :_BITS - j], [(0, 0)] * (bits.ndim - 1) + [(j, 0)])


def context_index(t: int, bits, previous):
  """Table rows of the bits of iteration `t` (0-based).

  Args:
    t: the iteration.
    bits: uint8 (h, w, 32) in {0, 1}, the bits of iteration t (only the
      lower channels of each are read).
    previous: the bits of iteration t - 1 (h, w, 32), or None when t = 0.

  Returns:
    int32 (h, w, 32).
  """
  bits = np.asarray(bits, np.int32)
  prev = np.zeros_like(bits) if previous is None else np.asarray(
      previous, np.int32)
  index = (t * _BITS + np.arange(_BITS, dtype=np.int32)) * 2 + prev
  for j in range(1, LOWER + 1):
    index = index * 2 + _lower(bits, j)
  return index.astype(np.int32)


def fit_lookup(code_list, iterations: int) -> np.ndarray:
  """The range coder's lookup table fitted on training codes.

  Args:
    code_list: bits uint8 (T, h, w, 32) per image, T >= `iterations`.
    iterations: how many iterations the table covers.

  Returns:
    int32 (num_contexts(iterations), 4): rows ``[PRECISION, 0, P(0) *
    2^PRECISION, 2^PRECISION]``.
  """
  size = num_contexts(iterations)
  ones = np.zeros(size)
  total = np.zeros(size)
  for codes in code_list:
    for t in range(iterations):
      index = context_index(t, codes[t], codes[t - 1] if t else None)
      ones += np.bincount(index.ravel(), weights=codes[t].ravel(),
                          minlength=size)
      total += np.bincount(index.ravel(), minlength=size)
  one = 1 << PRECISION
  p0 = np.round((total - ones + 0.5) / (total + 1.0) * one)
  p0 = np.clip(p0, 1, one - 1).astype(np.int32)
  return np.stack([np.full(size, PRECISION, np.int32), np.zeros_like(p0), p0,
                   np.full(size, one, np.int32)], axis=1)


def check_lookup(lookup) -> np.ndarray:
  """The lookup table as int32 (n, 4), checked; ValueError if malformed."""
  lookup = np.asarray(lookup, np.int32)
  one = 1 << PRECISION
  if (lookup.ndim != 2 or lookup.shape[1] != 4
      or lookup.shape[0] % num_contexts(1)
      or np.any(lookup[:, 0] != PRECISION) or np.any(lookup[:, 1] != 0)
      or np.any(lookup[:, 3] != one) or np.any(lookup[:, 2] < 1)
      or np.any(lookup[:, 2] >= one)):
    raise ValueError("not a GOOG bit-model lookup table")
  return lookup


def encode_iteration(t: int, bits, previous, lookup) -> bytes:
  """The range-coded segment of iteration `t`'s bits (h, w, 32)."""
  index = context_index(t, bits, previous)
  handle = gen_ops.create_range_encoder([], lookup)
  handle = gen_ops.entropy_encode_index(
      handle, np.ascontiguousarray(np.moveaxis(index, -1, 0)),
      np.ascontiguousarray(np.moveaxis(np.asarray(bits, np.int32), -1, 0)))
  return gen_ops.entropy_encode_finalize(handle).numpy()


def decode_iteration(t: int, segment: bytes, previous, shape, lookup,
                     name: str = "<bytes>") -> np.ndarray:
  """Inverse of `encode_iteration`: bits uint8 (h, w, 32).

  Raises:
    BitstreamError: the coder's sanity check fails.
  """
  h, w = shape
  prev = (np.zeros((h, w, _BITS), np.int32) if previous is None
          else np.asarray(previous, np.int32))
  base = (t * _BITS + np.arange(_BITS, dtype=np.int32)) * 2
  bits = np.zeros((h, w, _BITS), np.int32)
  handle = gen_ops.create_range_decoder(tf.constant(segment, tf.string),
                                        lookup)
  for c in range(_BITS):
    index = base[c] + prev[..., c]
    for j in range(1, LOWER + 1):
      index = index * 2 + (bits[..., c - j] if c >= j else 0)
    handle, decoded = gen_ops.entropy_decode_index(
        handle, index.astype(np.int32), [h, w], tf.int32)
    bits[..., c] = decoded.numpy()
  if not bool(gen_ops.entropy_decode_finalize(handle).numpy()):
    raise errors.BitstreamError(f"{name}: range decoder sanity check failed "
                                f"in iteration {t + 1}")
  return bits.astype(np.uint8)
