"""Tests of tf_hbd.baselines.e2e (on a small freshly built model)."""

import os
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc

from tf_hbd import errors
from tf_hbd.data import sample_images
from tf_hbd.baselines import container
from tf_hbd.baselines import e2e


def _model(num_filters=8, lmbda=0.01, seed=3):
  tf.random.set_seed(seed)
  return e2e.E2EModel(num_filters=num_filters, lmbda=lmbda)


_SHARED = {}


def _shared_codec():
  """(model, its exported `E2ECodec` "e2e-test"): `_model()` exported and
  loaded once per process (about half a minute of CPU), for the tests that
  only read them."""
  if not _SHARED:
    model = _model()
    path = os.path.join(tempfile.mkdtemp(), "e2e-test")
    e2e.export(model, path)
    _SHARED["value"] = (model, e2e.E2ECodec(path))
  return _SHARED["value"]


class E2EModelTest(tf.test.TestCase, parameterized.TestCase):

  def test_latent_and_output_shapes(self):
    model = _model()
    x = tf.zeros((2, 37, 50, 1))
    y = model.analysis(x)
    self.assertEqual(tuple(y.shape), (2, 3, 4, 8))
    self.assertEqual(e2e.latent_shape((37, 50)), (3, 4))
    self.assertEqual(tuple(model.synthesis(y).shape), (2, 48, 64, 1))

  def test_layers_follow_the_paper(self):
    model = _model()
    convs = [l for l in model.analysis.layers]
    self.assertEqual([c.kernel_support for c in convs],
                     [(9, 9), (5, 5), (5, 5)])
    self.assertEqual([c.strides_down for c in convs], [(4, 4), (2, 2), (2, 2)])
    self.assertTrue(all(c.activation.__class__.__name__ == "GDN"
                        for c in convs))
    gdns = [l for l in model.synthesis.layers if "gdn" in l.name]
    self.assertLen(gdns, 3)
    self.assertTrue(all(g.inverse for g in gdns))
    self.assertEqual(model.synthesis.layers[-1].filters, 1)

  def test_losses(self):
    model = _model(lmbda=0.02)
    images = tf.constant(np.random.default_rng(0).integers(
        0, 256, (2, 32, 48, 1)), tf.uint8)
    v = model(images, training=True)
    self.assertAllClose(v["loss"], v["bpp"] + 0.02 * v["mse"], rtol=1e-5)
    self.assertGreater(v["bpp"], 0.0)
    self.assertGreater(v["mse"], 0.0)

  def test_training_step_lowers_the_loss(self):
    model = _model(lmbda=0.05)
    opt = tf.keras.optimizers.Adam(1e-3)
    images = tf.constant(np.tile(np.linspace(0, 255, 32, dtype=np.uint8),
                                 (2, 32, 1))[..., None])
    first = None
    for _ in range(30):
      with tf.GradientTape() as tape:
        loss = model(images, training=True)["loss"]
      variables = model.trainable_variables
      opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
      first = float(loss) if first is None else first
    self.assertLess(float(loss), 0.8 * first)


  def test_evaluation_quantizes_like_the_exported_codec(self):
    model = _model()
    rng = np.random.default_rng(5)
    for v in model.prior.variables:  # a prior whose medians are not 0
      v.assign(v + rng.normal(0.0, 0.5, v.shape).astype(np.float32))
    y = tf.constant(rng.normal(0.0, 3.0, (1, 3, 4, 8)), tf.float32)
    exported = e2e.E2EExport(model).entropy_model
    offsets = exported.quantization_offset.numpy()
    self.assertGreater(np.abs(offsets).max(), 0.01)  # the test can fail
    # Its tables (tails estimated in a graph) are TFC's eager ones.
    eager = tfc.ContinuousBatchedEntropyModel(model.prior, coding_rank=3,
                                              compression=True)
    for name in ("cdf", "cdf_offset", "quantization_offset"):
      self.assertAllEqual(getattr(exported, name), getattr(eager, name))
    self.assertAllEqual(model.entropy_model().quantize(y),
                        exported.quantize(y))
    self.assertNotAllEqual(tf.round(y), exported.quantize(y))
    # Rate and distortion in evaluation use those latents.
    images = tf.constant(rng.integers(0, 256, (1, 48, 64, 1)), tf.uint8)
    v = model(images, training=False)
    x = tf.cast(images, tf.float32) / 255.0
    y_hat = exported.quantize(model.analysis(x))
    x_hat = model.synthesis(y_hat)
    mse = tf.reduce_mean(tf.square(x - x_hat)) * 255.0**2
    self.assertAllClose(v["mse"], mse, rtol=1e-5)

  def test_bfloat16_transforms(self):
    model = _model()
    fast = e2e.E2EModel(num_filters=8, lmbda=0.01, compute_dtype="bfloat16")
    fast.set_weights(model.get_weights())
    self.assertEqual(fast.analysis.layers[0].compute_dtype, "bfloat16")
    self.assertTrue(all(v.dtype == tf.float32 for v in fast.variables))
    images = tf.constant(np.random.default_rng(0).integers(
        0, 256, (2, 32, 48, 1)), tf.uint8)
    slow_v, fast_v = model(images, training=False), fast(images,
                                                        training=False)
    for k in ("bpp", "mse", "loss", "psnr"):
      self.assertEqual(fast_v[k].dtype, tf.float32)
    self.assertAllClose(fast_v["mse"], slow_v["mse"], rtol=0.05)
    twin = e2e.float32_twin(fast)
    self.assertIs(e2e.float32_twin(model), model)
    self.assertEqual(twin.analysis.layers[0].compute_dtype, "float32")
    for a, b in zip(twin.get_weights(), model.get_weights()):
      np.testing.assert_array_equal(a, b)
    with self.assertRaises(ValueError):
      e2e.E2EModel(num_filters=8, compute_dtype="float16")

  def test_validation_metrics_use_real_files(self):
    model, codec = _shared_codec()
    gray = [sample_images.load_sample("camera")[:64, :96]]
    m = e2e.validation_metrics(model, gray, name=codec.name)
    data = codec.compress(gray[0])
    self.assertAlmostEqual(m["bpp"], 8.0 * len(data) / gray[0].size,
                           places=4)
    decoded = codec.decompress(data)
    from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
    self.assertAlmostEqual(m["psnr"], metrics.psnr(gray[0], decoded),
                           places=3)
    self.assertAlmostEqual(m["vs_jpeg_db"], m["psnr"] - m["jpeg_psnr"],
                           places=3)
    self.assertGreater(m["jpeg_psnr"], 0.0)


class E2ECodecTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.codec = _shared_codec()[1]
    cls.tmp = os.path.dirname(cls.codec.path)
    cls.photo = sample_images.load_sample("camera")[100:164, 200:296]

  def test_name_and_attributes(self):
    self.assertEqual(self.codec.name, "e2e-test")
    self.assertEqual(self.codec.num_filters, 8)
    self.assertAlmostEqual(self.codec.lmbda, 0.01, places=6)

  def test_round_trip_equals_reconstruction(self):
    data = self.codec.compress(self.photo)
    decoded = self.codec.decompress(data)
    self.assertEqual(decoded.dtype, np.uint8)
    self.assertEqual(decoded.shape, self.photo.shape)
    np.testing.assert_array_equal(decoded, self.codec.reconstruct(self.photo))
    box = container.unpack(data)
    self.assertEqual((box.model, box.shape), ("e2e-test", self.photo.shape))

  def test_decoding_is_repeatable(self):
    data = self.codec.compress(self.photo)
    first = self.codec.decompress(data)
    for _ in range(3):
      np.testing.assert_array_equal(self.codec.decompress(data), first)
    self.assertEqual(self.codec.compress(self.photo), data)

  @parameterized.parameters((1, 1), (7, 3), (17, 33), (16, 16), (5, 130))
  def test_odd_sizes(self, h, w):
    image = np.random.default_rng(h * w).integers(0, 256, (h, w), np.uint8)
    data = self.codec.compress(image)
    decoded = self.codec.decompress(data)
    self.assertEqual(decoded.shape, (h, w))
    np.testing.assert_array_equal(decoded, self.codec.reconstruct(image))

  def test_accepts_trailing_channel(self):
    data = self.codec.compress(self.photo[..., None])
    self.assertEqual(self.codec.decompress(data).shape, self.photo.shape)

  def test_truncated_and_corrupt_streams_raise(self):
    data = self.codec.compress(self.photo)
    for n in (0, 3, 10, len(data) // 2, len(data) - 1):
      with self.assertRaises(errors.BitstreamError):
        self.codec.decompress(data[:n])
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0x10
    with self.assertRaises(errors.BitstreamError):
      self.codec.decompress(bytes(bad))

  def test_payload_garbage_with_valid_header_is_an_error_or_an_image(self):
    # A well-formed file whose payload is random: the range decoder either
    # rejects it (BitstreamError) or decodes some image of the right shape;
    # it never crashes the process.
    rng = np.random.default_rng(1)
    for trial in range(5):
      payload = rng.integers(0, 256, 8 + trial, np.uint8).tobytes()
      data = container.pack("e2e-test", (40, 24), b"", payload)
      try:
        out = self.codec.decompress(data)
      except errors.BitstreamError:
        continue
      self.assertEqual(out.shape, (40, 24))

  def test_other_models_files_rejected(self):
    data = container.pack("e2e-other", (16, 16), b"", b"\0\0")
    with self.assertRaisesRegex(errors.BitstreamError, "e2e-other"):
      self.codec.decompress(data)
    data = container.pack("e2e-test", (16, 16), b"\1", b"\0\0")
    with self.assertRaisesRegex(errors.BitstreamError, "parameters"):
      self.codec.decompress(data)

  @parameterized.parameters(((0, 5), np.uint8), ((4, 4), np.float32),
                            ((4, 4, 3), np.uint8))
  def test_bad_images(self, shape, dtype):
    image = np.zeros(shape, dtype)
    with self.assertRaises(errors.CodecError):
      self.codec.compress(image)

  def test_not_a_saved_model(self):
    with self.assertRaises(errors.HbdError):
      e2e.E2ECodec(self.tmp)


if __name__ == "__main__":
  tf.test.main()
