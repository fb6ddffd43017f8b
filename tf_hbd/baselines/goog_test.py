"""Tests of tf_hbd.baselines.goog (on a small freshly built model)."""

import os
import subprocess
import sys
import tempfile

from absl.testing import parameterized
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.data import sample_images
from tf_hbd.baselines import container
from tf_hbd.baselines import goog
from tf_hbd.baselines import goog_bits
from tf_hbd.baselines import training

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

_SMALL = goog.GoogConfig(encoder_conv=8, encoder_rnn=(8, 12, 12),
                         decoder_conv=12, decoder_rnn=(12, 12, 8, 8))


def _model(seed=5):
  tf.random.set_seed(seed)
  return goog.GoogModel(_SMALL)


class GoogModelTest(tf.test.TestCase, parameterized.TestCase):

  def test_code_grid_is_32_bits_per_16x16_pixels(self):
    model = _model()
    enc, dec = model.initial_state(2, 64, 96)
    codes, enc = model.encode_step(tf.zeros((2, 64, 96, 1)), enc)
    self.assertEqual(tuple(codes.shape), (2, 4, 6, 32))
    self.assertAllInSet(codes.numpy(), [-1.0, 1.0])
    delta, _ = model.decode_step(codes, dec)
    self.assertEqual(tuple(delta.shape), (2, 64, 96, 1))
    self.assertEqual(goog.code_bytes((64, 96)), 4 * 6 * 32 // 8)
    self.assertEqual(goog.padded_shape((33, 64)), (64, 64))

  def test_deterministic_binarizer_is_sign(self):
    x = tf.constant([-0.7, -1e-6, 0.0, 0.3])
    self.assertAllEqual(goog._binarize(x, stochastic=False),
                        [-1.0, -1.0, 1.0, 1.0])

  def test_stochastic_binarizer_is_unbiased_and_straight_through(self):
    tf.random.set_seed(0)
    x = tf.fill((200_000,), 0.4)
    with tf.GradientTape() as tape:
      tape.watch(x)
      b = goog._binarize(x, stochastic=True)
      total = tf.reduce_sum(b * 3.0)
    self.assertAllInSet(b.numpy(), [-1.0, 1.0])
    self.assertNear(float(tf.reduce_mean(b)), 0.4, 0.01)
    self.assertAllClose(tape.gradient(total, x), tf.fill((200_000,), 3.0))

  def test_conv_lstm_cell(self):
    cell = goog.ConvLSTMCell(6, 3, 1, strides=2)
    cell.build((None, None, None, 4))
    bias = cell.input_conv.bias.numpy()
    self.assertAllEqual(bias[6:12], np.ones(6))
    self.assertAllEqual(np.delete(bias, range(6, 12)), np.zeros(18))
    h0 = tf.zeros((1, 5, 4, 6))
    h, (h1, c1) = cell(tf.ones((1, 10, 8, 4)), (h0, h0))
    self.assertEqual(tuple(h.shape), (1, 5, 4, 6))
    self.assertAllEqual(h, h1)
    self.assertAllLess(tf.abs(h), 1.0)

  def test_losses_and_training(self):
    model = _model()
    opt = tf.keras.optimizers.Adam(3e-3)
    images = tf.constant(np.tile(np.linspace(0, 255, 32, dtype=np.uint8),
                                 (2, 32, 1))[..., None])
    evaluate = lambda: model(images, iterations=4, training=False)
    first = evaluate()
    self.assertEqual(set(first), {"loss", "psnr_1", "psnr_2", "psnr_3",
                                  "psnr_4"})
    for _ in range(30):
      with tf.GradientTape() as tape:
        loss = model(images, iterations=4, training=True)["loss"]
      variables = model.trainable_variables
      opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
    self.assertLess(float(evaluate()["loss"]), 0.9 * float(first["loss"]))

  def test_iteration_weights(self):
    self.assertEqual(goog.iteration_weights(None, 4), (0.25,) * 4)
    self.assertEqual(goog.iteration_weights("4,4,4,1", 5),
                     (4 / 14, 4 / 14, 4 / 14, 1 / 14, 1 / 14))
    self.assertEqual(goog.iteration_weights((3, 1), 3), (0.6, 0.2, 0.2))
    self.assertEqual(goog.iteration_weights("1,0", 3), (1.0, 0.0, 0.0))
    for bad in ("", "a,1", "1,-1", "0,0", "1,2,3", "nan", ()):
      with self.assertRaisesRegex(ValueError, "loss weights"):
        goog.iteration_weights(bad, 2)

  def test_loss_norms_and_weights(self):
    model = _model()
    images = tf.constant(np.tile(np.linspace(0, 255, 32, dtype=np.uint8),
                                 (2, 32, 1))[..., None])
    x = images.numpy().astype(np.float32) / 255.0 - 0.5
    # Deterministic binarizer: the residuals are the reconstructions'.
    residuals = [x]
    x_hat = np.zeros_like(x)
    enc, dec = model.initial_state(2, 32, 32)
    for _ in range(3):
      codes, enc = model.encode_step(tf.constant(residuals[-1]), enc)
      delta, dec = model.decode_step(codes, dec)
      x_hat = x_hat + delta.numpy()
      residuals.append(x - x_hat)
    l1 = [np.mean(np.abs(r)) for r in residuals[1:]]
    l2 = [np.mean(np.square(r)) for r in residuals[1:]]
    loss = lambda **kw: float(model(images, iterations=3, **kw)["loss"])
    self.assertAllClose(loss(), np.mean(l1), rtol=1e-5)
    self.assertAllClose(loss(loss_norm="l2"), np.mean(l2), rtol=1e-5)
    self.assertAllClose(loss(loss_weights="2,1"),
                        0.5 * l1[0] + 0.25 * (l1[1] + l1[2]), rtol=1e-5)
    self.assertAllClose(loss(loss_norm="l2", loss_weights=(1, 0)), l2[0],
                        rtol=1e-5)
    with self.assertRaisesRegex(ValueError, "loss_norm"):
      loss(loss_norm="l3")

  def test_train_with_a_weighted_l2_loss(self):
    tmp = tempfile.mkdtemp()
    train_dir = os.path.join(tmp, "train")
    os.makedirs(train_dir)
    Image.fromarray(sample_images.load_sample("camera")[:64, :64]).save(
        os.path.join(train_dir, "a.png"))
    lines = []
    result = goog.train(
        train_dir=train_dir, checkpoint_dir=os.path.join(tmp, "ckpt"),
        export_dir=None, config=_SMALL, batch_size=2, iterations=2,
        max_steps=2, log_every=1, loss_norm="l2", loss_weights="3,1",
        warmup_steps=1, log=lines.append)
    self.assertEqual(result["step"], 2)
    history = training.read_jsonl(os.path.join(tmp, "ckpt", "history.jsonl"))
    self.assertLen(history, 2)
    self.assertLess(history[0]["loss"], 0.25)  # squared residuals, not |r|
    with self.assertRaisesRegex(ValueError, "loss weights"):
      goog.train(train_dir=train_dir, checkpoint_dir=os.path.join(tmp, "x"),
                 export_dir=None, config=_SMALL, iterations=2,
                 loss_weights="1,1,1")


class GoogCodecTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    path = os.path.join(cls.tmp, "goog-test")
    goog.export(_model(), path)
    cls.codec = goog.GoogCodec(path)
    cls.photo = sample_images.load_sample("camera")[100:164, 200:296]

  @parameterized.parameters(1, 3)
  def test_round_trip_equals_reconstruction(self, k):
    data = self.codec.compress(self.photo, k)
    decoded = self.codec.decompress(data)
    self.assertEqual(decoded.shape, self.photo.shape)
    self.assertEqual(decoded.dtype, np.uint8)
    np.testing.assert_array_equal(decoded,
                                  self.codec.reconstruct(self.photo, k))
    self.assertEqual(len(data), container.header_bytes("goog-test", b"k") +
                     k * goog.code_bytes(self.photo.shape))
    self.assertAlmostEqual(8 * len(data) / self.photo.size,
                           self.codec.bpp(self.photo.shape, k, 9))
    self.assertAlmostEqual(k / 8, 8 * k * goog.code_bytes(self.photo.shape)
                           / self.photo.size)

  def test_iteration_reconstructions_and_validation_metrics(self):
    model = _model(seed=9)
    path = os.path.join(self.tmp, "goog-val")
    goog.export(model, path)
    codec = goog.GoogCodec(path)
    image = self.photo[:40, :70]
    recs = goog.iteration_reconstructions(model, image, 4)
    self.assertEqual(recs.shape, (4,) + image.shape)
    for k in (1, 2, 4):
      np.testing.assert_array_equal(
          recs[k - 1], codec.decompress(codec.compress(image, k)))
    m = goog.validation_metrics(model, [image], name="goog-val",
                                iterations=4, compare_at=2)
    from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
    for k in range(1, 5):
      self.assertAlmostEqual(m[f"psnr_{k}"], metrics.psnr(image, recs[k - 1]),
                             places=3)
    self.assertAlmostEqual(m["psnr"], m["psnr_2"], places=3)
    self.assertAlmostEqual(
        m["bpp"], 8 * len(codec.compress(image, 2)) / image.size, places=4)

  def test_prefix_of_codes_decodes_like_fewer_iterations(self):
    codes = self.codec.codes(self.photo, 5)
    self.assertEqual(codes.shape, (5, goog.code_bytes(self.photo.shape)))
    np.testing.assert_array_equal(codes[:2], self.codec.codes(self.photo, 2))
    np.testing.assert_array_equal(
        self.codec.decompress(self.codec.pack(self.photo.shape, codes, 2)),
        self.codec.reconstruct(self.photo, 2))

  @parameterized.parameters((1, 1), (33, 17), (31, 64), (5, 130))
  def test_odd_sizes(self, h, w):
    image = np.random.default_rng(h * w).integers(0, 256, (h, w), np.uint8)
    data = self.codec.compress(image, 2)
    decoded = self.codec.decompress(data)
    self.assertEqual(decoded.shape, (h, w))
    np.testing.assert_array_equal(decoded, self.codec.reconstruct(image, 2))

  def test_truncated_and_corrupt_streams_raise(self):
    data = self.codec.compress(self.photo, 2)
    for n in (0, 3, 12, len(data) // 2, len(data) - 1):
      with self.assertRaises(errors.BitstreamError):
        self.codec.decompress(data[:n])
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0x01
    with self.assertRaises(errors.BitstreamError):
      self.codec.decompress(bytes(bad))

  @parameterized.parameters(b"", b"\x00", b"\x11", b"\x02\x01\x00")
  def test_bad_iteration_byte_raises(self, params):
    size = goog.code_bytes((20, 20))
    data = container.pack("goog-test", (20, 20), params, b"\0" * size)
    with self.assertRaisesRegex(errors.BitstreamError, "iteration"):
      self.codec.decompress(data)

  def test_payload_size_mismatch_raises(self):
    size = goog.code_bytes((20, 20))
    data = container.pack("goog-test", (20, 20), b"\x02", b"\0" * size)
    with self.assertRaisesRegex(errors.BitstreamError, "payload"):
      self.codec.decompress(data)

  @parameterized.parameters(0, 17)
  def test_iterations_out_of_range(self, k):
    with self.assertRaises(errors.CodecError):
      self.codec.compress(self.photo, k)


class GoogFloat16Test(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.model = _model(seed=7)
    cls.paths = {w: goog.export(cls.model, os.path.join(cls.tmp, w, "goog-h"),
                                weights=w) for w in goog.WEIGHT_DTYPES}
    cls.photo = sample_images.load_sample("camera")[100:164, 200:296]

  def test_kernels_are_float16_the_rest_float32(self):
    twin = goog.stored_twin(self.model, "float16")
    self.assertIs(goog.stored_twin(self.model, "float32"), self.model)
    kernels = [v for v in twin.variables if "kernel" in v.name]
    self.assertLen(kernels, 4 + 2 * 7)  # e_conv, binarizer, d_conv, d_out
    self.assertEqual({v.dtype for v in kernels}, {tf.float16})
    kernel_ids = {id(v) for v in kernels}
    self.assertEqual({v.dtype for v in twin.variables
                      if id(v) not in kernel_ids}, {tf.float32})
    self.assertLen(twin.variables, len(self.model.variables))
    with self.assertRaisesRegex(ValueError, "weights"):
      goog.stored_twin(self.model, "bfloat16")

  def test_saved_model_stores_float16_and_is_smaller(self):
    reader = tf.train.load_checkpoint(
        os.path.join(self.paths["float16"], "variables", "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    self.assertIn(tf.float16, dtypes.values())
    sizes = {w: os.path.getsize(os.path.join(
        p, "variables", "variables.data-00000-of-00001"))
             for w, p in self.paths.items()}
    self.assertLess(sizes["float16"], 0.6 * sizes["float32"])

  @parameterized.parameters(1, 4)
  def test_codec_is_exact_and_close_to_float32(self, k):
    codec, codec32 = (goog.GoogCodec(self.paths[w])
                      for w in ("float16", "float32"))
    decoded = codec.decompress(codec.compress(self.photo, k))
    np.testing.assert_array_equal(decoded, codec.reconstruct(self.photo, k))
    diff = np.abs(decoded.astype(int) -
                  codec32.reconstruct(self.photo, k).astype(int))
    self.assertLessEqual(diff.max(), 2)
    self.assertLess(np.mean(diff > 0), 0.05)


class GoogEntropyCodingTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    camera = sample_images.load_sample("camera")
    fit = [camera[y:y + 64, x:x + 64] for y in (0, 64) for x in (0, 96, 192)]
    cls.path = os.path.join(cls.tmp, "goog-ec")
    goog.export(_model(), cls.path, fit_images=fit, fit_source="6 crops")
    cls.codec = goog.GoogCodec(cls.path)
    # The same model with float16 kernels (its own tables, fitted with them).
    cls.path16 = os.path.join(cls.tmp, "float16", "goog-ec")
    goog.export(_model(), cls.path16, fit_images=fit, weights="float16")
    cls.photo = camera[100:164, 200:296]  # not among the fitting crops

  def test_tables_are_in_the_saved_model(self):
    self.assertEqual(goog.bit_source_of(self.path), "6 crops")
    self.assertEqual(goog.bit_source_of(self.path16), "")
    self.assertIsNone(goog.bit_source_of(self._plain_model()))
    parents, lookup = self.codec.bit_tables
    self.assertEqual(parents.shape, (16, 32, goog_bits.PARENTS))
    self.assertEqual(lookup.shape, (16 * 32 * 2 ** goog_bits.PARENTS, 4))
    plain = goog.GoogCodec(self._plain_model())
    self.assertIsNone(plain.bit_tables)
    with self.assertRaisesRegex(errors.CodecError, "tables"):
      plain.pack(self.photo.shape, plain.codes(self.photo, 1),
                 entropy_coded=True)

  def _plain_model(self):
    """The same model without tables, under the same name."""
    path = os.path.join(self.tmp, "plain", "goog-ec")
    if not os.path.isdir(path):
      goog.export(_model(), path)
    return path

  def test_every_prefix_decodes_and_is_smaller(self):
    codes = self.codec.codes(self.photo, 4)
    for k in range(1, 5):
      coded = self.codec.pack(self.photo.shape, codes, k, entropy_coded=True)
      raw = self.codec.pack(self.photo.shape, codes, k, entropy_coded=False)
      self.assertEqual(container.unpack(coded).params, bytes([k, 1]))
      self.assertEqual(container.unpack(raw).params, bytes([k]))
      if k > 1:  # (this untrained model's first iteration is ~random)
        self.assertLess(len(coded), len(raw))
      self.assertEqual(self.codec.pack(self.photo.shape, codes, k),
                       min(raw, coded, key=len))
      expected = self.codec.reconstruct(self.photo, k)
      np.testing.assert_array_equal(self.codec.decompress(coded), expected)
      np.testing.assert_array_equal(self.codec.decompress(raw), expected)
    self.assertEqual(self.codec.compress(self.photo, 3),
                     self.codec.pack(self.photo.shape, codes, 3))

  def test_file_at_bpp_counts_the_real_sizes(self):
    from tf_hbd import baselines  # pylint: disable=g-import-not-at-top
    codes = self.codec.codes(self.photo)
    sizes = [len(self.codec.pack(self.photo.shape, codes, k))
             for k in range(1, 17)]
    for k in (1, 3, 9):
      target = 8.0 * (sizes[k - 1] + 0.5) / self.photo.size
      data = baselines._goog_file_at_bpp(  # pylint: disable=protected-access
          self.codec, self.photo, target)
      self.assertEqual(data, self.codec.pack(self.photo.shape, codes, k))
    data = baselines._goog_file_at_bpp(  # pylint: disable=protected-access
        self.codec, self.photo, 0.01)
    self.assertEqual(container.unpack(data).params[0], 1)

  @parameterized.parameters((1, 1), (33, 17), (5, 130))
  def test_odd_sizes(self, h, w):
    image = np.random.default_rng(h + w).integers(0, 256, (h, w), np.uint8)
    data = self.codec.pack(image.shape, self.codec.codes(image, 2),
                           entropy_coded=True)
    np.testing.assert_array_equal(self.codec.decompress(data),
                                  self.codec.reconstruct(image, 2))

  def test_truncated_and_corrupt_files_raise(self):
    data = self.codec.compress(self.photo, 3)
    self.assertEqual(len(container.unpack(data).params), 2)
    for n in (0, 12, len(data) // 2, len(data) - 1):
      with self.assertRaises(errors.BitstreamError):
        self.codec.decompress(data[:n])
    for pos in (40, len(data) // 2, len(data) - 6):
      bad = bytearray(data)
      bad[pos] ^= 0x04
      with self.assertRaises(errors.BitstreamError):
        self.codec.decompress(bytes(bad))

  def _file(self, params, payload):
    return container.pack("goog-ec", self.photo.shape, params, payload)

  def test_bad_segments_raise(self):
    payload = container.unpack(self.codec.compress(self.photo, 2)).payload
    first = int.from_bytes(payload[:4], "big")
    cases = [
        (bytes([3, 1]), payload, "segment"),  # a segment missing
        (bytes([1, 1]), payload, "after the last segment"),
        (bytes([2, 1]), payload + b"\0", "after the last segment"),
        (bytes([2, 1]), payload[:-1], "segment"),
        (bytes([1, 1]), b"\0\0\0\0", "segment"),  # empty segment
        (bytes([1, 1]), b"\0\0", "segment"),
        (bytes([2, 2]), payload, "coding mode"),
        (bytes([2, 1, 0]), payload, "iteration"),
        (bytes([1, 1]), (first + 1).to_bytes(4, "big") + payload[4:],
         "after the last segment"),
    ]
    for params, body, message in cases:
      with self.assertRaisesRegex(errors.BitstreamError, message):
        self.codec.decompress(self._file(params, body))

  def test_short_file_of_a_huge_image_raises_before_decoding(self):
    payload = b"\0\0\0\x10" + b"\x55" * 16
    data = container.pack("goog-ec", (60000, 60000), bytes([1, 1]), payload)
    with self.assertRaisesRegex(errors.BitstreamError, "too short"):
      self.codec.decompress(data)
    parents, p0 = goog_bits.fit([np.zeros((1, 4, 4, 32), np.uint8)], 1, 2)
    del parents
    # All-zero codes: P(0) near 1 everywhere, yet 2^20 bits need > 8 bytes.
    self.assertGreater(goog_bits.min_segment_bytes(p0, 1 << 20), 8)

  def test_model_without_tables_refuses_entropy_coded_files(self):
    plain = goog.GoogCodec(self._plain_model())
    with self.assertRaisesRegex(errors.BitstreamError, "no tables"):
      plain.decompress(self.codec.compress(self.photo, 2))

  @parameterized.parameters("float32", "float16")
  @pytest.mark.slow
  def test_decoding_is_identical_in_two_processes(self, weights):
    # Slow: two fresh interpreters, side by side, decode the same entropy-coded
    # files; their output bytes must equal each other's and ours.
    model_path = self.path if weights == "float32" else self.path16
    codec = goog.GoogCodec(model_path)
    image = self.photo[:41, :75]
    inputs = []
    for k in (1, 3):
      path = os.path.join(self.tmp, f"two-{weights}-{k}.bin")
      data = codec.pack(image.shape, codec.codes(image, k),
                        entropy_coded=True)
      with open(path, "wb") as f:
        f.write(data)
      inputs.append((path, codec.decompress(data)))
      np.testing.assert_array_equal(inputs[-1][1], codec.reconstruct(image, k))
    script = ("import sys, numpy as np\n"
              "from tf_hbd.baselines import goog\n"
              "codec = goog.GoogCodec(sys.argv[2])\n"
              "for p in sys.argv[3:]:\n"
              "  np.save(p + sys.argv[1] + '.npy',\n"
              "          codec.decompress(open(p, 'rb').read(), p))\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": _ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen(
        [sys.executable, "-c", script, tag, model_path] +
        [p for p, _ in inputs], env=env, cwd=self.tmp,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE) for tag in "ab"]
    for proc in procs:
      _, err = proc.communicate(timeout=600)
      self.assertEqual(proc.returncode, 0, err.decode()[-2000:])
    for path, here in inputs:
      a, b = np.load(path + "a.npy"), np.load(path + "b.npy")
      self.assertEqual(a.tobytes(), b.tobytes(), path)
      self.assertEqual(a.tobytes(), here.tobytes(), path)


if __name__ == "__main__":
  tf.test.main()
