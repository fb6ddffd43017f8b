"""scripts/evaluate.py end to end on tiny images and tiny models."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd.data import pipelines as data
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.evaluation import systems as evaluation
from tf_hbd.data import sample_images
from tf_hbd.inference import serving

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _export(path, label, zero_readout, codec="jpeg"):
  model = decoder_lib.build_decoder("lstm", units=8, patch_size=8, K=2,
                                    seed=5)
  model(model.dummy_inputs())
  if zero_readout:  # residual decoder that returns the decoded image exactly
    for v in model.readout_variables:
      v.assign(tf.zeros_like(v))
  else:
    rng = np.random.default_rng(1)
    for v in model.readout_variables:
      v.assign(rng.normal(0, 0.02, v.shape).astype(np.float32))
  serving.export_serving(model, path, codec, metadata={"label": label,
                                                       "algorithm": "bptt"})
  return path


class EvaluateScriptTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = tf.compat.v1.test.get_temp_dir()
    cls.images = os.path.join(root, "imgs")
    os.makedirs(cls.images, exist_ok=True)
    for name in ("camera", "coffee"):
      gray = sample_images.load_sample(name)[40:104, 60:140]
      Image.fromarray(gray).save(os.path.join(cls.images, name + ".png"))
    cls.identity = _export(os.path.join(root, "identity"), "IDENTITY-JPEG",
                           True)
    cls.tiny = _export(os.path.join(root, "tiny"), "TINY-JPEG", False)

  def _run(self, *args):
    # Its own process: the script's absl flags (--bpp, --out_dir, ...) would
    # clash with other scripts' flags loaded into this test process.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "evaluate.py"), *args],
        env=env, capture_output=True, text=True, timeout=900, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    return proc.returncode

  def test_every_system_present_with_finite_values(self):
    out = self.create_tempdir().full_path
    code = self._run(f"--datasets=tiny={self.images}", "--bpp=0.6",
                     f"--decoders={self.identity},{self.tiny}",
                     f"--out_dir={out}", "--k_sweep=1,2,3",
                     "--rd_bpps=0.5,0.9")
    self.assertEqual(code, 0)
    names = ["JPEG", "JPEG 2000", "GOOG", "E2E (Neural)", "IDENTITY-JPEG",
             "TINY-JPEG"]
    table = open(os.path.join(out, "table3.md")).read()
    docs = {}
    for name in names:
      self.assertIn(f"| {name} |", table)
      path = os.path.join(out, "tiny", evaluation._slug(name) + ".json")  # pylint: disable=protected-access
      with open(path) as f:
        docs[name] = json.load(f)
      doc = docs[name]
      self.assertEqual(doc["name"], name)
      for key in ("bpp", "psnr", "ssim", "ms-ssim"):
        self.assertLen(doc["results"][key], 1)
        self.assertTrue(np.isfinite(doc["results"][key][0]), (name, key))
      self.assertLen(doc["per_image"], 2)
    # A decoder that returns its input scores exactly the codec's numbers.
    for key in ("bpp", "psnr", "ssim", "ms-ssim"):
      self.assertEqual(docs["IDENTITY-JPEG"]["results"][key],
                       docs["JPEG"]["results"][key])
    self.assertNotEqual(docs["TINY-JPEG"]["results"]["psnr"],
                        docs["JPEG"]["results"]["psnr"])
    t1 = open(os.path.join(out, "table1_tiny.md")).read()
    self.assertIn("| K=1 | K=2 | K=3 |", t1)
    self.assertTrue(os.path.exists(os.path.join(out, "rd_tiny.png")))
    with open(os.path.join(out, "rd", "tiny", "JPEG.json")) as f:
      self.assertLen(json.load(f)["results"]["psnr"], 2)

  def test_k_sweep_calls_the_model_with_each_k(self):
    seen = []

    def refine(img, K=None, encoded=None):
      seen.append(K)
      assert encoded.codec == "jpeg"  # the bitstream reaches the decoder
      return img

    dec = evaluation.LoadedDecoder("SPY-JPEG", "jpeg", refine, 4, None, "-")
    gray = sample_images.load_sample("camera")[:64, :64]
    imgs = [data.EvalImage("a", gray)]
    systems = [evaluation.trained_decoder_system(dec, K=k) for k in (1, 3, 5)]
    res = evaluation.evaluate(imgs, systems, [0.5])
    self.assertEqual(seen, [1, 3, 5])
    self.assertEqual(sorted(res), ["SPY-JPEG K=1", "SPY-JPEG K=3",
                                   "SPY-JPEG K=5"])


if __name__ == "__main__":
  tf.test.main()
