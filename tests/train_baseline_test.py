"""Tests of scripts/train_baseline.py, run as a user runs it (a subprocess)."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_SCRIPT = os.path.join(_ROOT, "scripts", "train_baseline.py")


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return subprocess.run([sys.executable, _SCRIPT, *args], env=env,
                        capture_output=True, text=True, timeout=600)


class TrainBaselineTest(parameterized.TestCase):

  def test_a_flag_of_the_other_family_is_refused(self):
    proc = _run("--family=e2e", "--train_dir=x", "--checkpoint_dir=y",
                "--iterations=4")
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertIn("--iterations belong(s) to --family=goog", proc.stderr)

  @parameterized.parameters(
      ("e2e", ["--lmbda=0.01", "--num_filters=8"]),
      ("goog", ["--iterations=2", "--encoder_rnn=8,8,8",
                "--decoder_rnn=8,8,8,8", "--encoder_conv=8",
                "--decoder_conv=8"]))
  def test_tiny_run_exports(self, family, extra):
    tmp = self.create_tempdir().full_path
    train = os.path.join(tmp, "train")
    os.makedirs(train)
    rng = np.random.default_rng(0)
    for i in range(2):
      Image.fromarray(rng.integers(0, 256, (64, 64), np.uint8)).save(
          os.path.join(train, f"{i}.png"))
    export = os.path.join(tmp, "saved")
    proc = _run(f"--family={family}", f"--train_dir={train}",
                f"--checkpoint_dir={os.path.join(tmp, 'ckpt')}",
                f"--export_dir={export}", "--patch_size=32",
                "--batch_size=2", "--max_steps=2", *extra)
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn("done:", proc.stdout)
    self.assertTrue(os.path.isfile(os.path.join(export, "saved_model.pb")))


if __name__ == "__main__":
  absltest.main()
