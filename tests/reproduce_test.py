"""scripts/reproduce.py --scale=tiny end to end (slow: trains 8 decoders)."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
class ReproduceTinyTest(tf.test.TestCase):

  def test_tiny_scale_writes_every_artifact(self):
    out = self.create_tempdir().full_path
    work = self.create_tempdir().full_path
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "reproduce.py"),
         "--scale=tiny", f"--out_dir={out}", f"--work_dir={work}",
         "--algorithms=bptt,uoro"], check=True, env=env, timeout=1500)
    for name in ("README.md", "table3.md", "table1_sample_test.md",
                 "figure1.png", "convergence.md", "rd_sample_test.png"):
      self.assertTrue(os.path.exists(os.path.join(out, name)), name)
    table = open(os.path.join(out, "table3.md")).read()
    for row in ("JPEG", "JPEG 2000", "GOOG", "E2E (Neural)",
                "LSTM-JPEG-BPTT", "LSTM-JPEG-UORO", "SNE-RNN-JPEG-BPTT",
                "LSTM-JP2-BPTT", "LSTM-JP2-UORO", "SNE-RNN-JP2-BPTT"):
      self.assertIn(f"| {row} |", table)
    readme = open(os.path.join(out, "README.md")).read()
    self.assertIn("machine:", readme)


if __name__ == "__main__":
  tf.test.main()
