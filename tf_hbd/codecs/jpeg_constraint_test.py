"""Tests of tf_hbd.codecs.jpeg_constraint."""

import numpy as np
import pytest
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import jpeg_constraint as jc
from tf_hbd.evaluation import metrics
from tf_hbd.data import sample_images


def _photo(h=96, w=120):
  return np.ascontiguousarray(sample_images.load_sample("camera")[
      200:200 + h, 150:150 + w])


def _jpeg(img, q):
  decoded, enc = codecs.roundtrip(img, "jpeg", quality=q)
  table = jc.table_from_setting(codec_setting.features(enc.data, "jpeg"))
  return decoded, table


def test_table_is_the_natural_order_table():
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  enc = codecs.encode_at_quality(_photo(), "jpeg", 50)
  table = jc.table_from_setting(codec_setting.features(enc.data, "jpeg"))
  pil = Image.open(io.BytesIO(enc.data)).quantization[0]
  np.testing.assert_array_equal(table.numpy().reshape(64), pil)


def test_dct_is_orthonormal():
  c = jc._C  # pylint: disable=protected-access
  np.testing.assert_allclose(c @ c.T, np.eye(8), atol=1e-12)


@pytest.mark.parametrize("q", [10, 30, 75])
def test_original_is_inside_the_box(q):
  img = _photo()
  decoded, table = _jpeg(img, q)
  projected = jc.project(img, decoded, table).numpy()
  # The original is (nearly) a fixed point: only rounding-slack moves.
  assert np.abs(projected.astype(int) - img).max() <= 1


@pytest.mark.parametrize("q", [10, 30])
def test_projection_never_moves_away_from_the_original(q):
  img = _photo()
  decoded, table = _jpeg(img, q)
  rng = np.random.default_rng(0)
  for scale in (3.0, 10.0, 30.0):
    noisy = np.clip(decoded + rng.normal(0, scale, img.shape), 0, 255)
    noisy = np.round(noisy).astype(np.uint8)
    projected = jc.project(noisy, decoded, table).numpy()
    assert metrics.psnr(img, projected) >= metrics.psnr(img, noisy) - 0.01
  # A projected decoded image is the decoded image.
  same = jc.project(decoded, decoded, table).numpy()
  np.testing.assert_array_equal(same, decoded)


def test_odd_sizes():
  img = _photo(37, 53)
  decoded, table = _jpeg(img, 20)
  out = jc.project(np.full(img.shape, 128, np.uint8), decoded, table).numpy()
  assert out.shape == img.shape and out.dtype == np.uint8
  assert metrics.psnr(img, out) > metrics.psnr(img, np.full(img.shape, 128))


@pytest.mark.parametrize("k", jc.DIHEDRAL)
def test_dihedral_round_trip_and_table(k):
  img = _photo(64, 80)
  t = jc.dihedral(img, k)
  np.testing.assert_array_equal(jc.undo_dihedral(t, k), img)
  # The transformed image's JPEG table relation: JPEG of the transformed
  # image uses the same table; a transpose-type symmetry permutes the DCT
  # coefficients, which transpose_setting expresses.
  s = np.arange(64, dtype=np.float32)
  np.testing.assert_array_equal(jc.transpose_setting(jc.transpose_setting(s)),
                                s)
  nat = np.zeros(64)
  nat[jc.ZIGZAG] = s
  nat_t = np.zeros(64)
  nat_t[jc.ZIGZAG] = jc.transpose_setting(s)
  np.testing.assert_array_equal(nat_t.reshape(8, 8), nat.reshape(8, 8).T)
