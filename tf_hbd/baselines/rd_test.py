"""Tests of tf_hbd.baselines.rd (the rate-distortion table)."""

import os
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import baselines
from tf_hbd import metrics
from tf_hbd import sample_images
from tf_hbd.baselines import rd


class RdTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.gray = sample_images.load_sample("camera")[64:192, 128:320]
    cls.path = os.path.join(tempfile.mkdtemp(), "cam.png")
    Image.fromarray(cls.gray).save(cls.path)

  def test_settings(self):
    s = rd.settings((1, 3), targets=(0.37,))
    e2e_names = baselines.available("e2e")
    self.assertEqual(s[:2], [("goog k=1", "goog", 1, None),
                             ("goog k=3", "goog", 3, None)])
    self.assertEqual([x[0] for x in s[2:2 + len(e2e_names)]], e2e_names)
    self.assertEqual(s[-2:], [("e2e @0.37", "e2e", None, 0.37),
                              ("goog @0.37", "goog", None, 0.37)])

  def test_records_compare_codecs_at_the_neural_rate(self):
    e2e_name = baselines.available("e2e")[0]
    neural = [("goog k=2", "goog", 2, None), (e2e_name, e2e_name, None, None),
              ("goog @0.3", "goog", None, 0.3)]
    records = rd.evaluate([self.path], neural, log=lambda _: None)
    self.assertLen(records, 9)
    for i in range(0, 9, 3):
      mine, jpeg, jp2 = records[i:i + 3]
      self.assertEqual([jpeg["codec"], jp2["codec"]], ["jpeg", "jp2"])
      self.assertEqual(jpeg["setting"], mine["setting"])
      self.assertLessEqual(jpeg["bpp"], mine["bpp"] + 1e-12)
      self.assertLessEqual(jp2["bpp"], mine["bpp"] + 1e-12)
      self.assertGreater(jp2["bpp"], 0.9 * mine["bpp"])
    goog2 = records[0]
    self.assertEqual((goog2["codec"], goog2["model"], goog2["iterations"]),
                     ("goog", "goog", 2))
    decoded = baselines.load("goog").reconstruct(self.gray, 2)
    self.assertAlmostEqual(goog2["psnr"], metrics.psnr(self.gray, decoded))
    self.assertEqual(records[6]["iterations"], 2)  # 0.3 bpp: 2 iterations
    rows = rd.summarize(records + [dict(records[0], psnr=0.0)])
    self.assertLen(rows, 9)
    self.assertEqual(rows[0]["images"], 2)
    self.assertAlmostEqual(rows[0]["psnr"], records[0]["psnr"] / 2)
    table = rd.markdown(rows)
    self.assertLen(table.splitlines(), 11)
    self.assertIn(f"| goog k=2 | goog | {goog2['bpp']:.4f} |", table)
    self.assertTrue(np.isfinite([r["psnr"] for r in rows]).all())


if __name__ == "__main__":
  tf.test.main()
