"""Tests of the context-model range coding of GOOG's bits."""

import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.baselines import goog_bits


def _correlated_codes(seed, iterations=3, h=5, w=7):
  """Bits where each channel mostly repeats the one below and the previous
  iteration: a context model must beat 1 bit per bit on them."""
  rng = np.random.default_rng(seed)
  codes = np.zeros((iterations, h, w, 32), np.uint8)
  for t in range(iterations):
    for c in range(32):
      if c:
        base = codes[t, ..., c - 1]
      elif t:
        base = codes[t - 1, ..., 0]
      else:
        base = rng.integers(0, 2, (h, w))
      flip = rng.random((h, w)) < 0.1
      codes[t, ..., c] = base ^ flip
  return codes


class GoogBitsTest(tf.test.TestCase):

  def test_context_index_is_causal_and_in_range(self):
    codes = _correlated_codes(0)
    n = goog_bits.num_contexts(3)
    for t in range(3):
      index = goog_bits.context_index(t, codes[t], codes[t - 1] if t else None)
      self.assertEqual(index.shape, codes[t].shape)
      self.assertEqual(index.dtype, np.int32)
      self.assertGreaterEqual(index.min(), t * n // 3)
      self.assertLess(index.max(), (t + 1) * n // 3)
      # Changing a bit changes only the indices of higher channels.
      flipped = codes[t].copy()
      flipped[..., 10] ^= 1
      other = goog_bits.context_index(t, flipped, codes[t - 1] if t else None)
      changed = np.any(other != index, axis=(0, 1))
      self.assertFalse(np.any(changed[:11]))
      self.assertTrue(np.all(changed[11:11 + goog_bits.LOWER]))

  def test_fit_lookup_rows(self):
    lookup = goog_bits.fit_lookup([_correlated_codes(1)], 3)
    self.assertEqual(lookup.shape, (goog_bits.num_contexts(3), 4))
    np.testing.assert_array_equal(goog_bits.check_lookup(lookup), lookup)
    # Iteration 1 has no previous bit set: never met, probability 1/2.
    unseen = 1 << goog_bits.LOWER
    self.assertEqual(lookup[unseen, 2], 1 << (goog_bits.PRECISION - 1))

  def test_check_lookup_refuses_malformed_tables(self):
    lookup = goog_bits.fit_lookup([_correlated_codes(1)], 1)
    for bad in (lookup[:, :3], lookup[:-1], np.zeros_like(lookup)):
      with self.assertRaises(ValueError):
        goog_bits.check_lookup(bad)
    zero_probability = lookup.copy()
    zero_probability[5, 2] = 0
    with self.assertRaises(ValueError):
      goog_bits.check_lookup(zero_probability)

  def test_round_trip_and_saving(self):
    lookup = goog_bits.fit_lookup(
        [_correlated_codes(s, h=12, w=12) for s in range(2, 6)], 3)
    codes = _correlated_codes(7, h=12, w=12)
    total = 0
    for t in range(3):
      previous = codes[t - 1] if t else None
      segment = goog_bits.encode_iteration(t, codes[t], previous, lookup)
      total += len(segment)
      decoded = goog_bits.decode_iteration(t, segment, previous, (12, 12),
                                           lookup)
      self.assertEqual(decoded.dtype, np.uint8)
      np.testing.assert_array_equal(decoded, codes[t])
    self.assertLess(total, 0.75 * codes.size / 8)  # raw: size / 8 bytes

  def test_garbage_segment_raises_or_decodes_to_bits(self):
    lookup = goog_bits.fit_lookup([_correlated_codes(1)], 2)
    for segment in (b"\xff", b"\x00" * 3, bytes(range(40))):
      try:
        bits = goog_bits.decode_iteration(1, segment, None, (5, 7), lookup)
      except errors.BitstreamError:
        continue
      self.assertTrue(np.all(bits <= 1))


if __name__ == "__main__":
  tf.test.main()
