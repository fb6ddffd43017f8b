"""Tests of scripts/neural_codec.py (compress a PNG to a file and back)."""

import contextlib
import importlib.util
import io
import os
import tempfile

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import baselines
from tf_hbd.baselines import container
from tf_hbd.codecs import images
from tf_hbd.data import sample_images

_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts",
                       "neural_codec.py")


def _load_script():
  spec = importlib.util.spec_from_file_location("neural_codec", _SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


cli = _load_script()


def _run(*args, **flag_values):
  flags.FLAGS.mark_as_parsed()
  out, err = io.StringIO(), io.StringIO()
  with flagsaver.flagsaver(**flag_values), contextlib.redirect_stdout(
      out), contextlib.redirect_stderr(err):
    code = cli.main(["neural_codec.py", *args])
  return code, out.getvalue(), err.getvalue()


class NeuralCodecCliTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp()
    rgb = sample_images.load_sample("astronaut")  # gray already; make RGB
    cls.gray = rgb[100:171, 50:149]  # odd size 71 x 99
    cls.png = os.path.join(cls.tmp, "in.png")
    Image.fromarray(np.stack([cls.gray] * 3, -1)).save(cls.png)

  def test_compress_then_decompress_e2e_at_bpp(self):
    binf = os.path.join(self.tmp, "a.bin")
    out = os.path.join(self.tmp, "a.png")
    code, text, _ = _run("compress", self.png, binf, codec="e2e", bpp=0.6)
    self.assertEqual(code, 0)
    self.assertIn("bpp", text)
    with open(binf, "rb") as f:
      data = f.read()
    self.assertLessEqual(8 * len(data) / self.gray.size, max(
        0.6, min(8 * len(baselines.load(n).compress(self.gray)) /
                 self.gray.size for n in baselines.available("e2e"))))
    code, _, _ = _run("decompress", binf, out)
    self.assertEqual(code, 0)
    written = images.load_image(out)
    self.assertEqual(written.mode, "L")
    np.testing.assert_array_equal(written.gray, baselines.decompress(data))

  def test_goog_fixed_iterations(self):
    binf = os.path.join(self.tmp, "g.bin")
    code, text, _ = _run("compress", self.png, binf, codec="goog",
                         iterations=2)
    self.assertEqual(code, 0, text)
    with open(binf, "rb") as f:
      data = f.read()
    self.assertEqual(baselines.model_of(data), "goog")
    # 71 x 99 is padded to 96 x 128: 2 iterations of 48 x 4 bytes of raw
    # bits + header; the shipped GOOG entropy codes them (2 parameter
    # bytes: iterations, coded), so its file is smaller.
    self.assertEqual(container.unpack(data).params, b"\x02\x01")
    self.assertLess(len(data), 2 * 6 * 8 * 4 + 29)

  def test_bad_inputs_exit_with_one_line(self):
    binf = os.path.join(self.tmp, "c.bin")
    _run("compress", self.png, binf, codec="goog", iterations=1)
    with open(binf, "rb") as f:
      data = f.read()
    cut = os.path.join(self.tmp, "cut.bin")
    with open(cut, "wb") as f:
      f.write(data[:-10])
    for args, kw in [
        (("decompress", cut, os.path.join(self.tmp, "x.png")), {}),
        (("decompress", self.png, os.path.join(self.tmp, "x.png")), {}),
        (("decompress", "/nonexistent.bin", "x.png"), {}),
        (("compress", "/nonexistent.png", binf), {}),
        (("compress", self.png, binf), {"codec": "e2e"}),
        (("compress", self.png, binf), {"codec": "e2e", "iterations": 3}),
        (("compress", self.png, binf), {"codec": "jpeg"}),
    ]:
      code, _, err = _run(*args, **kw)
      self.assertEqual(code, 1, (args, kw))
      self.assertTrue(err.startswith("error: "), err)
      self.assertEqual(err.count("\n"), 1, err)
    self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.png")))

  def test_usage_and_list(self):
    self.assertEqual(_run("compress", self.png)[0], 2)
    code, text, _ = _run("list")
    self.assertEqual(code, 0)
    self.assertEqual(text.split(), baselines.available())


if __name__ == "__main__":
  tf.test.main()
