"""Tests of tf_hbd.baselines.ship (campaign models into pretrained/), on a
tiny E2E snapshot shipped once with float16 weights."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.data import sample_images
from tf_hbd.baselines import e2e
from tf_hbd.baselines import folders_test
from tf_hbd.baselines import ship

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _variable_dtypes(saved_model):
  reader = tf.train.load_checkpoint(
      os.path.join(saved_model, "variables", "variables"))
  return {n: d.name for n, d in reader.get_variable_to_dtype_map().items()}


class ShipTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    cls.model, cls.snap = folders_test.write_snapshot(
        os.path.join(cls.tmp, "snaps"))
    cls.dest = os.path.join(cls.tmp, "pretrained")
    folders_test._fake_export(os.path.join(cls.dest, "e2e-old"))  # pylint: disable=protected-access
    folders_test._fake_export(os.path.join(cls.dest, "goog"))  # pylint: disable=protected-access
    cls.lines = []
    [cls.info] = ship.ship([cls.snap], cls.dest, command="ship it",
                           log=cls.lines.append)
    cls.path = os.path.join(cls.dest, "e2e-l0.02")
    cls.image = sample_images.load_sample("camera")[40:97, 140:211]

  def test_shipped_folder_and_size(self):
    self.assertEqual(self.info["path"], self.path)
    self.assertEqual((self.info["step"], self.info["seconds"]), (12, 36.5))
    self.assertEqual(self.info["weights"], "float16")
    md = os.path.getsize(os.path.join(self.path, "MODEL.md"))
    self.assertEqual(self.info["bytes"], ship.folder_bytes(self.path) - md)
    self.assertIn(f"{self.info['bytes']:,} bytes", self.lines[0])
    # Without replace=True the others stay.
    self.assertCountEqual(os.listdir(self.dest), ["e2e-old", "goog",
                                                  "e2e-l0.02"])

  def test_model_md(self):
    with open(os.path.join(self.path, "MODEL.md")) as f:
      text = f.read()
    self.assertIn("Shipped by `ship it`", text)
    self.assertIn("12 steps, 0.01 h of step time", text)
    self.assertIn("* Architecture: E2E (Ballé et al. 2017", text)
    self.assertIn("* Campaign command: `python scripts/baseline_campaign.py",
                  text)
    self.assertIn(f"**{self.info['bytes']:,} bytes**", text)
    self.assertIn("float16", text)
    self.assertIn("| 12 | 0.01 | 0.6200 | 32.00 |", text)  # the curve

  def test_large_weights_are_float16_and_the_codec_is_exact(self):
    shapes = tf.train.load_checkpoint(os.path.join(
        self.path, "variables", "variables")).get_variable_to_shape_map()
    half = [n for n, d in _variable_dtypes(self.path).items()
            if d == "float16"]
    self.assertLen(half, 3 * 6)  # 6 kernels (RDFT real, imag), 6 GDN gammas
    for n in half:  # kernels (RDFT: rank 4) and gammas (N x N)
      self.assertIn(shapes[n], ([4, 4, 5, 3], [4, 1, 9, 5], [1, 4, 9, 5],
                                [4, 4]), n)
    self.assertEqual(ship.folders.stored_weights(self.path), "float16")
    with baselines.use({"e2e-l0.02": self.path}, shipped=False):
      codec = baselines.load("e2e-l0.02")
      data = codec.compress(self.image)
      decoded = baselines.decompress(data)
    self.assertAllEqual(decoded, codec.reconstruct(self.image))

  def test_float16_twin_rounds_the_weights_a_little(self):
    twin = e2e.stored_twin(self.model, "float16")
    batch = self.image[None, :48, :64, None]
    half = twin.analysis.layers[0].kernel_parameter.real
    full = self.model.analysis.layers[0].kernel_parameter.real
    self.assertEqual(half.dtype, tf.float16)
    self.assertNotAllEqual(tf.cast(half, tf.float32), full)
    self.assertAllClose(tf.cast(half, tf.float32), full, rtol=1e-3, atol=0)
    self.assertAllClose(twin(batch)["psnr"], self.model(batch)["psnr"],
                        atol=0.05)
    self.assertIs(e2e.stored_twin(self.model, "float32"), self.model)
    with self.assertRaises(ValueError):
      e2e.stored_twin(self.model, "bfloat16")

  def test_refuses_a_shipped_name_and_replaces_on_request(self):
    with self.assertRaisesRegex(errors.HbdError, "already shipped"):
      ship.ship([self.snap], self.dest, log=lambda _: None)
    dest = os.path.join(self.tmp, "other")
    folders_test._fake_export(os.path.join(dest, "e2e-old"))  # pylint: disable=protected-access
    folders_test._fake_export(os.path.join(dest, "goog"))  # pylint: disable=protected-access
    lines = []
    # An export without a checkpoint ships as it is (here: float16).
    [info] = ship.ship(["e2e-l0.02=" + self.path], dest, replace=True,
                       log=lines.append)
    self.assertEqual(info["weights"], "float16")
    self.assertCountEqual(os.listdir(dest), ["goog", "e2e-l0.02"])
    self.assertIn("removed e2e-old (replaced)", lines)
    self.assertEqual(_variable_dtypes(os.path.join(dest, "e2e-l0.02")),
                     _variable_dtypes(self.path))

  @pytest.mark.slow
  def test_float16_files_decode_identically_in_two_processes(self):
    with baselines.use({"e2e-l0.02": self.path}, shipped=False):
      data = baselines.load("e2e-l0.02").compress(self.image)
      here = baselines.decompress(data)
    bits = os.path.join(self.tmp, "x.bin")
    with open(bits, "wb") as f:
      f.write(data)
    script = ("import sys, numpy as np\n"
              "from tf_hbd import baselines\n"
              "with baselines.use({'e2e-l0.02': sys.argv[1]}):\n"
              "  img = baselines.decompress(open(sys.argv[2], 'rb').read())\n"
              "np.save(sys.argv[2] + sys.argv[3] + '.npy', img)\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": _ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", script, self.path, bits,
                               tag], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for tag in "ab"]
    for proc in procs:
      _, err = proc.communicate(timeout=600)
      self.assertEqual(proc.returncode, 0, err.decode()[-2000:])
    for tag in "ab":
      self.assertEqual(np.load(bits + tag + ".npy").tobytes(), here.tobytes())


class GoogMarkdownTest(tf.test.TestCase):

  def test_says_whether_bits_are_entropy_coded(self):
    # pylint: disable=g-import-not-at-top
    from tf_hbd.baselines import folders
    from tf_hbd.baselines import goog
    # pylint: enable=g-import-not-at-top
    tmp = self.create_tempdir().full_path
    config = goog.GoogConfig(encoder_conv=8, encoder_rnn=(8, 8, 8),
                             decoder_conv=8, decoder_rnn=(8, 8, 8, 8))
    model = goog.GoogModel(config)
    fit = [sample_images.load_sample("camera")[:64, :64]]
    texts = {}
    for tables in (False, True):
      path = goog.export(model, os.path.join(tmp, str(tables), "goog"),
                         fit_images=fit if tables else None,
                         weights="float16",
                         fit_source="1 images of train400" if tables else "")
      found = folders.ModelFolder("goog", "goog", path, export=path)
      texts[tables] = ship.model_markdown(found, path, "float16")
    self.assertIn("**not entropy coded**", texts[False])
    self.assertIn("**entropy coded**", texts[True])
    self.assertIn("fitted on 1 images of train400", texts[True])
    for text in texts.values():
      self.assertIn("* Weights: convolution kernels in float16", text)
      self.assertRegex(text, r"\* Size: \*\*[0-9,]+ bytes\*\*")


if __name__ == "__main__":
  tf.test.main()
