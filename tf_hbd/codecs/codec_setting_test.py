"""Tests of tf_hbd.codecs.codec_setting (and its in-graph twin)."""

import io

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd import errors
from tf_hbd.inference import graph_refine


def _image(h=40, w=56, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w)).astype(np.uint8)


@pytest.mark.parametrize("quality", [1, 5, 50, 95, 100])
def test_jpeg_table_matches_pillow_and_graph(quality):
  data = codecs.encode_at_quality(_image(), "jpeg", quality).data
  table = codec_setting.jpeg_luma_table(data)
  pillow = Image.open(io.BytesIO(data)).quantization[0]
  assert table.shape == (64,)
  assert sorted(table.tolist()) == sorted(pillow)  # same table, file order
  feats = codec_setting.features(data, "jpeg")
  np.testing.assert_allclose(feats, np.log(table) / np.log(255.0), rtol=1e-6)
  in_graph = graph_refine.jpeg_setting_in_graph(tf.constant(data)).numpy()
  np.testing.assert_allclose(in_graph, feats, atol=1e-6)


def test_coarser_jpeg_has_larger_features():
  lo = codec_setting.features(
      codecs.encode_at_quality(_image(), "jpeg", 10).data, "jpeg")
  hi = codec_setting.features(
      codecs.encode_at_quality(_image(), "jpeg", 90).data, "jpeg")
  assert np.all(lo >= hi) and lo.mean() > hi.mean() + 0.3


def test_exif_thumbnail_tables_are_skipped():
  """An APP1 segment placed before the DQT must not be read as a table."""
  rgb = np.stack([_image()] * 3, -1)
  exif = Image.Exif()
  exif[270] = "x" * 40 + "\xff\xdb"  # a DQT-like marker inside APP1
  buf = io.BytesIO()
  Image.fromarray(rgb).save(buf, format="JPEG", quality=30,
                            exif=exif.tobytes())
  data = buf.getvalue()
  table = codec_setting.jpeg_luma_table(data)
  assert sorted(table.tolist()) == sorted(
      Image.open(io.BytesIO(data)).quantization[0])
  np.testing.assert_allclose(
      graph_refine.jpeg_setting_in_graph(tf.constant(data)).numpy(),
      codec_setting.features(data, "jpeg"), atol=1e-6)


def test_jp2_features_from_rate():
  enc = codecs.encode_at_bpp(_image(64, 64), "jp2", 0.5)
  f = codec_setting.features(enc.data, "jp2", (64, 64))
  assert f.shape == (1,)
  assert f[0] == pytest.approx(np.log2(enc.bpp) / 4, rel=1e-6)
  with pytest.raises(ValueError):
    codec_setting.features(enc.data, "jp2")


@pytest.mark.parametrize("data", [b"", b"not a jpeg", b"\xff\xd8\xff\xe0"])
def test_bad_headers_raise(data):
  with pytest.raises(errors.BitstreamError):
    codec_setting.jpeg_luma_table(data, name="x.jpg")


def test_sizes():
  assert codec_setting.SIZE == {"jpeg": 64, "jp2": 1}


def test_for_model(tmp_path):
  img = np.random.default_rng(0).integers(0, 256, (24, 32)).astype(np.uint8)
  enc = codecs.encode_at_quality(img, "jpeg", 30)
  path = tmp_path / "x.jpg"
  path.write_bytes(enc.data)
  assert codec_setting.for_model(None, None, "jpeg", 0, (24, 32)) is None
  got = codec_setting.for_model(None, str(path), "jpeg", 64, (24, 32))
  np.testing.assert_array_equal(
      got, codec_setting.features(enc.data, "jpeg", (24, 32)))
  assert got.dtype == np.float32
  np.testing.assert_array_equal(
      codec_setting.for_model(list(got), None, "jpeg", 64, (24, 32)), got)
  with pytest.raises(errors.HbdError, match="pass setting= or source="):
    codec_setting.for_model(None, None, "jpeg", 64, (24, 32), "m")
  with pytest.raises(errors.HbdError, match="setting has 3 values"):
    codec_setting.for_model([1, 2, 3], None, "jpeg", 64, (24, 32), "m")
