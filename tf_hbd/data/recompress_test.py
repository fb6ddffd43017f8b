"""Tests of tf_hbd.data.recompress (the on-the-fly training stream)."""

import numpy as np
import pytest

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import patches
from tf_hbd.data import recompress


def _images(n=3, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    h, w = 40 + 8 * i, 48
    yy, xx = np.mgrid[0:h, 0:w]
    out.append(np.clip(128 + 60 * np.sin(xx / (3 + i)) + rng.normal(0, 10, (
        h, w)), 0, 255).astype(np.uint8))
  return out


def _stream(codec="jpeg", **kw):
  kw.setdefault("crop", 32)
  cfg = recompress.RecompressConfig(codec=codec, patch_size=8, **kw)
  return recompress.RecompressStream(_images(), cfg, batch_size=16, seed=5)


def test_epoch_is_a_pure_function_of_seed_and_epoch():
  s = _stream()
  a, b = s.epoch_arrays(2), s.epoch_arrays(2)
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  c = s.epoch_arrays(3)
  assert not np.array_equal(a["context"], c["context"])  # fresh each epoch
  assert len(a["position"]) == s.blocks_per_epoch


def test_blocks_are_the_decoded_images_blocks_with_original_targets():
  s = _stream(synthetic_fraction=0.0, tone_fraction=0.0, flip=False,
              crop=0)
  arrays = s.epoch_arrays(0)
  # Without shuffling noise: every target patch must be a patch of some
  # source image, and the own patch (replicate: position 4) differs from
  # the target only by the codec's error.
  own = arrays["context"][:, 4].astype(int)
  err = np.abs(own - arrays["target"].astype(int)).mean()
  assert 0 < err < 40
  assert np.all(arrays["position"] == 4)
  feats = arrays["setting"]
  assert feats.shape == (len(own), codec_setting.SIZE["jpeg"])
  assert np.unique(feats, axis=0).shape[0] == 3  # one setting per image


def test_paper_rule_positions():
  s = _stream(strategy="paper", synthetic_fraction=0.0)
  pos = s.epoch_arrays(0)["position"]
  assert set(np.unique(pos)) == set(range(9))


def test_jpeg_qualities_follow_the_mixture():
  s = _stream(quality_mixture=((1.0, 90, 95),))
  feats = s.epoch_arrays(0)["setting"]
  assert feats.mean(axis=1).max() < 0.45  # fine tables only
  s = _stream(quality_mixture=((1.0, 5, 6),))
  assert s.epoch_arrays(0)["setting"].mean(axis=1).min() > 0.75


def test_jp2_stream():
  # Tiny test images carry ~1 bpp of codestream header, so compare rates.
  low = _stream(codec="jp2", bpp_range=(0.1, 0.2)).epoch_arrays(0)
  high = _stream(codec="jp2", bpp_range=(3.0, 4.0)).epoch_arrays(0)
  assert low["setting"].shape[1] == 1
  assert low["setting"].max() < high["setting"].min()
  err = lambda a: np.abs(a["context"][:, 4].astype(int)
                         - a["target"].astype(int)).mean()
  assert err(low) > err(high)


def test_resume_is_exact_across_an_epoch_boundary():
  s = _stream()
  full = []
  for i, b in enumerate(s.numpy_batches(0)):
    full.append(b)
    if i == s.batches_per_epoch + 2:
      break
  start = s.batches_per_epoch - 1
  resumed = []
  for i, b in enumerate(s.numpy_batches(start)):
    resumed.append(b)
    if i == 3:
      break
  for a, b in zip(full[start:], resumed):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_tf_dataset_batches():
  s = _stream()
  batch = next(iter(s.batches(1)))
  assert batch["context"].shape == (16, 9, 8, 8)
  assert batch["context"].dtype.name == "float32"
  assert 0.0 <= float(batch["context"].numpy().min())
  assert float(batch["target"].numpy().max()) <= 1.0
  ref = next(s.numpy_batches(1))
  np.testing.assert_allclose(batch["target"].numpy() * 255, ref["target"],
                             atol=1e-3)


def test_synthetic_and_tone_content_present():
  s = _stream(synthetic_fraction=1.0, tone_fraction=1.0)
  tgt = s.epoch_arrays(0)["target"]
  flat = (tgt.max(axis=(1, 2)) - tgt.min(axis=(1, 2))) == 0
  assert flat.mean() > 0.05  # flat blocks exist
  assert (tgt.max(axis=(1, 2)) <= 80).mean() > 0.1  # dark blocks exist


def test_bad_inputs():
  cfg = recompress.RecompressConfig(patch_size=8)
  with pytest.raises(ValueError, match="no training images"):
    recompress.RecompressStream([], cfg, 4)
  with pytest.raises(ValueError, match="at least 8x8"):
    recompress.RecompressStream([np.zeros((4, 40), np.uint8)], cfg, 4)
  with pytest.raises(ValueError, match="fewer than one batch"):
    recompress.RecompressStream([np.zeros((8, 8), np.uint8)],
                                recompress.RecompressConfig(
                                    patch_size=8, synthetic_fraction=0), 4)


def test_parse_mixture():
  assert recompress.parse_mixture("0.6:5-40,0.4:41-100") == (
      (0.6, 5, 40), (0.4, 41, 100))
  for bad in ("", "0.5:40-5", "x", "0.5:0-10", "0:5-9"):
    with pytest.raises(ValueError):
      recompress.parse_mixture(bad)


def test_parse_bpp_range():
  assert recompress.parse_bpp_range("0.15-1") == (0.15, 1.0)
  assert recompress.parse_bpp_range("0.37-0.37") == (0.37, 0.37)
  for bad in ("", "0.3", "0-1", "1-0.5", "a-b", "0.1-9", "0.1-0.2-0.3"):
    with pytest.raises(ValueError, match="JPEG 2000 rate range"):
      recompress.parse_bpp_range(bad)


def test_jp2_rates_follow_the_range():
  # The drawn rate reaches the codec: the achieved rate (what the setting
  # reports) of every image lies near its range, and two disjoint ranges
  # give disjoint settings.
  rng = np.random.default_rng(3)
  images = [np.clip(128 + 50 * np.sin(np.arange(96) / (2 + i))[None]
                    + rng.normal(0, 20, (96, 96)), 0, 255).astype(np.uint8)
            for i in range(4)]

  def rates(lo, hi):
    cfg = recompress.RecompressConfig(codec="jp2", patch_size=8, crop=0,
                                      bpp_range=(lo, hi),
                                      synthetic_fraction=0.0,
                                      tone_fraction=0.0)
    s = recompress.RecompressStream(images, cfg, batch_size=16, seed=1)
    feats = np.unique(s.epoch_arrays(0)["setting"][:, 0].astype(np.float64))
    return 2.0 ** (4.0 * feats)  # codec_setting: log2(bpp) / 4

  low, high = rates(0.3, 0.4), rates(1.5, 2.0)
  assert np.all((low > 0.3 * 0.9) & (low < 0.4 * 1.1)), low
  assert np.all((high > 1.5 * 0.9) & (high < 2.0 * 1.1)), high


def _phases(arrays, images):
  """(y mod 8, x mod 8) of where each target patch lies in its source."""
  windows = [np.lib.stride_tricks.sliding_window_view(im, (8, 8))
             for im in images]
  out = set()
  for tgt in arrays["target"]:
    for win in windows:
      hit = np.argwhere(np.all(win == tgt, axis=(2, 3)))
      if len(hit):
        out.add((int(hit[0][0]) % 8, int(hit[0][1]) % 8))
        break
    else:
      raise AssertionError("a target patch is in no source image")
  return out


def test_grid_offset_cuts_blocks_off_the_codec_grid():
  kw = dict(codec="jp2", crop=0, flip=False, synthetic_fraction=0.0,
            tone_fraction=0.0, bpp_range=(0.5, 1.0))
  plain = _stream(**kw)
  assert _phases(plain.epoch_arrays(0), _images()) == {(0, 0)}
  s = _stream(grid_offset=True, **kw)
  # An (H - 8) x (W - 8) window of each image: 4x5 + 5x5 + 6x5 blocks.
  assert s.blocks_per_epoch == 20 + 25 + 30
  phases = set()
  for epoch in range(3):
    arrays = s.epoch_arrays(epoch)
    assert len(arrays["target"]) == s.blocks_per_epoch
    phases |= _phases(arrays, _images())
    # The context is the decoded image at the same offset as the target.
    err = np.abs(arrays["context"][:, 4].astype(int)
                 - arrays["target"].astype(int)).mean()
    assert 0 < err < 20
  assert len(phases) >= 5


def test_grid_offset_is_for_jp2_only():
  with pytest.raises(ValueError, match="JPEG 2000 only"):
    _stream(codec="jpeg", grid_offset=True)


def test_codec_error_is_the_images_error():
  s = _stream(codec="jp2", crop=0, flip=False, synthetic_fraction=0.0,
              tone_fraction=0.0, codec_error=True)
  arrays = s.epoch_arrays(0)
  err = arrays["codec_error"]
  assert err.shape == (s.blocks_per_epoch, 2) and err.dtype == np.float32
  rows = np.unique(err, axis=0)
  assert len(rows) == 3  # one per image
  for mae, mse in rows:
    mine = np.all(err == (mae, mse), axis=1)
    diff = (arrays["context"][mine, 4].astype(np.float64)
            - arrays["target"][mine]) / 255.0
    # The images are multiples of 8: their blocks tile them exactly.
    np.testing.assert_allclose(np.mean(diff**2), mse, rtol=1e-5)
    np.testing.assert_allclose(np.mean(np.abs(diff)), mae, rtol=1e-5)
  batch = next(iter(s.batches(0)))
  assert batch["codec_error"].shape == (16, 2)
  assert "codec_error" not in next(iter(_stream().batches(0)))
