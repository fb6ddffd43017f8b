"""Tests of tf_hbd.inference.guards."""

import numpy as np
import tensorflow as tf

from tf_hbd.model import decoder
from tf_hbd.inference import guards
from tf_hbd.inference import refine


def test_keep_flat_context():
  rng = np.random.default_rng(0)
  ctx = rng.uniform(0, 1, (4, 9, 2, 2)).astype(np.float32)
  ctx[1] = 0.25  # constant block
  ctx[3] = 0.0
  ctx[3, 0, 0, 0] = 1e-3  # one value differs: not constant
  pos = np.array([4, 0, 8, 4], np.int32)
  pred = rng.uniform(0, 1, (4, 4)).astype(np.float32)
  out = guards.keep_flat_context(tf.constant(ctx), tf.constant(pos),
                                 tf.constant(pred)).numpy()
  np.testing.assert_array_equal(out[[0, 2, 3]], pred[[0, 2, 3]])
  np.testing.assert_array_equal(out[1], np.full(4, 0.25, np.float32))
  out3 = guards.keep_flat_context(tf.constant(ctx), tf.constant(pos),
                                  tf.constant(pred.reshape(4, 2, 2))).numpy()
  np.testing.assert_array_equal(out3.reshape(4, 4), out)


def test_refine_keeps_flat_images_exactly():
  m = decoder.build_decoder(units=6, patch_size=4, K=2)
  rng = np.random.default_rng(1)
  for v in m.trainable_variables:
    v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
  for level in (0, 7, 255):
    flat = np.full((13, 18), level, np.uint8)
    np.testing.assert_array_equal(refine.refine(flat, m), flat)
    assert np.any(refine.refine(flat, m, guard=False) != flat)
  # A non-flat image is refined as before away from constant blocks.
  img = rng.integers(0, 256, (12, 16)).astype(np.uint8)
  np.testing.assert_array_equal(refine.refine(img, m),
                                refine.refine(img, m, guard=False))


def test_passthrough_thresholds():
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  img = np.random.default_rng(0).integers(0, 256, (16, 16)).astype(np.uint8)
  feats = {q: codec_setting.features(
      codecs.encode_at_quality(img, "jpeg", q).data, "jpeg")
           for q in (50, 90, 95)}
  noise = {q: float(guards.jpeg_noise_rms(f)) for q, f in feats.items()}
  assert 3.7 < noise[90] < 4.0 and 1.8 < noise[95] < 2.1
  assert noise[50] > noise[90] > noise[95]
  assert bool(guards.passthrough("jpeg", feats[95], jpeg_min_noise=3.0))
  assert not bool(guards.passthrough("jpeg", feats[90], jpeg_min_noise=3.0))
  assert not bool(guards.passthrough("jpeg", feats[95]))  # 0: never
  jp2 = codec_setting.features_from_bpp(1.5)
  assert bool(guards.passthrough("jp2", jp2, jp2_max_bpp=1.5))
  assert not bool(guards.passthrough("jp2", jp2, jp2_max_bpp=1.6))



def test_jpeg_coded_noise_rms_and_passthrough():
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import jpeg_constraint  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  yy, xx = np.mgrid[0:40, 0:44]
  ramp = np.round(40 + 2.5 * xx + 0.5 * yy).astype(np.uint8)
  noisy = rng.integers(0, 256, (40, 44)).astype(np.uint8)
  for img in (ramp, noisy):
    dec, enc = codecs.roundtrip(img, "jpeg", quality=80)
    st = codec_setting.features(enc.data, "jpeg")
    got = float(guards.jpeg_coded_noise_rms(tf.constant(dec), st))
    # Independent float64 computation: per-block DCT by the matrix, edge pad.
    q = jpeg_constraint.table_from_setting(st).numpy().astype(np.float64)
    c = jpeg_constraint.dct_matrix().astype(np.float64)
    x = np.pad(dec.astype(np.float64), ((0, (-40) % 8), (0, (-44) % 8)),
               mode="edge") - 128.0
    total, count = 0.0, 0
    for i in range(0, x.shape[0], 8):
      for j in range(0, x.shape[1], 8):
        k = np.round(c @ x[i:i + 8, j:j + 8] @ c.T / q)
        total += np.sum((k != 0) * q ** 2 / 12.0)
        count += 64
    np.testing.assert_allclose(got, np.sqrt(total / count), rtol=1e-4)
    if img is ramp:
      assert got < 0.6
      assert bool(guards.passthrough("jpeg", st, jpeg_min_coded_noise=0.6,
                                     decoded=tf.constant(dec)))
    else:
      assert got > 2.0
      assert not bool(guards.passthrough(
          "jpeg", st, jpeg_min_coded_noise=0.6, decoded=tf.constant(dec)))
  assert not bool(guards.passthrough("jpeg", st))  # every threshold 0: never


def _flat_fraction_loops(img):
  h, w = img.shape
  x = np.pad(img, ((0, (-h) % 8), (0, (-w) % 8)), mode="edge")
  flags = [np.ptp(x[i:i + 8, j:j + 8]) == 0
           for i in range(0, x.shape[0], 8) for j in range(0, x.shape[1], 8)]
  return sum(flags) / len(flags)


def _activity_loops(img):
  x = img.astype(np.float64)
  total, count = 0.0, 0
  for i in range(1, x.shape[0] - 1):
    for j in range(1, x.shape[1] - 1):
      total += abs(4 * x[i, j] - x[i - 1, j] - x[i + 1, j] - x[i, j - 1] -
                   x[i, j + 1])
      count += 1
  return total / count if count else 0.0


def test_jp2_content_statistics_and_passthrough():
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(6)
  graphic = np.full((21, 30), 200, np.uint8)  # 6 of 12 tiles constant
  graphic[:, 16:] = rng.integers(0, 256, (21, 14))
  yy, xx = np.mgrid[0:21, 0:30]
  ramp = np.round(30 + 3 * xx + yy).astype(np.uint8)  # activity ~0 (rounding)
  noisy = rng.integers(0, 256, (21, 30)).astype(np.uint8)
  want_flat = {"graphic": 0.5, "ramp": 0.0, "noisy": 0.0}
  for name, img in (("graphic", graphic), ("ramp", ramp), ("noisy", noisy)):
    for shape in (img.shape, img.shape + (1,)):
      x = tf.constant(img.reshape(shape))
      frac = float(guards.flat_tile_fraction(x))
      assert frac == _flat_fraction_loops(img) == want_flat[name]
      np.testing.assert_allclose(float(guards.laplacian_activity(x)),
                                 _activity_loops(img), rtol=1e-12)
  assert float(guards.laplacian_activity(tf.constant(ramp))) < 0.5
  assert float(guards.laplacian_activity(tf.constant(noisy))) > 50
  assert float(guards.laplacian_activity(tf.zeros((2, 9), tf.uint8))) == 0.0
  st = codec_setting.features_from_bpp(0.37)
  dec = lambda a: tf.constant(a)
  assert bool(guards.passthrough("jp2", st, decoded=dec(graphic),
                                 jp2_max_flat_fraction=0.5))
  assert not bool(guards.passthrough("jp2", st, decoded=dec(graphic),
                                     jp2_max_flat_fraction=0.51))
  assert bool(guards.passthrough("jp2", st, decoded=dec(ramp),
                                 jp2_min_activity_per_bpp=4.0))
  assert not bool(guards.passthrough("jp2", st, decoded=dec(noisy),
                                     jp2_min_activity_per_bpp=4.0,
                                     jp2_max_flat_fraction=0.5))
  # The activity threshold scales with the rate: the noisy image passes
  # through at a rate high enough for its activity, not below it.
  act = _activity_loops(noisy)
  for bpp, want in ((act / 10.0 * 1.01, True), (act / 10.0 * 0.99, False)):
    assert bool(guards.passthrough(
        "jp2", codec_setting.features_from_bpp(bpp), decoded=dec(noisy),
        jp2_min_activity_per_bpp=10.0)) == want
  # Every threshold 0: never.
  assert not bool(guards.passthrough("jp2", st, decoded=dec(graphic)))
  try:
    guards.passthrough("jp2", st, jp2_min_activity_per_bpp=1.0)
    raise AssertionError("expected ValueError without the decoded image")
  except ValueError:
    pass
