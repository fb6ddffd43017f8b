"""Tests of tf_hbd.baselines.scaling (the compute-scaling curves)."""

import json
import os

from absl.testing import absltest

from tf_hbd.baselines import folders
from tf_hbd.baselines import scaling


def _records(gains):
  return [{"step": 2000 * (i + 1), "seconds": 900.0 * (i + 1),
           "hours": 0.25 * (i + 1), "bpp": 0.41, "psnr": 28.0 + g,
           "ms_ssim": 0.96, "jpeg_bpp": 0.40, "jpeg_psnr": 28.0,
           "vs_jpeg_db": g} for i, g in enumerate(gains)]


class ScalingTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = self.create_tempdir().full_path
    path = os.path.join(self.tmp, "curve.jsonl")
    records = _records([-1.0, 0.5, 0.25])
    with open(path, "w") as f:  # a step logged twice: the last one wins
      f.writelines(json.dumps(r) + "\n" for r in
                   [dict(records[1], vs_jpeg_db=9.0)] + records)
    self.models = [folders.ModelFolder("e2e-l0.005", "e2e", self.tmp,
                                       curve=path),
                   folders.ModelFolder("goog", "goog", self.tmp)]  # no curve

  def test_markdown(self):
    curves = scaling.load_curves(self.models)
    self.assertEqual(list(curves), ["e2e-l0.005"])
    self.assertEqual([r["step"] for r in curves["e2e-l0.005"]],
                     [2000, 4000, 6000])
    text = scaling.scaling_markdown(curves)
    self.assertIn("| 4,000 | 0.50 | 0.4100 | 28.50 | 0.9600 | 28.00 | "
                  "+0.50 |", text)
    self.assertIn("Best +0.50 dB at step 4,000 (0.50 h); last +0.25 dB at "
                  "step 6,000 (0.75 h).", text)

  def test_files(self):
    paths = scaling.write_scaling(scaling.load_curves(self.models),
                                  os.path.join(self.tmp, "out"))
    self.assertEqual(sorted(paths), ["hours", "markdown", "step"])
    for key in ("hours", "step"):
      with open(paths[key], "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
    self.assertTrue(paths["step"].endswith("baseline_scaling_steps.png"))
    with open(paths["markdown"]) as f:
      self.assertIn("**e2e-l0.005**", f.read())


if __name__ == "__main__":
  absltest.main()
