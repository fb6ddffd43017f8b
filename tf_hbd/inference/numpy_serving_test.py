"""Tests of tf_hbd.inference.numpy_serving: the NumPy runtime equals the TF runtime."""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from unittest import mock

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.model import cells
from tf_hbd.model import decoder as decoder_lib
from tf_hbd import errors
from tf_hbd.evaluation import golden
from tf_hbd.codecs import jpeg_constraint
from tf_hbd.evaluation import metrics
from tf_hbd.inference import guards
from tf_hbd.inference import numpy_serving
from tf_hbd.data import sample_images
from tf_hbd.inference import serving

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN_FILE = os.path.join(_ROOT, "tests", "golden.json")


def _decoder(cell="lstm", setting_size=0, **kwargs):
  """A small decoder whose every weight is non-zero (no identity output)."""
  model = decoder_lib.build_decoder(cell, units=16, patch_size=8, K=3,
                                    seed=5, setting_size=setting_size,
                                    **kwargs)
  model(model.dummy_inputs())
  rng = np.random.default_rng(1)
  for v in model.variables:
    v.assign(rng.normal(0, 0.2 if v.shape.rank == 2 else 0.05,
                        v.shape).astype(np.float32))
  return model


# The LSTM gate formulas (`numpy_serving.GATES`): the CPU picks one, the
# tests run every one.
_GATES = sorted(numpy_serving._GATE_FORMULAS)  # pylint: disable=protected-access

# Fractions of pixels one level apart allowed between the runtimes: measured
# 0.2 % (shipped JPEG decoder) where TF rounds to nearest, 2.6 % where it
# truncates (`cells.bfloat16_matmul_rounding`: TF 2.14 truncates its
# bfloat16 sums on CPUs without AVX512-BF16; the NumPy runtime rounds to
# nearest, as the shipped decoders were trained).
_SPREAD = 10.0 if cells.bfloat16_matmul_rounding(
    64, 96, 64)["off_nearest"] > 0.1 else 1.0


def _assert_close(test, fast, slow, max_differing=0.002):
  """At most one level apart, on a small fraction of the pixels."""
  diff = np.abs(fast.astype(int) - slow.astype(int))
  test.assertLessEqual(diff.max(), 1)
  test.assertLessEqual(np.mean(diff > 0), max_differing)


class ShippedModelsTest(tf.test.TestCase):
  """The shipped decoders: NumPy path = TF path, and the golden figures."""

  def test_numpy_runtime_is_the_default_and_matches_tf_and_golden(self):
    """With every LSTM gate formula (`numpy_serving.GATES`)."""
    with open(GOLDEN_FILE) as f:
      expected = json.load(f)
    for codec in ("jpeg", "jp2"):
      slow = numpy_serving.load_pretrained(codec, runtime="tf")
      self.assertIsInstance(slow, serving.ServedModel)
      for gates in _GATES:
        with mock.patch.object(numpy_serving, "GATES", gates):
          fast = numpy_serving.load_pretrained(codec)
        self.assertIsInstance(fast, numpy_serving.NumpyModel)
        self.assertEqual(fast.metadata, slow.metadata)
        self._check_golden_crops(codec, fast, slow, expected, gates)

  def _check_golden_crops(self, codec, fast, slow, expected, gates):
    for name, img in golden.images().items():
      enc = codecs.encode(img, codec, bpp=golden.TARGET_BPP)
      decoded = codecs.decode(enc)
      st = (codec_setting.features(enc.data, codec, decoded.shape)
            if fast.setting_size else None)
      a, b = fast.refine(decoded, setting=st), slow.refine(decoded,
                                                           setting=st)
      # bfloat16 products (the shipped JPEG decoder) put ~0.2 % of pixels
      # on the other side of a rounding boundary (BUILD.md).
      _assert_close(self, a, b, max_differing=0.005 * _SPREAD)
      key = f"{name}/{serving.PRETRAINED[codec]}"
      self.assertAlmostEqual(float(metrics.psnr(img, a)),
                             expected[key]["psnr"],
                             delta=golden.PSNR_TOLERANCE_DB,
                             msg=(key, gates))
      # Never worse; the JPEG 2000 guards may return a smooth crop as is.
      self.assertGreaterEqual(metrics.psnr(img, a),
                              metrics.psnr(img, decoded))
      if name == "camera":  # where both shipped decoders act
        self.assertGreater(metrics.psnr(img, a), metrics.psnr(img, decoded))
      crop = decoded[:40, :56, None]  # (H, W, 1), another K
      a = fast.refine(crop, K=2, setting=st)
      self.assertEqual(a.shape, crop.shape)
      _assert_close(self, a, slow.refine(crop, K=2, setting=st),
                    max_differing=0.01 * _SPREAD)

  def test_enhance_imports_no_tensorflow(self):
    tmp = self.create_tempdir().full_path
    jpg = os.path.join(tmp, "x.jpg")
    with open(jpg, "wb") as f:
      f.write(codecs.encode(sample_images.load_sample("camera")[:64, :80],
                            "jpeg", quality=20).data)
    code = ("import sys\n"
            "from tf_hbd.inference import cli\n"
            "rc = cli.main(['enhance', sys.argv[1], '-o', sys.argv[2]])\n"
            "print(rc, 'tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, jpg,
                          os.path.join(tmp, "out")], check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=_ROOT))
    self.assertEqual(out.stdout.split()[-2:], ["0", "False"])
    self.assertTrue(os.path.exists(os.path.join(tmp, "out", "x.png")))

  def test_pretrained_table_is_serving_s(self):
    self.assertEqual(numpy_serving.PRETRAINED, serving.PRETRAINED)
    self.assertEqual(numpy_serving.METADATA_FILE, serving.METADATA_FILE)
    from tf_hbd.inference import graph_refine  # pylint: disable=g-import-not-at-top
    self.assertEqual(numpy_serving.MAX_PIXELS, graph_refine.DEFAULT_MAX_PIXELS)
    for codec in ("jpeg", "jp2"):
      self.assertEqual(numpy_serving.pretrained_dir(codec),
                       serving.pretrained_dir(codec))


class DecoderTest(tf.test.TestCase):
  """The NumPy forward pass of every supported cell and option."""

  def test_forward_matches_the_keras_model(self):
    variants = {
        "lstm": _decoder("lstm"),
        "lstm_centred_bias_untied_setting": _decoder(
            "lstm", center_inputs=True, embed_bias=True, setting_size=3,
            cell_options={"tied": False}),
        "lstm_no_residual_no_position": _decoder(
            "lstm", residual=False, use_position=False),
        "gru": _decoder("gru"),
        "gru_untied": _decoder("gru", cell_options={"tied": False}),
        "elman_relu": _decoder("elman", cell_options={"activation": "relu"}),
        "elman_sigmoid": _decoder("elman",
                                  cell_options={"activation": "sigmoid"}),
        "mlp": _decoder("mlp"),
        "lstm_bfloat16_products": _decoder("lstm", matmul_dtype="bfloat16",
                                           center_inputs=True),
        "gru_bfloat16_products": _decoder("gru", matmul_dtype="bfloat16"),
    }
    rng = np.random.default_rng(2)
    ctx = rng.uniform(0, 1, (50, 9, 8, 8)).astype(np.float32)
    pos = rng.integers(0, 9, 50).astype(np.int32)
    runs = [(name, model, gates) for name, model in variants.items()
            for gates in (_GATES if name.startswith("lstm") else [None])]
    for name, model, gates in runs:
      spec, weights = numpy_serving.spec_from_model(model)
      with mock.patch.object(numpy_serving, "GATES", gates):
        fast = numpy_serving._Decoder(  # pylint: disable=protected-access
            spec, weights)
      st = rng.uniform(0, 1, model.setting_size).astype(np.float32)
      for k in (1, 2, 5):
        want = model.predict_last(
            ctx, pos, K=k, setting=np.tile(st[None], [50, 1])
            if model.setting_size else None).numpy()
        got = fast.predict_last(ctx.reshape(50, -1), pos, k,
                                st[None] @ weights["S"]
                                if model.setting_size else None)
        # bfloat16: a product can round to the neighbouring bfloat16
        # (float32 sums in another order; TF truncating), 2^-8 relative.
        self.assertAllClose(got, want, rtol=0, msg=(name, gates),
                            atol=5e-3 * min(_SPREAD, 4.0)
                            if model.matmul_dtype else 2e-5)
    sne = decoder_lib.build_decoder("lstm", units=8, K=2, sne=True)
    self.assertIsNone(numpy_serving.spec_from_model(sne))
    f64 = decoder_lib.build_decoder("lstm", units=8, K=2, dtype="float64")
    self.assertIsNone(numpy_serving.spec_from_model(f64))
    delta = decoder_lib.build_decoder("delta", units=8, K=2)
    self.assertIsNone(numpy_serving.spec_from_model(delta))


def test_jp2_content_passthrough_equals_tf():
  from tf_hbd.inference import guards  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(7)
  yy, xx = np.mgrid[0:37, 0:50]
  ramp = np.round(20 + 2 * xx + yy).astype(np.uint8)
  graphic = np.full((37, 50), 9, np.uint8)
  graphic[5:20, 10:30] = 240
  noisy = rng.integers(0, 256, (37, 50)).astype(np.uint8)
  st = codec_setting.features_from_bpp(0.5)
  decisions = set()
  for img in (ramp, graphic, noisy):
    dec, _ = codecs.roundtrip(img, "jp2", bpp=0.5)
    for x in (img, dec):
      assert numpy_serving.flat_tile_fraction(x) == float(
          guards.flat_tile_fraction(tf.constant(x)))
      assert numpy_serving.laplacian_activity(x) == float(
          guards.laplacian_activity(tf.constant(x)))
      for opts in ({"jp2_max_flat_fraction": 0.3},
                   {"jp2_min_activity_per_bpp": 4.0},
                   {"jp2_max_flat_fraction": 0.3,
                    "jp2_min_activity_per_bpp": 4.0,
                    "jp2_max_bpp": 1.0}):
        got = numpy_serving._passthrough(  # pylint: disable=protected-access
            "jp2", np.asarray(st), opts, x)
        assert got == bool(guards.passthrough(
            "jp2", st, decoded=tf.constant(x), **opts))
        decisions.add(got)
  assert decisions == {True, False}


class ExportTest(tf.test.TestCase):
  """Whole exports: the NumPy runtime equals the TF runtime."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tf.compat.v1.test.get_temp_dir()
    img = sample_images.load_sample("camera")[100:181, 200:299]  # 81 x 99
    cls.original = img
    cls.decoded, enc = codecs.roundtrip(img, "jpeg", quality=20)
    cls.setting = codec_setting.features(enc.data, "jpeg")
    flat = np.full((24, 40), 90, np.uint8)
    flat[:, 24:] = 200  # flat blocks on both sides, an edge between
    cls.flat = flat
    cls.lstm_dir = os.path.join(cls.tmp, "lstm")
    serving.export_serving(_decoder("lstm"), cls.lstm_dir, "jpeg",
                           batch_size=64)

  def _export(self, name, model, codec="jpeg", **kwargs):
    path = os.path.join(self.tmp, name)
    serving.export_serving(model, path, codec, batch_size=64, **kwargs)
    return path

  def test_whole_image_flat_guard_and_k_match_tf(self):
    fast = numpy_serving.load(self.lstm_dir)
    self.assertIsInstance(fast, numpy_serving.NumpyModel)
    self.assertTrue(fast.metadata["flat_guard"])
    slow = serving.load(self.lstm_dir)
    for k in (None, 1, 5):
      for img in (self.decoded, self.flat, self.decoded[:, :, None]):
        _assert_close(self, fast.refine(img, K=k), slow.refine(img, K=k))
    out = fast.refine(self.flat)
    self.assertAllEqual(out[:, :8], self.flat[:, :8])  # flat 3x3 blocks
    self.assertGreater(np.abs(out.astype(int) - self.flat).max(), 0)
    # Chunks and threads change nothing.
    serial = fast.refine(self.decoded)
    with mock.patch.object(numpy_serving, "CHUNK", 7), \
        mock.patch.object(numpy_serving, "THREADS", 2):
      self.assertAllEqual(fast.refine(self.decoded), serial)

  def test_setting_projection_passthrough_and_ensemble_match_tf(self):
    model = _decoder("lstm", setting_size=64)
    path = self._export("setting", model,
                        passthrough={"jpeg_min_noise": 3.0})
    fast, slow = numpy_serving.load(path), serving.load(path)
    self.assertIsInstance(fast, numpy_serving.NumpyModel)
    self.assertTrue(fast.metadata["jpeg_projection"])
    with self.assertRaisesRegex(errors.HbdError, "codec setting"):
      fast.refine(self.decoded)
    a = fast.refine(self.decoded, setting=self.setting)
    _assert_close(self, a, slow.refine(self.decoded, setting=self.setting))
    raw = numpy_serving.load(self._export("setting_raw", model,
                                          project=False))
    raw_out = raw.refine(self.decoded, setting=self.setting)
    self.assertGreater(np.abs(raw_out.astype(int) - a).max(), 0)
    expect = jpeg_constraint.project(
        raw_out, self.decoded,
        jpeg_constraint.table_from_setting(self.setting)).numpy()
    _assert_close(self, a, expect)
    # Ensemble: the mean of the 8 symmetries, as the TF runtime.
    _assert_close(self, fast.refine(self.decoded, setting=self.setting,
                                    ensemble=True),
                  slow.refine(self.decoded, setting=self.setting,
                              ensemble=True))
    # A source file gives the setting; fine JPEGs pass through.
    src = os.path.join(self.get_temp_dir(), "fine.jpg")
    fine, enc = codecs.roundtrip(self.original, "jpeg", quality=95)
    with open(src, "wb") as f:
      f.write(enc.data)
    self.assertAllEqual(fast.refine(fine, source=src), fine)
    self.assertAllEqual(slow.refine(fine, source=src), fine)

  def test_jp2_setting_and_passthrough_match_tf(self):
    model = _decoder("lstm", setting_size=1)
    path = self._export("jp2_setting", model, codec="jp2",
                        passthrough={"jp2_max_bpp": 1.0})
    fast, slow = numpy_serving.load(path), serving.load(path)
    for bpp in (0.3, 1.5):
      dec, enc = codecs.roundtrip(self.original, "jp2", bpp=bpp)
      st = codec_setting.features(enc.data, "jp2", dec.shape)
      a = fast.refine(dec, setting=st)
      _assert_close(self, a, slow.refine(dec, setting=st))
      self.assertEqual(bool(np.all(a == dec)), bpp > 1.0)

  def test_jp2_content_guards_match_tf(self):
    model = _decoder("lstm", setting_size=1)
    dec, enc = codecs.roundtrip(self.original, "jp2", bpp=0.3)
    st = codec_setting.features(enc.data, "jp2", dec.shape)
    bpp = 2.0 ** (4.0 * float(st[0]))
    ratio = numpy_serving.laplacian_activity(dec) / bpp
    # The camera crop sits in the middle of the ramp: weight 0.5.
    path = self._export("jp2_content", model, codec="jp2", passthrough={
        "jp2_max_flat_fraction": 0.5, "jp2_min_activity_per_bpp": 0.5 * ratio,
        "jp2_full_activity_per_bpp": 1.5 * ratio})
    raw = numpy_serving.load(self._export("jp2_content_raw", model,
                                          codec="jp2"))
    fast, slow = numpy_serving.load(path), serving.load(path)
    self.assertIsInstance(fast, numpy_serving.NumpyModel)
    w = numpy_serving.activity_weight(dec, st, 0.5 * ratio, 1.5 * ratio)
    self.assertAllClose(w, 0.5, atol=1e-6)
    self.assertAllClose(w, guards.activity_weight(
        tf.constant(dec), st, 0.5 * ratio, 1.5 * ratio), atol=1e-7)
    full = raw.refine(dec, setting=st)
    self.assertGreater(np.abs(full.astype(int) - dec).max(), 1)
    a = fast.refine(dec, setting=st)
    _assert_close(self, a, slow.refine(dec, setting=st))
    want = np.round(dec + w * (full.astype(np.float32) - dec))
    _assert_close(self, a, want.astype(np.uint8))
    # A mostly constant image (graphics) and a low-activity one pass through.
    for img in (self.flat, (self.original // 8 + 100).astype(np.uint8)):
      d, e = codecs.roundtrip(img, "jp2", bpp=0.3)
      s = codec_setting.features(e.data, "jp2", d.shape)
      self.assertAllEqual(fast.refine(d, setting=s), d)
      self.assertAllEqual(slow.refine(d, setting=s), d)

  def test_jp2_grid_shifts_average_shifted_passes_and_match_tf(self):
    model = _decoder("lstm", setting_size=1)
    dec, enc = codecs.roundtrip(self.original, "jp2", bpp=0.3)
    st = codec_setting.features(enc.data, "jp2", dec.shape)
    ratio = numpy_serving.laplacian_activity(dec) / 2.0 ** (4.0 * float(st[0]))
    path = self._export("jp2_shifts", model, codec="jp2", passthrough={
        "jp2_max_bpp": 0.7, "jp2_min_activity_per_bpp": 0.5 * ratio,
        "jp2_full_activity_per_bpp": 1.5 * ratio})  # a ramp weight of 0.5
    fast, slow = numpy_serving.load(path), serving.load(path)
    self.assertIsInstance(fast, numpy_serving.NumpyModel)
    plain = fast.refine(dec, setting=st)
    self.assertAllEqual(fast.refine(dec, setting=st, shifts=1), plain)
    for shifts in (2, 4):
      got = fast.refine(dec, setting=st, shifts=shifts)
      total = np.zeros(dec.shape)
      for dy, dx in numpy_serving.grid_offsets(shifts, 8):
        one = fast.refine(numpy_serving.shift_image(dec, (dy, dx)),
                          setting=st)  # guarded as a single refinement
        total += one[dy:, dx:]
      self.assertAllEqual(got, np.round(total / shifts))
      self.assertGreater(np.abs(got.astype(int) - plain).max(), 0)
      _assert_close(self, got, slow.refine(dec, setting=st, shifts=shifts))
    # With the symmetries: 8 passes per offset, as the TF runtime.
    both = fast.refine(dec[:40, :48, None], setting=st, shifts=2,
                       ensemble=True)
    self.assertEqual(both.shape, (40, 48, 1))
    _assert_close(self, both, slow.refine(dec[:40, :48, None], setting=st,
                                          shifts=2, ensemble=True))
    # The export's grid_shifts is the default; images coded finely still
    # pass through.
    fast.metadata["grid_shifts"] = 4
    self.assertAllEqual(fast.refine(dec, setting=st),
                        fast.refine(dec, setting=st, shifts=4))
    fine, enc = codecs.roundtrip(self.original, "jp2", bpp=1.0)
    self.assertAllEqual(fast.refine(fine, setting=codec_setting.features(
        enc.data, "jp2", fine.shape)), fine)

  def test_grid_shifts_checks_and_shifted_images(self):
    self.assertEqual(numpy_serving.grid_offsets(1, 8), ((0, 0),))
    self.assertEqual(numpy_serving.grid_offsets(2, 8), ((0, 0), (4, 4)))
    self.assertEqual(set(numpy_serving.grid_offsets(4, 8)),
                     {(0, 0), (0, 4), (4, 0), (4, 4)})
    for bad in (0, 3, 8):
      with self.assertRaisesRegex(errors.HbdError, "shifts must be one of"):
        numpy_serving.check_shifts(bad, "jp2")
    jpeg = numpy_serving.load(self.lstm_dir)  # a JPEG model: its own grid
    with self.assertRaisesRegex(errors.HbdError, "JPEG 2000 models"):
      jpeg.refine(self.decoded, shifts=2)
    with self.assertRaisesRegex(errors.HbdError, "JPEG 2000 models"):
      serving.load(self.lstm_dir).refine(self.decoded, shifts=4)
    img = self.decoded[:13, :21]
    out = numpy_serving.shift_image(img, (4, 4))
    self.assertEqual(out.shape, (17, 25))
    self.assertAllEqual(out[4:, 4:], img)
    self.assertAllEqual(out[3, 4:], img[1])  # mirrored without the edge
    self.assertAllEqual(out[4:, 0], img[:, 4])
    self.assertIs(numpy_serving.shift_image(img, (0, 0)), img)
    for tiny in (img[:1], img[:, :1], img[:2, :3]):  # shorter than a shift
      out = numpy_serving.shift_image(tiny, (0, 4))
      self.assertAllEqual(out[:, 4:], tiny)
      self.assertEqual(out.shape, (tiny.shape[0], tiny.shape[1] + 4))

  def test_projection_equals_jpeg_constraint(self):
    rng = np.random.default_rng(0)
    decoded = rng.integers(0, 256, (37, 51)).astype(np.uint8)
    decoded[:8, :8] = 255  # a clipped block
    refined = np.clip(decoded.astype(int) + rng.integers(-9, 10,
                                                         decoded.shape),
                      0, 255).astype(np.uint8)
    # pylint: disable=protected-access
    got = numpy_serving.project(
        refined, decoded, numpy_serving._table_from_setting(self.setting))
    want = jpeg_constraint.project(
        refined, decoded,
        jpeg_constraint.table_from_setting(self.setting)).numpy()
    _assert_close(self, got, want)
    # The DCTs as one product (`_K2`, blocks as rows of `_dct_rows`): each
    # row is its block's C Y C^T with jpeg_constraint's C, row-major.
    y = rng.normal(0, 60, (16, 24)).astype(np.float32)
    c = jpeg_constraint._C
    want = np.stack([c @ y[i:i + 8, j:j + 8] @ c.T for i in (0, 8)
                     for j in (0, 8, 16)])
    rows = numpy_serving._dct_rows(y) @ numpy_serving._K2.T
    self.assertAllClose(rows.reshape(-1, 8, 8), want, atol=1e-3)
    self.assertAllClose(rows @ numpy_serving._K2, numpy_serving._dct_rows(y),
                        atol=1e-3)
    # pylint: enable=protected-access

  def test_convert_old_export_identifies_centring(self):
    old = os.path.join(self.tmp, "old_plain")
    shutil.copytree(self.lstm_dir, old)
    centred = self._export("old_centred", _decoder(
        "lstm", center_inputs=True, matmul_dtype="bfloat16"))
    for path, is_centred in ((old, False), (centred, True)):
      os.remove(os.path.join(path, numpy_serving.RUNTIME_FILE))
      self.assertIsInstance(numpy_serving.load(path),
                            serving.ServedModel)  # auto falls back to TF
      spec = numpy_serving.convert_saved_model(path)
      self.assertEqual(spec["center_inputs"], is_centred)
      self.assertEqual(spec["matmul_dtype"],
                       "bfloat16" if is_centred else None)
      self.assertTrue(spec["residual"])
      self.assertEqual(spec["units"], 16)
      if is_centred and _SPREAD > 1:
        # Where TF truncates its bfloat16 products, this untrained decoder's
        # pixels differ on ~19 % of the image by up to 2 levels (measured);
        # the spec above is what this test is about.
        continue
      _assert_close(self, numpy_serving.load(path).refine(self.decoded),
                    serving.load(path).refine(self.decoded))

  def test_training_flags_decide_between_matching_variants(self):
    variants = [{"center_inputs": c, "residual": r}
                for c in (False, True) for r in (True, False)]
    # pylint: disable=protected-access
    narrow = numpy_serving._narrow_by_flags
    meta = {"training": {"flags": {"center_inputs": "True"}}}
    both = [variants[0], variants[2]]  # residual, uncentred and centred
    self.assertEqual(narrow(both, meta),
                     [{"center_inputs": True, "residual": True}])
    meta["training"]["flags"]["residual"] = "False"
    self.assertEqual(narrow(variants, meta),
                     [{"center_inputs": True, "residual": False}])
    self.assertEqual(narrow(both, {}), both)  # no flags: still ambiguous
    # pylint: enable=protected-access

  def test_unsupported_and_stale_exports_use_tf(self):
    path = os.path.join(self.tmp, "sne")
    shutil.copytree(self.lstm_dir, path)
    self.assertTrue(os.path.exists(os.path.join(
        path, numpy_serving.RUNTIME_FILE)))
    sne = decoder_lib.build_decoder("lstm", units=8, patch_size=8, K=2,
                                    sne=True)
    sne(sne.dummy_inputs())
    serving.export_serving(sne, path, "jpeg", batch_size=64)  # over it
    self.assertFalse(os.path.exists(os.path.join(
        path, numpy_serving.RUNTIME_FILE)))  # the stale file is gone
    self.assertIsInstance(numpy_serving.load(path), serving.ServedModel)
    with self.assertRaisesRegex(errors.HbdError, "has no NumPy runtime .no "
                                "hbd_numpy.json.; use the TensorFlow "
                                "runtime .--runtime tf.$"):
      numpy_serving.load(path, runtime="numpy")
    with self.assertRaisesRegex(errors.HbdError, "unknown runtime"):
      numpy_serving.load(path, runtime="tflite")
    # Variables changed behind the file's back: the fingerprint differs
    # (auto then goes to TF, which finds the damage itself).
    stale = os.path.join(self.tmp, "stale")
    shutil.copytree(self.lstm_dir, stale)
    data = os.path.join(stale, "variables",
                        "variables.data-00000-of-00001")
    with open(data, "r+b") as f:
      first = f.read(1)
      f.seek(0)
      f.write(bytes([first[0] ^ 1]))
    with self.assertRaisesRegex(errors.HbdError, "fingerprint differs"):
      numpy_serving.load(stale, runtime="numpy")

  def test_bad_inputs(self):
    fast = numpy_serving.load(self.lstm_dir)
    with self.assertRaisesRegex(errors.HbdError, "uint8"):
      fast.refine(self.decoded.astype(np.uint16))
    with self.assertRaisesRegex(errors.HbdError, "gray image"):
      fast.refine(np.zeros((4, 4, 3), np.uint8))
    with self.assertRaisesRegex(errors.HbdError, "empty"):
      fast.refine(np.zeros((0, 4), np.uint8))
    with self.assertRaisesRegex(errors.HbdError, "K must be"):
      fast.refine(self.decoded, K=0)
    self.assertEqual(fast.refine(np.full((1, 1), 7, np.uint8)).shape, (1, 1))


if __name__ == "__main__":
  tf.test.main()


def test_coded_noise_passthrough_equals_tf():
  from tf_hbd.inference import guards  # pylint: disable=g-import-not-at-top
  yy, xx = np.mgrid[0:40, 0:44]
  ramp = np.round(40 + 2.5 * xx + 0.5 * yy).astype(np.uint8)
  noisy = np.random.default_rng(5).integers(0, 256, (40, 44)).astype(np.uint8)
  for img in (ramp, noisy):
    for q in (30, 80):
      dec, enc = codecs.roundtrip(img, "jpeg", quality=q)
      st = codec_setting.features(enc.data, "jpeg")
      want = float(guards.jpeg_coded_noise_rms(tf.constant(dec), st))
      got = numpy_serving.coded_noise_rms(dec, st)
      np.testing.assert_allclose(got, want, rtol=1e-5)
      for thr in (0.6, 2.0):
        opts = {"jpeg_min_coded_noise": thr}
        assert numpy_serving._passthrough(  # pylint: disable=protected-access
            "jpeg", np.asarray(st), opts, dec) == bool(
                guards.passthrough("jpeg", st, decoded=tf.constant(dec),
                                   **opts))


def _all_mantissas(exponent_field, sign):
  mant = np.arange(1 << 23, dtype=np.uint32)
  return (np.uint32(sign << 31) | np.uint32(exponent_field << 23) | mant
          ).view(np.float32)


def test_bfloat16_rounding_in_place_is_bf16_but_on_ties():
  """`_bf16_into` (to nearest, ties away from zero; in place or not) gives
  `_bf16`'s bits (ties to even, as ``tf.cast``) for every mantissa at the
  subnormal, smallest normal, 1, 2^99 and largest exponents, both signs,
  and at +-0 and +-inf, except on ties with an even bfloat16 neighbour
  below, where it is one bfloat16 step away from zero."""
  # pylint: disable=protected-access
  for field in (0, 1, 127, 226, 254):
    for sign in (0, 1):
      x = _all_mantissas(field, sign)
      want = numpy_serving._bf16(x).view(np.uint32)
      got = numpy_serving._bf16_into(x, np.empty_like(x)).view(np.uint32)
      bits = x.view(np.uint32)
      tie = ((bits & 0xFFFF) == 0x8000) & ((bits & 0x10000) == 0)
      np.testing.assert_array_equal(got[~tie], want[~tie])
      np.testing.assert_array_equal(got[tie], want[tie] + 0x10000)
      assert np.count_nonzero(tie) == 1 << 6  # 2^23 mantissas / 2^17
      in_place = x.copy()
      numpy_serving._bf16_into(in_place, in_place)
      np.testing.assert_array_equal(in_place.view(np.uint32), got)
  special = np.float32([0.0, -0.0, np.inf, -np.inf])
  np.testing.assert_array_equal(
      numpy_serving._bf16_into(special, np.empty(4, np.float32)
                               ).view(np.uint32), special.view(np.uint32))
  # pylint: enable=protected-access


def _bf16_lstm(tied, units=24, scale=0.3, seed=0, gates=None):
  rng = np.random.default_rng(seed)
  n, dd = units, 64
  spec = {"cell": "lstm", "units": n, "patch_size": 8, "tied": tied,
          "center_inputs": True, "matmul_dtype": "bfloat16",
          "residual": True, "embed_bias": False, "use_position": False,
          "setting_size": 0}
  weights = {"W": rng.normal(0, scale, (9 * dd, n if tied else 4 * n)),
             "U": rng.normal(0, scale, (n, dd)), "c": rng.normal(0, 0.1, dd),
             "cell.V": rng.normal(0, scale, (n, 4 * n)),
             "cell.b": rng.normal(0, 0.1, 4 * n)}
  with mock.patch.object(numpy_serving, "GATES",
                         gates or numpy_serving.GATES):
    return numpy_serving._Decoder(  # pylint: disable=protected-access
        spec, {k: v.astype(np.float32) for k, v in weights.items()})


def test_bfloat16_lstm_steps_are_bit_identical_to_the_reference():
  """`_Decoder._lstm_bf16` (buffers, gate-major, rounding in place) gives
  the bits of `_Decoder._lstm` (the plain NumPy steps), with every gate
  formula."""
  # pylint: disable=protected-access
  rng = np.random.default_rng(3)
  for tied, gates in [(t, g) for t in (True, False) for g in _GATES]:
    dec = _bf16_lstm(tied, gates=gates)
    x = rng.uniform(0, 1, (300, 9 * 64)).astype(np.float32)
    e = dec.embed(x, np.zeros(300, np.int32), None)
    for k in (1, 2, 3, 6):
      want = dec._lstm(e.copy(), k)
      got = dec._lstm_bf16(e.copy(), k)
      np.testing.assert_array_equal(got.view(np.uint32), want.view(
          np.uint32), err_msg=(tied, gates, k))
    with mock.patch.object(dec, "_lstm",
                           side_effect=AssertionError("slow path used")):
      dec.predict_last(x, np.zeros(300, np.int32), 3)  # takes _lstm_bf16
  # pylint: enable=protected-access


def test_bfloat16_lstm_buffers_reused_across_chunks_keep_the_bits():
  """The step buffers a decoder reuses from chunk to chunk (`_buffers`)
  carry nothing over: chunks of other sizes in between, and chunks run in
  other threads, give the bits of a fresh decoder."""
  rng = np.random.default_rng(5)
  xs = [rng.uniform(0, 1, (rows, 9 * 64)).astype(np.float32)
        for rows in (300, 100, 300, 7)]
  pos = [rng.integers(0, 9, x.shape[0]).astype(np.int32) for x in xs]
  want = [_bf16_lstm(True).predict_last(x, p, 3) for x, p in zip(xs, pos)]
  dec = _bf16_lstm(True)
  for x, p, w in zip(xs, pos, want):
    np.testing.assert_array_equal(dec.predict_last(x, p, 3).view(np.uint32),
                                  w.view(np.uint32))
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    got = list(pool.map(lambda i: dec.predict_last(xs[i], pos[i], 3),
                        [0, 1, 2, 3] * 2))
  for i, g in enumerate(got):
    np.testing.assert_array_equal(g.view(np.uint32), want[i % 4].view(
        np.uint32))


def test_bfloat16_lstm_step_threads_keep_the_bits():
  """The bfloat16 steps' elementwise work split over 1 to 4 threads
  (`numpy_serving.STEP_THREADS`, row ranges of `_Decoder._in_parts`, even
  of one row each) gives the bits of the plain steps with every gate
  formula, however the rows are split, and the threads do run."""
  # pylint: disable=protected-access
  rng = np.random.default_rng(7)
  x = rng.uniform(0, 1, (37, 9 * 64)).astype(np.float32)
  settings = [(t, p, g) for t, p in ((1, True), (2, True), (2, False),
                                     (3, True), (4, False)) for g in _GATES]
  for threads, pin, gates in settings:
    dec = _bf16_lstm(False, units=16, gates=gates)
    e = dec.embed(x, np.zeros(37, np.int32), None)
    want = dec._lstm(e.copy(), 4)
    with mock.patch.object(numpy_serving, "STEP_THREADS", threads), \
        mock.patch.object(numpy_serving, "PIN_STEP_THREADS", pin), \
        mock.patch.object(numpy_serving, "MIN_PART_ROWS", 1):
      fresh = _bf16_lstm(False, units=16, gates=gates)
      rows_fn, ran_on = fresh._lstm_rows_, set()

      def recorded(*args, rows_fn=rows_fn, ran_on=ran_on):
        ran_on.add(threading.get_ident())
        return rows_fn(*args)

      # No range taken back by the calling thread: each on its own thread.
      with mock.patch.object(fresh, "_lstm_rows_", side_effect=recorded), \
          mock.patch.object(concurrent.futures.Future, "cancel",
                            return_value=False):
        got = fresh._lstm_bf16(e.copy(), 4)
      np.testing.assert_array_equal(got.view(np.uint32), want.view(
          np.uint32), err_msg=(threads, gates))
      # Pinned, a range goes to the worker on a CPU the caller is not on
      # at that step: the caller may move, so one more worker may serve.
      pinned = threads > 1 and numpy_serving._step_workers(threads).pinned
      assert threads <= len(ran_on) <= threads + pinned, (threads, pin,
                                                          gates)
  # pylint: enable=protected-access


def test_gate_nonlinearities_from_exp():
  """`sigmoid_exp` and `tanh_exp` (the LSTM's gates, from one `np.exp`
  pass) against float64 from -100 to 100, at 0, at exp's float32 overflow
  edge (|x| ~ 88.7), beyond it and at +-inf: within ~3 ulps (sigmoid,
  relative; 0 below -88.7) and 3e-7 (tanh, absolute; `np.tanh` is within
  6e-8), the limits exact, no NaN and no floating-point warning."""
  edges = np.float32([0.0, 1e-30, 1e-7, 0.5, 88.0, 88.7, 88.8, 89.0, 100.0,
                      1e4, 3e38, np.inf])
  x = np.concatenate([np.linspace(-100, 100, 400_001, dtype=np.float32),
                      edges, -edges])
  x64 = x.astype(np.float64)
  tail = np.exp(-np.abs(x64))  # no overflow
  want_sigmoid = np.where(x64 >= 0, 1 / (1 + tail), tail / (1 + tail))
  with np.errstate(all="raise"), warnings.catch_warnings():
    warnings.simplefilter("error")
    sig = numpy_serving.sigmoid_exp(x)
    tanh = numpy_serving.tanh_exp(x)
  assert sig.dtype == np.float32 and tanh.dtype == np.float32
  assert not np.isnan(sig).any() and not np.isnan(tanh).any()
  # For x < -88.7 exp(-x) overflows to inf and the sigmoid is 0, where
  # the exact value is below 3e-39.
  np.testing.assert_allclose(sig, want_sigmoid, rtol=4e-7, atol=3e-39)
  np.testing.assert_allclose(tanh, np.tanh(x64), rtol=0, atol=3e-7)
  assert 0 <= sig.min() and sig.max() <= 1
  assert -1 <= tanh.min() and tanh.max() <= 1
  limits = np.float32([0.0, 100.0, -100.0, 3e38, -3e38, np.inf, -np.inf])
  np.testing.assert_array_equal(numpy_serving.tanh_exp(limits),
                                [0, 1, -1, 1, -1, 1, -1])
  np.testing.assert_array_equal(numpy_serving.sigmoid_exp(limits),
                                [0.5, 1, 0, 1, 0, 1, 0])


def test_gate_formulas_update_like_a_float64_lstm():
  """Each gate formula's nonlinearity pass and state update
  (`_GATE_FORMULAS`) on pre-activations from -100 to 100 (past exp's
  float32 overflow) give the float64 LSTM's cell state within 1e-6
  (relative to 1 + |c|) and its output state, divided by the formula's
  state factor, within 1e-6; no NaN; the first step (c_0 = 0) too."""
  # pylint: disable=protected-access
  rng = np.random.default_rng(11)
  z = np.concatenate([rng.normal(0, 3, (4, 500, 8)),
                      rng.uniform(-100, 100, (4, 500, 8))], axis=1)
  c0 = rng.normal(0, 2, (1000, 8))
  sig = lambda v: 1 / (1 + np.exp(-v))
  for first in (True, False):
    c_prev = 0 * c0 if first else c0
    c_want = sig(z[0]) * c_prev + sig(z[1]) * np.tanh(z[2])
    s_want = sig(z[3]) * np.tanh(c_want)
    for name, gates in numpy_serving._GATE_FORMULAS.items():
      scaled = (z * np.reshape(gates.scales, (4, 1, 1))).astype(np.float32)
      c = c_prev.astype(np.float32)
      s = np.empty_like(c)
      with np.errstate(**numpy_serving._QUIET):
        gates.pass_(scaled)
        gates.update(list(scaled), c, s, first)
      assert not np.isnan(c).any() and not np.isnan(s).any(), name
      np.testing.assert_allclose(c, c_want, rtol=0,
                                 atol=1e-6 * (1 + np.abs(c_want)).max(),
                                 err_msg=name)
      np.testing.assert_allclose(s / gates.state, s_want, rtol=0, atol=1e-6,
                                 err_msg=name)
  # pylint: enable=protected-access


def test_gate_formula_is_chosen_once_from_the_cpu_features():
  """`GATES` is "tanh" exactly where NumPy reports AVX512_SKX, and "exp"
  where the report lacks it or cannot be read (another NumPy layout)."""
  # pylint: disable=protected-access
  from numpy.core import _multiarray_umath  # pylint: disable=g-import-not-at-top
  features = _multiarray_umath.__cpu_features__
  assert numpy_serving.GATES == (
      "tanh" if features.get("AVX512_SKX") else "exp")
  for value, want in ((True, True), (False, False)):
    with mock.patch.dict(features, {"AVX512_SKX": value}):
      assert numpy_serving._tanh_is_simd() is want
  with mock.patch.dict(sys.modules, {"numpy.core._multiarray_umath": None}):
    assert numpy_serving._tanh_is_simd() is False
  # pylint: enable=protected-access


def test_refine_bits_are_the_same_in_fresh_processes():
  """The shipped JPEG decoder's NumPy refine (the CPU's gate formula,
  bfloat16 rounding, OpenBLAS products) gives the same bits run to run and in two
  fresh processes."""
  img = sample_images.load_sample("camera")[:96, :136]
  enc = codecs.encode(img, "jpeg", quality=20)
  decoded = codecs.decode(enc)
  st = codec_setting.features(enc.data, "jpeg", decoded.shape)
  model = numpy_serving.load_pretrained("jpeg", "numpy")
  here = model.refine(decoded, setting=st)
  np.testing.assert_array_equal(model.refine(decoded, setting=st), here)
  assert np.any(here != decoded)  # the decoder acts on this crop
  with tempfile.TemporaryDirectory() as tmp:
    np.save(os.path.join(tmp, "decoded.npy"), decoded)
    np.save(os.path.join(tmp, "setting.npy"), st)
    code = ("import sys, numpy as np\n"
            "from tf_hbd.inference import numpy_serving\n"
            "d = np.load(sys.argv[1] + '/decoded.npy')\n"
            "st = np.load(sys.argv[1] + '/setting.npy')\n"
            "m = numpy_serving.load_pretrained('jpeg', 'numpy')\n"
            "np.save(sys.argv[1] + '/' + sys.argv[2], m.refine(d, setting=st))"
            "\n")
    for name in ("a.npy", "b.npy"):
      subprocess.run([sys.executable, "-c", code, tmp, name], check=True,
                     env=dict(os.environ, PYTHONPATH=_ROOT))
      np.testing.assert_array_equal(np.load(os.path.join(tmp, name)), here)


def test_pinned_step_threads_keep_the_refine_bits():
  """The shipped JPEG decoder's refine with two step threads, pinned
  (`numpy_serving.PIN_STEP_THREADS`: the second row range on a worker
  pinned to another CPU than the calling thread's) and not, with chunks of
  64 blocks, gives the bits of the default (one thread), also when the
  workers are busy and the calling thread runs every range itself;
  pinned, each worker runs on one CPU of its own."""
  # pylint: disable=protected-access
  img = sample_images.load_sample("camera")[:120, :200]
  enc = codecs.encode(img, "jpeg", quality=20)
  decoded = codecs.decode(enc)
  st = codec_setting.features(enc.data, "jpeg", decoded.shape)
  model = numpy_serving.load_pretrained("jpeg", "numpy")
  want = model.refine(decoded, setting=st)
  for pin in (True, False):
    with mock.patch.object(numpy_serving, "STEP_THREADS", 2), \
        mock.patch.object(numpy_serving, "PIN_STEP_THREADS", pin), \
        mock.patch.object(numpy_serving, "CHUNK", 64):
      np.testing.assert_array_equal(model.refine(decoded, setting=st), want)
      workers = numpy_serving._step_workers(2)
      gate = threading.Event()
      blocked = [workers.submit(i, gate.wait) for i in range(2 if pin else 1)]
      try:  # every worker busy: the ranges all run in this thread
        np.testing.assert_array_equal(model.refine(decoded, setting=st),
                                      want)
      finally:
        gate.set()
      assert all(f.result() for f in blocked)
      assert workers.pinned == (pin and len(os.sched_getaffinity(0)) >= 2)
  if len(os.sched_getaffinity(0)) >= 2:
    with mock.patch.object(numpy_serving, "PIN_STEP_THREADS", True):
      pinned = numpy_serving._step_workers(2)
    masks = [pinned.submit(i, os.sched_getaffinity, 0).result()
             for i in (0, 1)]
    assert masks == [{cpu} for cpu in pinned.cpus] and masks[0] != masks[1]
    for i, cpu in enumerate(pinned.cpus):  # the worker on the other CPU
      with mock.patch.object(numpy_serving, "_current_cpu",
                             return_value=cpu):
        assert numpy_serving._helpers(pinned, 1) == [1 - i]
  # pylint: enable=protected-access


def test_refine_bits_do_not_depend_on_chunk_threads():
  """With every gate formula, the shipped JPEG decoder's refine gives the
  same bits with chunks of 64 blocks run on two threads
  (`numpy_serving.THREADS`) and on one, with one step thread or two."""
  img = sample_images.load_sample("camera")[:120, :200]
  enc = codecs.encode(img, "jpeg", quality=20)
  decoded = codecs.decode(enc)
  st = codec_setting.features(enc.data, "jpeg", decoded.shape)
  for gates in _GATES:
    with mock.patch.object(numpy_serving, "GATES", gates):
      model = numpy_serving.load_pretrained("jpeg", "numpy")
    with mock.patch.object(numpy_serving, "CHUNK", 64):
      want = model.refine(decoded, setting=st)
      for threads, step_threads in ((2, 1), (2, 2), (1, 1)):
        with mock.patch.object(numpy_serving, "THREADS", threads), \
            mock.patch.object(numpy_serving, "STEP_THREADS", step_threads):
          np.testing.assert_array_equal(model.refine(decoded, setting=st),
                                        want, err_msg=(gates, threads))
    model._pool.shutdown()  # pylint: disable=protected-access
