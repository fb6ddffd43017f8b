"""Tests of scripts/train.py, run as a user runs it (a subprocess, so its
flags do not meet other scripts' flags in the test process)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_SCRIPT = os.path.join(_ROOT, "scripts", "train.py")
# A tiny but real run: one sample photograph, downsampled, few batches.
_TINY = ["--units=4", "--K=2", "--batch_size=32", "--train_limit=1",
         "--train_max_side=96", "--val_max_side=64", "--steps_per_epoch=4",
         "--epochs=2", "--log_every=2", "--optimizer=momentum", "--lr=0.01"]


def _env():
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env


def _run(args, timeout=300):
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_ROOT,
                        env=_env(), capture_output=True, text=True,
                        timeout=timeout)


def _weights(model_dir):
  reader = tf.train.load_checkpoint(os.path.join(model_dir, "checkpoints"))
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.startswith("model/")}


class TrainScriptTest(tf.test.TestCase):

  def test_tiny_run_logs_and_exports(self):
    model_dir = self.create_tempdir().full_path
    proc = _run(["--algo=uoro", f"--model_dir={model_dir}", *_TINY])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertRegex(proc.stdout, r"epoch 1/2 step 2/4 loss [\d.]+ .*"
                                  r"blocks/s ETA \d+:\d\d:\d\d")
    self.assertRegex(proc.stdout, r"val PSNR [\d.]+ dB \(codec [\d.]+")
    with open(os.path.join(model_dir, "log.json")) as f:
      log = json.load(f)
    self.assertEqual(log["status"], "finished")
    self.assertEqual(log["algorithm"], "uoro")
    self.assertEqual(log["flags"]["units"], 4)
    self.assertLen(log["epochs"], 2)
    self.assertTrue(os.path.exists(os.path.join(model_dir, "metrics.csv")))
    self.assertTrue(os.path.exists(os.path.join(model_dir, "export",
                                                "saved_model.pb")))

  def test_rtrl_refuses_the_paper_size_with_an_estimate(self):
    model_dir = self.create_tempdir().full_path
    proc = _run(["--algo=rtrl", "--units=512", "--rtrl_max_gb=4",
                 f"--model_dir={model_dir}", "--train_limit=1",
                 "--train_max_side=64", "--val_max_side=32"])
    self.assertEqual(proc.returncode, 1)
    self.assertRegex(proc.stderr, r"RTRL would need about [\d.]+ GiB .*512 "
                                  r"units at batch 256.*largest units that "
                                  r"fit at this batch size: \d+")

  @pytest.mark.slow
  def test_kill_9_then_rerun_ends_with_identical_weights(self):
    args = ["--algo=sab", *_TINY, "--steps_per_epoch=8",
            "--checkpoint_every=2", "--log_every=1", "--export=false"]
    full_dir = self.create_tempdir().full_path
    proc = _run([f"--model_dir={full_dir}", *args])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    killed_dir = self.create_tempdir().full_path
    child = subprocess.Popen(
        [sys.executable, _SCRIPT, f"--model_dir={killed_dir}", *args],
        cwd=_ROOT, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    for line in child.stdout:  # kill -9 in the middle of epoch 2
      if "epoch 2/2 step 3/8" in line or time.time() > deadline:
        break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    self.assertEqual(child.returncode, -signal.SIGKILL)
    proc = _run([f"--model_dir={killed_dir}", *args])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertIn("resumed from", proc.stdout)
    full, resumed = _weights(full_dir), _weights(killed_dir)
    self.assertNotEmpty(full)
    self.assertEqual(set(full), set(resumed))
    for name in full:
      self.assertAllEqual(full[name], resumed[name], msg=name)


if __name__ == "__main__":
  tf.test.main()
