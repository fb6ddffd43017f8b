"""Tests of tf_hbd.data.synthetic."""

import numpy as np
import pytest

from tf_hbd.data import synthetic


@pytest.mark.parametrize("kind", sorted(synthetic.KINDS))
def test_each_kind_is_seeded_uint8_of_the_shape(kind):
  a = synthetic.make(kind, np.random.default_rng(3), (40, 72))
  b = synthetic.make(kind, np.random.default_rng(3), (40, 72))
  assert a.shape == (40, 72) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)


def test_kinds_have_their_character():
  rng = np.random.default_rng(0)
  flat = synthetic.make("flat", rng, (16, 16))
  assert np.unique(flat).size == 1
  board = synthetic.make("checkerboard", rng, (64, 64))
  assert np.unique(board).size == 2
  texts = [synthetic.make("text", np.random.default_rng(s), (96, 160))
           for s in range(4)]
  assert all(np.unique(t).size >= 2 for t in texts)  # strokes drawn


def test_unknown_kind():
  with pytest.raises(ValueError, match="unknown synthetic kind"):
    synthetic.make("noise", np.random.default_rng(0), (8, 8))


def test_tone_map_range():
  img = np.arange(256, dtype=np.uint8).reshape(16, 16)
  dark = synthetic.tone_map(img, 0, 40)
  assert dark.min() == 0 and dark.max() == 40
  bright = synthetic.tone_map(img, 215, 255)
  assert bright.min() == 215 and bright.max() == 255
