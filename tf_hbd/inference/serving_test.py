"""Tests of tf_hbd.inference.serving: export, load in a fresh process, signatures."""

import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd.model import decoder as decoder_lib
from tf_hbd import errors
from tf_hbd.inference import refine as refine_lib
from tf_hbd.data import sample_images
from tf_hbd.inference import serving


def _trained_like_decoder(codec="jpeg", d=8):
  """A small decoder with non-zero output weights (not the identity)."""
  model = decoder_lib.build_decoder("lstm", units=16, patch_size=d, K=3,
                                    seed=3)
  model(model.dummy_inputs())
  rng = np.random.default_rng(0)
  for v in model.readout_variables:
    v.assign(rng.normal(0, 0.01, v.shape).astype(np.float32))
  return model


class ServingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = _trained_like_decoder()
    cls.dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "export_jpeg")
    serving.export_serving(cls.model, cls.dir, "jpeg",
                           metadata={"label": "test"}, batch_size=64)
    cls.image = sample_images.load_sample("camera")[100:181, 200:299]

  def test_fresh_process_gives_same_pixels(self):
    in_process = serving.load(self.dir).refine(self.image)
    npy = os.path.join(self.get_temp_dir(), "img.npy")
    out = os.path.join(self.get_temp_dir(), "out.npy")
    np.save(npy, self.image)
    code = ("import sys, numpy as np, tensorflow as tf\n"
            "m = tf.saved_model.load(sys.argv[1])\n"
            "x = np.load(sys.argv[2])\n"
            "y = m.signatures['serving_default'](image=tf.constant(x))\n"
            "np.save(sys.argv[3], y['refined'].numpy())\n")
    subprocess.run([sys.executable, "-c", code, self.dir, npy, out],
                   check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    fresh = np.load(out)
    self.assertAllEqual(fresh, in_process)
    # Same pixels as the Python refine path of the in-process model (equal
    # up to float rounding of a few pixels at .5 boundaries).
    python_path = refine_lib.refine(self.image, self.model, batch_size=64)
    diff = np.abs(fresh.astype(int) - python_path.astype(int))
    self.assertLessEqual(diff.max(), 1)
    self.assertLess(np.mean(diff > 0), 0.001)
    self.assertFalse(np.array_equal(fresh, self.image))  # it did something

  def test_jpeg_bytes_signature_equals_decode_then_refine(self):
    buf = io.BytesIO()
    Image.fromarray(self.image).save(buf, format="JPEG", quality=20)
    m = serving.load(self.dir)
    via_bytes = m.decode_and_refine(buf.getvalue())
    decoded = tf.io.decode_jpeg(buf.getvalue(), channels=1,
                                dct_method="INTEGER_ACCURATE").numpy()
    self.assertAllEqual(via_bytes, m.refine(decoded))
    pillow = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    self.assertAllEqual(decoded[..., 0], pillow)  # same IDCT as Pillow

  def test_k_and_shapes(self):
    m = serving.load(self.dir)
    self.assertEqual(m.metadata["K"], 3)
    self.assertEqual(m.metadata["label"], "test")
    k1 = m.refine(self.image, K=1)
    k3 = m.refine(self.image, K=3)
    self.assertAllEqual(k3, m.refine(self.image))
    self.assertFalse(np.array_equal(k1, k3))
    self.assertEqual(m.refine(self.image[..., None]).shape,
                     self.image.shape + (1,))
    self.assertEqual(m.refine(np.full((1, 1), 7, np.uint8)).shape, (1, 1))

  def test_bad_inputs(self):
    m = serving.load(self.dir)
    with self.assertRaises(errors.HbdError):
      m.refine(self.image.astype(np.float32))
    with self.assertRaises(errors.HbdError):
      m.refine(np.zeros((4, 4, 3), np.uint8))
    with self.assertRaises(errors.HbdError):
      m.refine(np.zeros((0, 4), np.uint8))
    with self.assertRaises(errors.BitstreamError):
      m.decode_and_refine(b"not a jpeg at all")
    raw = m._loaded.signatures["refine"]  # pylint: disable=protected-access
    with self.assertRaises((tf.errors.InvalidArgumentError, TypeError,
                            ValueError)):
      raw(image=tf.zeros([4, 4], tf.float32))
    with self.assertRaises(errors.HbdError):
      serving.load(self.get_temp_dir())

  def test_huge_image_is_refused_not_allocated(self):
    small_limit = os.path.join(self.get_temp_dir(), "small")
    serving.export_serving(self.model, small_limit, "jp2", max_pixels=10_000)
    m = serving.load(small_limit)
    self.assertNotIn("decode_and_refine", m._loaded.signatures)  # pylint: disable=protected-access
    with self.assertRaisesRegex(errors.ResourceLimitError, "too large"):
      m.refine(np.zeros((200, 200), np.uint8))

  def test_refine_steps_equals_refine_k_at_every_k(self):
    m = serving.load(self.dir)
    steps = m.refine_steps(self.image, 5)
    self.assertEqual(steps.shape, (5,) + self.image.shape)
    for k in range(1, 6):
      self.assertAllEqual(steps[k - 1], m.refine(self.image, K=k))
    self.assertFalse(np.array_equal(steps[0], steps[2]))
    self.assertEqual(m.refine_steps(self.image[..., None], 2).shape,
                     (2,) + self.image.shape + (1,))


if __name__ == "__main__":
  tf.test.main()


class SettingServingTest(tf.test.TestCase):
  """Exports of decoders that take the codec setting (JPEG: + projection)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
    from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
    model = decoder_lib.build_decoder("lstm", units=16, patch_size=8, K=2,
                                      seed=3, setting_size=64,
                                      boundary="replicate")
    model(model.dummy_inputs())
    rng = np.random.default_rng(0)
    for v in model.readout_variables + model.embed_variables[-1:]:
      v.assign(rng.normal(0, 0.05, v.shape).astype(np.float32))
    cls.model = model
    tmp = tf.compat.v1.test.get_temp_dir()
    cls.dir = os.path.join(tmp, "export_setting")
    serving.export_serving(model, cls.dir, "jpeg", batch_size=64)
    cls.raw_dir = os.path.join(tmp, "export_setting_raw")
    serving.export_serving(model, cls.raw_dir, "jpeg", batch_size=64,
                           project=False)
    img = sample_images.load_sample("camera")[100:181, 200:299]
    cls.original = img
    cls.decoded, enc = codecs.roundtrip(img, "jpeg", quality=20)
    cls.jpeg = enc.data
    cls.setting = codec_setting.features(enc.data, "jpeg")

  def test_metadata_and_setting_required(self):
    m = serving.load(self.dir)
    self.assertEqual(m.setting_size, 64)
    self.assertTrue(m.metadata["jpeg_projection"])
    with self.assertRaisesRegex(errors.HbdError, "codec setting"):
      m.refine(self.decoded)

  def test_raw_export_matches_python_refine_and_projection_is_applied(self):
    from tf_hbd.codecs import jpeg_constraint as jc  # pylint: disable=g-import-not-at-top
    raw = serving.load(self.raw_dir).refine(self.decoded,
                                            setting=self.setting)
    python_path = refine_lib.refine(self.decoded, self.model, batch_size=64,
                                    setting=self.setting)
    self.assertLessEqual(np.abs(raw.astype(int) - python_path).max(), 1)
    projected = serving.load(self.dir).refine(self.decoded,
                                              setting=self.setting)
    expect = jc.project(raw, self.decoded,
                        jc.table_from_setting(self.setting)).numpy()
    self.assertLessEqual(np.abs(projected.astype(int) - expect).max(), 1)
    self.assertGreater(np.abs(raw.astype(int) - projected).max(), 0)

  def test_source_file_and_decode_and_refine_read_the_table(self):
    m = serving.load(self.dir)
    path = os.path.join(self.get_temp_dir(), "x.jpg")
    with open(path, "wb") as f:
      f.write(self.jpeg)
    a = m.refine(self.decoded, source=path)
    b = m.refine(self.decoded, setting=self.setting)
    self.assertAllEqual(a, b)
    c = m.decode_and_refine(self.jpeg)[..., 0]
    self.assertLessEqual(np.abs(c.astype(int) - b).max(), 1)

  def test_ensemble_is_the_mean_of_the_symmetries(self):
    from tf_hbd.codecs import jpeg_constraint as jc  # pylint: disable=g-import-not-at-top
    m = serving.load(self.raw_dir)
    out = m.refine(self.decoded, setting=self.setting, ensemble=True)
    self.assertEqual(out.shape, self.decoded.shape)
    h, w = self.decoded.shape
    padded = np.pad(self.decoded, ((0, (-h) % 8), (0, (-w) % 8)),
                    mode="edge")
    total = np.zeros(padded.shape)
    for k in jc.DIHEDRAL:
      st = (jc.transpose_setting(self.setting) if (k & 1) ^ ((k >> 2) & 1)
            else self.setting)
      total += jc.undo_dihedral(m.refine(np.ascontiguousarray(
          jc.dihedral(padded, k)), setting=st), k)
    expect = np.clip(np.round(total / 8), 0, 255)[:h, :w]
    self.assertAllEqual(out, expect)


  def test_passthrough_returns_fine_jpegs_as_decoded(self):
    from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
    from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
    path = os.path.join(self.get_temp_dir(), "pass")
    serving.export_serving(self.model, path, "jpeg", batch_size=64,
                           passthrough={"jpeg_min_noise": 3.0})
    m = serving.load(path)
    self.assertEqual(m.metadata["passthrough"], {"jpeg_min_noise": 3.0})
    fine, enc = codecs.roundtrip(self.original, "jpeg", quality=95)
    out = m.refine(fine, setting=codec_setting.features(enc.data, "jpeg"))
    self.assertAllEqual(out, fine)
    coarse = m.refine(self.decoded, setting=self.setting)  # quality 20
    self.assertGreater(np.abs(coarse.astype(int) - self.decoded).max(), 0)


def _assert_steps_equal_k(test, model, codec, decoded, setting=None,
                          K=8, **export_kw):
  """Exports `model`; `refine_steps` at K equals `refine` at every k."""
  path = os.path.join(test.get_temp_dir(), f"steps_{codec}_{id(model)}")
  serving.export_serving(model, path, codec, batch_size=64, **export_kw)
  m = serving.load(path)
  steps = m.refine_steps(decoded, K, setting=setting)
  for k in range(1, K + 1):
    test.assertAllEqual(steps[k - 1], m.refine(decoded, K=k, setting=setting))
  return m, steps


class RefineStepsTest(tf.test.TestCase):
  """`refine_steps` (one K-step pass) against `refine` at each K, bit for
  bit: every decoder class, with the setting, projection, guard, passthrough
  and the JPEG 2000 ramp; and exports without the signature."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
    from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
    img = sample_images.load_sample("camera")[100:181, 200:299].copy()
    img[:24, :24] = 200  # flat blocks: the guard at work
    cls.jpeg, enc = codecs.roundtrip(img, "jpeg", quality=20)
    cls.jpeg_setting = codec_setting.features(enc.data, "jpeg")
    cls.jp2, enc2 = codecs.roundtrip(img, "jp2", bpp=0.5)
    cls.jp2_setting = codec_setting.features(enc2.data, "jp2", img.shape)

  def _model(self, setting_size, sne=False, units=12):
    model = decoder_lib.build_decoder("lstm", units=units, patch_size=8, K=4,
                                      seed=5, setting_size=setting_size,
                                      boundary="replicate", sne=sne)
    model(model.dummy_inputs())
    rng = np.random.default_rng(1)
    for v in model.readout_variables + model.embed_variables[-1:]:
      v.assign(rng.normal(0, 0.05, v.shape).astype(np.float32))
    return model

  def test_lstm_with_setting_and_projection(self):
    _, steps = _assert_steps_equal_k(self, self._model(64), "jpeg", self.jpeg,
                                     self.jpeg_setting)
    self.assertGreater(len({s.tobytes() for s in steps}), 4)

  def test_sne(self):
    _assert_steps_equal_k(self, self._model(64, sne=True), "jpeg", self.jpeg,
                          self.jpeg_setting, K=3)

  def test_sab(self):
    from tf_hbd.model import sab_decoder  # pylint: disable=g-import-not-at-top
    model = sab_decoder.SABDecoder(self._model(64), k_top=2, k_attn=2, seed=1)
    model(model.dummy_inputs())
    _assert_steps_equal_k(self, model, "jpeg", self.jpeg, self.jpeg_setting,
                          K=5)

  def test_jp2_ramp_and_passthrough(self):
    model = self._model(1)
    _assert_steps_equal_k(self, model, "jp2", self.jp2, self.jp2_setting, K=3,
                          passthrough={"jp2_min_activity_per_bpp": 0.01,
                                       "jp2_full_activity_per_bpp": 1e4})
    _, steps = _assert_steps_equal_k(
        self, model, "jp2", self.jp2, self.jp2_setting, K=2,
        passthrough={"jp2_max_bpp": 0.1})  # passed through at 0.5 bpp
    self.assertAllEqual(steps, np.stack([self.jp2] * 2))

  def test_exports_without_the_signature_refine_k_times(self):
    m, _ = _assert_steps_equal_k(self, self._model(0), "jpeg", self.jpeg, K=2)
    sigs = dict(m._loaded.signatures)  # pylint: disable=protected-access
    del sigs["refine_steps"]
    m._loaded.signatures = sigs  # pylint: disable=protected-access
    calls = []
    real = m.refine
    m.refine = lambda *a, **kw: calls.append(kw["K"]) or real(*a, **kw)
    steps = m.refine_steps(self.jpeg, 3)
    self.assertEqual(calls, [1, 2, 3])
    self.assertAllEqual(steps[2], real(self.jpeg, K=3))
