"""`make quickstart`'s main job (tf_hbd.workflows.quickstart) end to end,
on a tiny budget: build the sample TFRecords, train, evaluate, enhance."""

import contextlib
import io
import os

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tf_hbd.workflows import quickstart


class QuickstartTest(tf.test.TestCase):

  @pytest.mark.slow  # about 1.5 min of CPU
  def test_main_job_runs_and_writes_everything_it_announces(self):
    out = self.create_tempdir().full_path
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
      code = quickstart.main(["--out", out, "--minutes", "0", "--units",
                              "8"])
    text = stdout.getvalue()
    self.assertEqual(code, 0, msg=text[-3000:])
    for step in ("== 1. Building", "== 2. Training", "== 3. Evaluating",
                 "== 4. hbd enhance"):
      self.assertIn(step, text)
    model_dir = os.path.join(out, "model")
    self.assertTrue(os.path.isfile(os.path.join(model_dir, "serving",
                                                "saved_model.pb")))
    with open(os.path.join(out, "results", "table3.md")) as f:
      table = f.read()
    self.assertIn("JPEG", table.upper())
    self.assertRegex(text, r"\[1/1\] .*camera_0\.37bpp\.jpg \(jpeg, "
                     r"\d+x\d+\) -> ")
    jpg = np.asarray(Image.open(os.path.join(out, "camera_0.37bpp.jpg")))
    enhanced = np.asarray(Image.open(os.path.join(out, "enhanced",
                                                  "camera_0.37bpp.png")))
    self.assertEqual(enhanced.shape, jpg.shape)


if __name__ == "__main__":
  tf.test.main()
