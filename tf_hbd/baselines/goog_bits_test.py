"""Tests of the context-model range coding of GOOG's bits."""

import numpy as np
import tensorflow as tf

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

  def test_fit_picks_causal_informative_parents(self):
    codes = [_correlated_codes(s) for s in range(3)]
    parents, p0 = goog_bits.fit(codes, 3, parents=2)
    self.assertEqual(parents.shape, (3, 32, 2))
    self.assertEqual(p0.shape, (3 * 32 * 4,))
    goog_bits.check_tables(parents, p0)
    # Channel c copies channel c - 1 (and channel 0 the previous iteration's
    # channel 0): that is the first parent chosen.
    self.assertEqual(list(parents[1:, 1:, 0].ravel()),
                     list(np.tile(np.arange(31), 2)))
    self.assertEqual(list(parents[1:, 0, 0]), [32, 32])
    # Iteration 1, channel 0 has no candidate: constant parents, one context.
    self.assertEqual(list(parents[0, 0]), [goog_bits.NO_PARENT] * 2)
    self.assertEqual(list(parents[0, 1]), [0, goog_bits.NO_PARENT])

  def test_check_tables_refuses_malformed_tables(self):
    parents, p0 = goog_bits.fit([_correlated_codes(1)], 2, parents=2)
    non_causal = parents.copy()
    non_causal[0, 3, 0] = 3  # its own bit
    zero_probability = p0.copy()
    zero_probability[5] = 0
    for bad in ((parents[:, :31], p0), (parents, p0[:-1]), (non_causal, p0),
                (parents, zero_probability), (parents - 1, p0)):
      with self.assertRaises(ValueError):
        goog_bits.check_tables(*bad)

  def test_round_trip_and_saving(self):
    parents, p0 = goog_bits.fit(
        [_correlated_codes(s, h=12, w=12) for s in range(2, 6)], 3)
    lookup = goog_bits.lookup_of(p0)
    codes = _correlated_codes(7, h=12, w=12)
    total = 0
    for t in range(3):
      previous = codes[t - 1] if t else None
      segment = goog_bits.encode_iteration(t, codes[t], previous, parents,
                                           lookup)
      total += len(segment)
      decoded = goog_bits.decode_iteration(t, segment, previous, (12, 12),
                                           parents, lookup)
      self.assertEqual(decoded.dtype, np.uint8)
      np.testing.assert_array_equal(decoded, codes[t])
    self.assertLess(total, 0.75 * codes.size / 8)  # raw: size / 8 bytes


if __name__ == "__main__":
  tf.test.main()
