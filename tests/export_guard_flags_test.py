"""scripts/export.py end to end: the guard flags reach both runtimes."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import sample_images
from tf_hbd.inference import numpy_serving
from tf_hbd.inference import serving
from tf_hbd.model import decoder as decoder_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ExportScriptTest(tf.test.TestCase):

  def test_jp2_guard_flags_are_stored_and_applied(self):
    root = self.get_temp_dir()
    run = os.path.join(root, "run")
    model = decoder_lib.build_decoder("lstm", units=8, patch_size=8, K=2,
                                      seed=3, setting_size=1,
                                      boundary="replicate")
    model(model.dummy_inputs())
    rng = np.random.default_rng(2)
    for v in model.readout_variables:
      v.assign(rng.normal(0, 0.3, v.shape).astype(np.float32))
    decoder_lib.export_saved_model(model, os.path.join(run, "export"))
    with open(os.path.join(run, "log.json"), "w") as f:
      json.dump({"algorithm": "bptt", "epochs": [],
                 "flags": {"codec": "jp2", "cell": "lstm"}}, f)
    out = os.path.join(root, "served")
    # Its own process: the script's absl flags would clash with others'.
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "export.py"),
         f"--model_dir={run}", f"--out={out}", "--jp2_max_bpp=0.7",
         "--jp2_max_flat_fraction=0.5", "--jp2_min_activity_per_bpp=15",
         "--jp2_full_activity_per_bpp=30"],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
        text=True, timeout=900, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(os.path.join(out, serving.METADATA_FILE)) as f:
      meta = json.load(f)
    self.assertEqual(meta["passthrough"], {
        "jpeg_min_noise": 0.0, "jpeg_min_coded_noise": 0.0,
        "jp2_max_bpp": 0.7, "jp2_max_flat_fraction": 0.5,
        "jp2_min_activity_per_bpp": 15.0, "jp2_full_activity_per_bpp": 30.0})
    fast, slow = numpy_serving.load(out), serving.load(out)
    self.assertIsInstance(fast, numpy_serving.NumpyModel)
    graphic = np.full((48, 64), 30, np.uint8)
    graphic[8:40, 16:48] = 220  # most 8 x 8 tiles constant
    busy = sample_images.load_sample("grass")[:96, :128]
    changed = []
    for img in (graphic, busy):
      dec, enc = codecs.roundtrip(img, "jp2", bpp=0.3)
      st = codec_setting.features(enc.data, "jp2", dec.shape)
      a, b = fast.refine(dec, setting=st), slow.refine(dec, setting=st)
      self.assertLessEqual(np.abs(a.astype(int) - b).max(), 1)
      changed.append(bool(np.any(a != dec)))
      ratio = numpy_serving.laplacian_activity(dec) / (2.0 ** (4.0 * st[0]))
      self.assertEqual(ratio > 30, img is busy)  # full correction
    self.assertEqual(changed, [False, True])  # the graphic passes through


if __name__ == "__main__":
  tf.test.main()
