"""Tests of scripts/train.py, run as a user runs it (a subprocess, so its
flags do not meet other scripts' flags in the test process)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from PIL import Image
import pytest
import tensorflow as tf

from tf_hbd import testing
from tf_hbd.data import sample_images

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_SCRIPT = os.path.join(_ROOT, "scripts", "train.py")
# A tiny but real run: one sample photograph, downsampled, few batches.
_TINY = ["--units=4", "--K=2", "--batch_size=32", "--train_limit=1",
         "--train_max_side=96", "--val_max_side=64", "--steps_per_epoch=4",
         "--epochs=2", "--log_every=2", "--optimizer=momentum", "--lr=0.01"]


def _env():
  env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # train.py is quiet by itself
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


_TINY_RUN = {}


def _tiny_run():
  """(model_dir, finished process) of one tiny UORO run with its export,
  made by the first test that asks and shared by the others (a training
  subprocess costs a TensorFlow start-up, tracing and the export)."""
  if not _TINY_RUN:
    model_dir = tempfile.mkdtemp()
    _TINY_RUN["run"] = (model_dir, _run(["--algo=uoro",
                                         f"--model_dir={model_dir}", *_TINY]))
  return _TINY_RUN["run"]


class TrainScriptTest(tf.test.TestCase):

  def test_jp2_d16_normalised_loss_grid_offset_run_and_refine(self):
    # The JPEG 2000 levers end to end: d = 16 patches, blocks cut off the
    # codec's grid, the loss normalised by each image's codec error.
    # pylint: disable=g-import-not-at-top
    from tf_hbd.codecs import codec_setting
    from tf_hbd.codecs import legacy as codecs
    from tf_hbd.inference import serving
    # pylint: enable=g-import-not-at-top
    model_dir = self.create_tempdir().full_path
    proc = _run([f"--model_dir={model_dir}", "--codec=jp2", "--patch_size=16",
                 "--dataset=recompress:sample", "--setting_input",
                 "--boundary=replicate", "--grid_offset", "--crop=64",
                 "--loss_norm=log_ratio", "--loss_norm_scope=image",
                 "--alpha=1", "--jp2_bpp=0.15-1", "--synthetic_fraction=0",
                 "--tone_fraction=0", "--units=4", "--K=2",
                 "--batch_size=16", "--train_limit=2", "--train_max_side=96",
                 "--steps_per_epoch=3", "--epochs=1", "--log_every=1",
                 "--val_max_images=1", "--val_max_side=64", "--val_bpp=0.5",
                 "--optimizer=adam", "--lr=1e-3"])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertIn("grid offset, codec error", proc.stdout)
    with open(os.path.join(model_dir, "log.json")) as f:
      log = json.load(f)
    self.assertEqual(log["decoder"], {"patch_size": 16, "setting_size": 1})
    self.assertEqual(log["flags"]["loss_norm"], "log_ratio")
    model = serving.load(os.path.join(model_dir, "serving"))
    img = sample_images.load_sample("camera")[:72, :88]
    decoded, enc = codecs.roundtrip(img, "jp2", bpp=0.5)
    out = model.refine(decoded, setting=codec_setting.features(
        enc.data, "jp2", img.shape))
    self.assertEqual(out.shape, img.shape)
    self.assertEqual(out.dtype, img.dtype)

  def test_tiny_run_logs_and_exports(self):
    model_dir, proc = _tiny_run()
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
    # One SavedModel per run: the serving export (the decoder's weights
    # stay in the checkpoints).
    self.assertEqual(tf.io.gfile.glob(os.path.join(model_dir, "**",
                                                   "saved_model.pb")),
                     [os.path.join(model_dir, "serving", "saved_model.pb")])
    self.assertIn("exported the serving model", proc.stdout)

  def test_rtrl_refuses_the_paper_size_with_an_estimate(self):
    model_dir = self.create_tempdir().full_path
    proc = _run(["--algo=rtrl", "--units=512", "--rtrl_max_gb=4",
                 f"--model_dir={model_dir}", "--train_limit=1",
                 "--train_max_side=64", "--val_max_side=32"])
    self.assertEqual(proc.returncode, 1)
    self.assertRegex(proc.stderr, r"RTRL would need about [\d.]+ GiB .*512 "
                                  r"units at batch 256.*largest units that "
                                  r"fit at this batch size: \d+")

  def test_bad_flags_are_refused_before_any_data_is_built(self):
    model_dir = self.create_tempdir().full_path
    images = self.create_tempdir().full_path
    Image.fromarray(sample_images.load_sample("camera")[:64, :64]).save(
        os.path.join(images, "photo.png"))
    for args, message in [
        (["--units=0"], "--units=0: must be at least 1"),
        (["--K=0"], "--K=0: must be at least 1"),
        (["--batch_size=0"], "--batch_size=0: must be at least 1"),
        (["--dataset=folder:/no/such/dir"],
         "--dataset=folder:/no/such/dir: no such file or folder"),
        ([f"--dataset={images}"],
         f"--dataset={images}: a folder of images needs its prefix: "
         f"--dataset=folder:{images} (or recompress:{images})"),
        (["--dataset=/no/such/dir"],
         "--dataset=/no/such/dir: no such folder or dataset; a folder of "
         "images is given as --dataset=folder:<path>, a prepared dataset by "
         "its name (BUILD.md, section Datasets)"),
        (["--dataset=recompress:sample,/no/such/dir"],
         "--dataset=recompress:sample,/no/such/dir: /no/such/dir: no such "
         "file or folder"),
        (["--model_dir="], "--model_dir is empty; give the folder for "
         "checkpoints, logs and the export")]:
      proc = _run([f"--model_dir={model_dir}", *args])
      self.assertEqual(proc.returncode, 2, msg=proc.stderr)
      self.assertEqual(proc.stderr.strip().splitlines(),
                       [f"train.py: error: {message}"])
      self.assertNotIn("training data:", proc.stdout)

  def test_flag_parsing_errors_are_one_line_exit_2(self):
    for args, message in [
        (["--model_dir=/tmp/x", "--no_such_flag=1"],
         "Unknown command line flag 'no_such_flag'"),
        (["--model_dir=/tmp/x", "--units=abc"],
         "flag --units=abc: invalid literal for int() with base 10: 'abc'"),
        ([], "flag --model_dir=None: Flag --model_dir must have a value "
         "other than None.")]:
      proc = _run(args)
      self.assertEqual(proc.returncode, 2, msg=proc.stderr)
      self.assertEqual(proc.stderr.strip().splitlines(),
                       [f"train.py: error: {message} (--help lists the "
                        "flags)"])

  def test_ctrl_c_while_tensorflow_loads_is_one_line_exit_130(self):
    # Ctrl-C delivered exactly while `import tensorflow` runs (inside the
    # script's own imports, before main): a finder that signals on it.
    code = (
        "import os, runpy, signal, sys\n"
        "class Finder:\n"
        "  def find_spec(self, name, path=None, target=None):\n"
        "    if name == 'tensorflow':\n"
        "      os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.meta_path.insert(0, Finder())\n"
        f"sys.argv = [{_SCRIPT!r}, '--model_dir=/tmp/x']\n"
        f"runpy.run_path({_SCRIPT!r}, run_name='__main__')\n")
    proc = testing.run_with_terminal_sigint(
        [sys.executable, "-c", code], cwd=_ROOT, env=_env(),
        capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 130, msg=proc.stderr[-3000:])
    self.assertEqual(proc.stderr.strip().splitlines(),
                     ["train.py: interrupted"])

  def test_damaged_checkpoint_state_or_files_resume_from_an_intact_one(self):
    source, first = _tiny_run()
    self.assertEqual(first.returncode, 0, msg=first.stderr[-3000:])
    for damage in ("empty state", "garbled state", "truncated index"):
      model_dir = os.path.join(self.create_tempdir().full_path, "run")
      shutil.copytree(source, model_dir)
      ckpt = os.path.join(model_dir, "checkpoints")
      state = os.path.join(ckpt, "checkpoint")
      if damage == "truncated index":
        with open(os.path.join(ckpt, "ckpt-8.index"), "r+b") as f:
          f.truncate(20)
      else:
        with open(state, "w") as f:
          f.write("" if damage == "empty state" else "{{ garbage \x01")
      with open(os.path.join(ckpt, "ckpt-4.index"), "rb") as f:
        older = f.read()
      proc = _run(["--algo=uoro", f"--model_dir={model_dir}", *_TINY,
                   "--export=false"])
      self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
      self.assertNotIn("Traceback", proc.stderr)
      self.assertNotIn("warning", proc.stdout)  # warnings go to stderr
      if damage == "truncated index":
        self.assertIn(f"warning: checkpoint {ckpt}/ckpt-8 is damaged or "
                      "incomplete", proc.stderr)
        self.assertIn(f"moved its 2 files aside to {ckpt}/ckpt-8.*.damaged",
                      proc.stderr)
        self.assertTrue(os.path.exists(f"{ckpt}/ckpt-8.index.damaged"))
        self.assertIn(f"falling back to {ckpt}/ckpt-4, the newest intact "
                      "checkpoint", proc.stderr)
        self.assertIn(f"resumed from {ckpt}/ckpt-4 at batch 4", proc.stdout)
      else:
        self.assertIn(f"warning: the checkpoint state file {state} is empty "
                      f"or garbled; moved it to {state}.unreadable",
                      proc.stderr)
        self.assertIn(f"resumed from {ckpt}/ckpt-8 at batch 8", proc.stdout)
        self.assertTrue(os.path.exists(state + ".unreadable"))
        with open(os.path.join(ckpt, "ckpt-4.index"), "rb") as f:
          self.assertEqual(f.read(), older)  # not overwritten from batch 0
      self.assertNotIn("from batch 0", proc.stdout)

  def test_folder_of_corrupt_images_is_one_line_exit_1(self):
    folder = self.create_tempdir().full_path
    with open(os.path.join(folder, "text.png"), "w") as f:
      f.write("not an image\n")
    with open(os.path.join(folder, "empty.jpg"), "wb") as f:
      f.write(b"\xff\xd8\xff")
    for prefix in ("folder", "recompress"):
      proc = _run([f"--model_dir={self.create_tempdir().full_path}",
                   f"--dataset={prefix}:{folder}", *_TINY,
                   "--train_limit=0"])
      self.assertEqual(proc.returncode, 1, msg=proc.stderr[-3000:])
      lines = proc.stderr.strip().splitlines()
      self.assertLen(lines, 1, msg=proc.stderr)
      self.assertRegex(lines[0], re.escape(
          f"train.py: error: cannot read image '{folder}': none of its 2 "
          f"image files can be read ({folder}/empty.jpg: ") + r".+; 1 more\); "
          "replace them or give another folder$")

  def test_corrupt_training_image_is_skipped_with_a_warning(self):
    folder = self.create_tempdir().full_path
    photo = os.path.join(folder, "photo.png")
    Image.fromarray(sample_images.load_sample("camera")[:96, :96]).save(photo)
    with open(photo, "rb") as f:
      head = f.read(400)
    with open(os.path.join(folder, "truncated.png"), "wb") as f:
      f.write(head)
    with open(os.path.join(folder, "text.png"), "w") as f:
      f.write("not an image\n")
    model_dir = self.create_tempdir().full_path
    proc = _run([f"--model_dir={model_dir}", f"--dataset=folder:{folder}",
                 *_TINY, "--train_limit=0", "--epochs=1", "--export=false"])
    self.assertEqual(proc.returncode, 0, msg=proc.stderr[-3000:])
    self.assertIn("(1 images, jpeg", proc.stdout)
    warnings = [l for l in proc.stderr.splitlines() if l.startswith(
        "warning: skipping the unreadable training image")]
    self.assertLen(warnings, 2, msg=proc.stderr)
    self.assertNotIn("Traceback", proc.stderr)

  def _stop_under_way(self, signum):
    """Starts a long tiny run, sends `signum` once it is training; (return
    code, stderr, model dir, newest checkpoint's batch or None)."""
    model_dir = self.create_tempdir().full_path
    child = testing.popen_with_terminal_sigint(
        [sys.executable, _SCRIPT, f"--model_dir={model_dir}", *_TINY,
         "--steps_per_epoch=1000000", "--log_every=1", "--export=false"],
        cwd=_ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    for line in child.stdout:  # interrupt once training is under way
      if "step 2/1000000" in line:
        break
    child.send_signal(signum)
    try:
      _, err = child.communicate(timeout=600)  # saving under load is slow
    except subprocess.TimeoutExpired:
      child.kill()
      self.fail(f"train.py did not stop within 600 s of {signum!r}")
    newest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return child.returncode, err, model_dir, (
        None if newest is None else int(newest.rsplit("-", 1)[1]))

  def test_ctrl_c_or_sigterm_checkpoint_then_stop_with_one_line(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      code, err, model_dir, batch = self._stop_under_way(signum)
      self.assertEqual(code, 130, msg=err[-3000:])
      self.assertNotIn("Traceback", err)
      name = signal.Signals(signum).name
      self.assertEqual(err.strip().splitlines(), [
          f"train.py: interrupted ({name} after batch {batch}, checkpoint "
          f"{model_dir}/checkpoints/ckpt-{batch} saved); rerun the same "
          f"command to resume from the last checkpoint in "
          f"{model_dir}/checkpoints"])
      # The batches done are saved (the run's checkpoint interval is 2,000
      # batches: without the signal handling none would be).
      self.assertIsNotNone(batch, msg=err[-3000:])
      self.assertGreaterEqual(batch, 2)

  def test_quiet_by_default_verbose_shows_tensorflow_logs(self):
    model_dir, quiet_run = _tiny_run()  # training and export, no --verbose
    self.assertEqual(quiet_run.returncode, 0, msg=quiet_run.stderr[-3000:])
    self.assertEqual(quiet_run.stderr.strip(), "")
    self.assertIn("epoch 2/2 step 4/4", quiet_run.stdout)
    self.assertIn("exported the serving model", quiet_run.stdout)
    verbose = subprocess.run(
        [sys.executable, _SCRIPT, f"--model_dir={model_dir}x", "--units=0",
         "--verbose"], cwd=_ROOT, env=_env(), capture_output=True, text=True,
        timeout=300)
    self.assertEqual(verbose.returncode, 2)
    self.assertRegex(verbose.stderr, r"tensorflow/")  # TF's C++ log lines

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
