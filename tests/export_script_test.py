"""Tests of --config in scripts/train.py and of scripts/export.py, run as a
user runs them (subprocesses): one tiny run, re-exported from its final and
its best checkpoints."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import sample_images
from tf_hbd.inference import serving

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _run(script, args, timeout=300):
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # train.py is quiet by itself
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return subprocess.run(
      [sys.executable, os.path.join(_ROOT, "scripts", script), *args],
      cwd=_ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _metadata(path):
  with open(os.path.join(path, "hbd_model.json")) as f:
    return json.load(f)


class ConfigAndExportTest(tf.test.TestCase):
  """One tiny run of ``train.py --config=tiny`` (a subprocess: TensorFlow
  start-up, training, the serving export), made once for the class and
  re-exported by each test in its own way."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._dir = tempfile.mkdtemp()
    cls._train = _run("train.py", ["--config=tiny", f"--model_dir={cls._dir}",
                                   "--units=4", "--export_best"])

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls._dir, ignore_errors=True)
    super().tearDownClass()

  def _model_dir(self):
    self.assertEqual(self._train.returncode, 0,
                     msg=self._train.stderr[-3000:])
    return self._dir

  def test_config_run_then_export_final_and_best(self):
    model_dir = self._model_dir()
    with open(os.path.join(model_dir, "log.json")) as f:
      log = json.load(f)
    fl = log["flags"]
    # Given flags override the configuration; the rest is the tiny config.
    self.assertEqual((fl["units"], fl["export_best"]), (4, True))
    self.assertEqual((fl["batch_size"], fl["optimizer"], fl["lr"],
                      fl["epochs"], fl["steps_per_epoch"]),
                     (16, "adam", 1e-3, 2, 3))
    self.assertNotIn("config", fl)
    self.assertLen(log["epochs"], 2)
    served = _metadata(os.path.join(model_dir, "serving"))

    # The run's one SavedModel is its serving export.
    self.assertEqual(tf.io.gfile.glob(os.path.join(model_dir, "**",
                                                   "saved_model.pb")),
                     [os.path.join(model_dir, "serving", "saved_model.pb")])

    # scripts/export.py of the final decoder, rebuilt from the run's flags
    # and checkpoints: the same metadata and pixels as the serving export
    # the run wrote.
    out = os.path.join(self.create_tempdir().full_path, "final")
    proc = _run("export.py", [f"--model_dir={model_dir}", f"--out={out}"])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    final = _metadata(out)
    self.assertEqual(final, served)
    self.assertEqual(final["training"]["source"], "final")
    self.assertEqual(final["training"]["flags"]["units"], "4")
    self.assertEqual(final["training"]["epochs"], 2)
    decoded, _ = codecs.roundtrip(
        sample_images.load_sample("camera")[:72, :88], "jpeg", quality=20)
    refined = serving.load(out).refine(decoded)
    self.assertAllEqual(refined, serving.load(os.path.join(
        model_dir, "serving")).refine(decoded))
    self.assertFalse(np.array_equal(refined, decoded))

    # --source=best: the best epoch's checkpoint, as for a run still
    # training.
    out = os.path.join(self.create_tempdir().full_path, "best")
    proc = _run("export.py", [f"--model_dir={model_dir}", "--source=best",
                              f"--out={out}", "--note=rc"])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    best = _metadata(out)
    self.assertEqual(best["training"]["source"], "best")
    self.assertEqual(best["training"]["best"], log["best"])
    self.assertEqual(best["note"], "rc")
    self.assertEqual(best["label"], served["label"])

  def test_export_quiet_by_default_verbose_shows_tensorflow_logs(self):
    model_dir = self._model_dir()
    newest = tf.train.latest_checkpoint(os.path.join(model_dir,
                                                     "checkpoints"))
    self.assertIsNotNone(newest)
    out = os.path.join(self.create_tempdir().full_path, "quiet")
    proc = _run("export.py", [f"--model_dir={model_dir}", f"--out={out}"])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    # No TF log lines (oneDNN, CPU features, "Assets written to", "Found
    # untraced functions", absl's I/W lines): stderr is empty and stdout is
    # the script's own two lines.
    self.assertEqual(proc.stderr.strip(), "")
    self.assertEqual(proc.stdout.strip().splitlines(),
                     [f"decoder: final, weights from {newest}",
                      f"exported {_metadata(out)['label']} to {out}"])
    verbose = _run("export.py", [f"--model_dir={model_dir}",
                                 f"--out={out}v", "--verbose"])
    self.assertEqual(verbose.returncode, 0, msg=verbose.stderr[-3000:])
    self.assertRegex(verbose.stderr, r"tensorflow/")  # TF's C++ log lines


class ConfigFlagErrorsTest(tf.test.TestCase):

  def test_config_flag_errors(self):
    model_dir = self.create_tempdir().full_path
    proc = _run("train.py", ["--config=tiny", f"--model_dir={model_dir}",
                             "--units=0"])
    self.assertEqual(proc.returncode, 2, msg=proc.stderr)
    self.assertEqual(proc.stderr.strip(),
                     "train.py: error: --units=0: must be at least 1")
    proc = _run("train.py", ["--config=huge", f"--model_dir={model_dir}"])
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn("tiny", proc.stderr)
    self.assertNotIn("training data:", proc.stdout)


if __name__ == "__main__":
  tf.test.main()
