"""Golden figures: the shipped decoders', baselines' and codecs' PSNR and bpp
on fixed scikit-image crops stay where tests/golden.json pins them
(+-0.01 dB). Regenerate with `python scripts/golden.py --write` after
replacing a shipped model or a codec on purpose."""

import json
import os

import tensorflow as tf

from tf_hbd.evaluation import golden

GOLDEN_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "golden.json")


class GoldenTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    with open(GOLDEN_FILE) as f:
      cls.expected = json.load(f)
    cls.got = golden.compute()

  def test_every_figure_matches_within_tolerance(self):
    problems = golden.compare(self.expected, self.got)
    self.assertEmpty(problems, msg="\n".join(problems) + "\n(if a shipped "
                     "model or codec was replaced on purpose: python "
                     "scripts/golden.py --write)")

  def test_shipped_decoders_beat_their_codec_at_the_same_rate(self):
    # Never worse on any image; better on at least one (the JPEG 2000
    # guards return the smooth astronaut crop as decoded: issue 19).
    for codec in ("jpeg", "jp2"):
      gains = []
      for name in golden.IMAGES:
        base = self.got[f"{name}/{codec}"]
        hbd = self.got[f"{name}/hbd-lstm-{codec}"]
        self.assertEqual(hbd["bpp"], base["bpp"])
        self.assertGreaterEqual(hbd["psnr"], base["psnr"], msg=f"{name} {codec}")
        self.assertLessEqual(base["bpp"], golden.TARGET_BPP)  # codec contract
        gains.append(hbd["psnr"] - base["psnr"])
      self.assertGreater(max(gains), 0.05, msg=codec)

  def test_compare_reports_a_drift_beyond_the_tolerance(self):
    key = sorted(self.expected)[0]
    shifted = json.loads(json.dumps(self.expected))
    shifted[key]["psnr"] += 2 * golden.PSNR_TOLERANCE_DB
    self.assertLen(golden.compare(shifted, self.expected), 1)
    shifted[key]["psnr"] -= 1.5 * golden.PSNR_TOLERANCE_DB  # within again
    shifted[key]["bpp"] += 2 * golden.BPP_TOLERANCE
    self.assertRegex(golden.compare(shifted, self.expected)[0],
                     f"^{key}: .* bpp, expected")
    del shifted[key]
    self.assertEqual(golden.compare(shifted, self.expected),
                     [f"{key}: computed, no expected value (regenerate)"])


if __name__ == "__main__":
  tf.test.main()
