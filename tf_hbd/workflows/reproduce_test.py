"""Tests of tf_hbd.workflows.reproduce that need no training: plans, data
root, command."""

import contextlib
import io
import os
import sys
from unittest import mock

from absl.testing import absltest

from tf_hbd.data import roots
from tf_hbd.workflows import children
from tf_hbd.workflows import reproduce
from tf_hbd.training import config
from tf_hbd.training import config_test


class ReproducePlanTest(absltest.TestCase):

  def test_data_root_is_a_parameter_not_a_repo_path(self):
    for name, scale in reproduce.SCALES.items():
      text = repr((scale.train, scale.algo_overrides, scale.datasets))
      self.assertNotIn("shared", text, name)
    runs = dict(reproduce.plan_runs(reproduce.SCALES["cpu"], ("bptt",)))
    flags = runs["LSTM-JPEG-BPTT"]
    self.assertEqual(roots.fill(flags["dataset"], "/d"),
                     "folder:/d/train400")
    self.assertEqual(roots.fill(flags["val_images"], "/d"), "/d/bsd68")

  def test_no_data_root_no_guess(self):
    # Without --data_root or $TF_HBD_DATA, a scale that reads the data sets
    # stops before training with one line and exit code 2.
    tmp = self.create_tempdir().full_path
    err = io.StringIO()
    with mock.patch.dict(os.environ, clear=True), \
        contextlib.redirect_stderr(err):
      code = reproduce.main(["--scale=cpu", f"--out_dir={tmp}/o",
                             f"--work_dir={tmp}/w"])
    self.assertEqual(code, 2)
    self.assertRegex(err.getvalue(), r"^reproduce: error: .*--data_root")
    self.assertFalse(os.path.exists(f"{tmp}/w"))

  def test_each_run_trains_with_the_settings_of_the_old_flag_plan(self):
    # The runs' flags as they were when the scales were flag strings: the
    # scale's flags, the algorithm's extra flags, then algo/codec/d/sne.
    old_extra = {"cpu": {"rtrl": {"batch_size": "64",
                                  "steps_per_epoch": "160"}}}
    for name, scale in reproduce.SCALES.items():
      for label, fl in reproduce.plan_runs(scale):
        with self.subTest(f"{name} {label}"):
          old = dict(config_test._OLD_SCALE_FLAGS[name])
          old.update(old_extra.get(name, {}).get(fl["algo"], {}))
          old.update({k: fl[k] for k in ("algo", "codec", "patch_size",
                                          "sne")})
          self.assertEqual(config.from_args(config_test._args(fl)),
                           config.from_args(config_test._args(old)))
    runs = dict(reproduce.plan_runs(reproduce.SCALES["cpu"], ("rtrl",)))
    self.assertEqual(runs["LSTM-JPEG-RTRL"]["batch_size"], "64")
    self.assertEqual(runs["LSTM-JP2-RTRL"]["patch_size"], "16")
    self.assertEqual(runs["LSTM-JP2-RTRL"]["sne"], "false")

  def test_training_runs_the_library_entry_point(self):
    out = self.create_tempdir().full_path
    with mock.patch.object(children, "run", return_value=0) as run:
      reproduce._train("X", {"algo": "bptt"}, os.path.join(out, "m"),
                       os.path.join(out, "log"), say=lambda _: None)
    args = run.call_args[0][0]
    self.assertEqual(run.call_args[1]["log"].name, os.path.join(out, "log"))
    self.assertEqual(args[:3], [sys.executable, "-m", "tf_hbd.training"])
    self.assertIn("--algo=bptt", args)
    self.assertFalse(any("scripts" in a for a in args), args)

  def test_a_kept_run_reports_the_time_its_training_recorded(self):
    out = self.create_tempdir().full_path
    model_dir = os.path.join(out, "m")
    with mock.patch.object(children, "run", return_value=0):
      seconds, kept = reproduce._train("X", {"algo": "bptt"}, model_dir,
                                       os.path.join(out, "log"),
                                       say=lambda _: None)
    self.assertFalse(kept)
    os.makedirs(model_dir)  # the run's own log says it finished
    with open(os.path.join(model_dir, "log.json"), "w") as f:
      f.write('{"status": "finished"}')
    said = []
    with mock.patch.object(children, "run") as run:
      again = reproduce._train("X", {"algo": "bptt"}, model_dir,
                               os.path.join(out, "log"), say=said.append)
    run.assert_not_called()
    self.assertEqual(again, (round(seconds, 1), True))
    self.assertEqual(said, [f"  X: finished earlier, kept ({model_dir})"])
    os.remove(model_dir + ".seconds")
    self.assertEqual(reproduce._train("X", {}, model_dir, "", say=said.append),
                     (None, True))

  def test_a_failed_training_leaves_no_earlier_time_behind(self):
    out = self.create_tempdir().full_path
    model_dir = os.path.join(out, "m")
    with mock.patch.object(children, "run", return_value=0):
      reproduce._train("X", {}, model_dir, os.path.join(out, "log"),
                       say=lambda _: None)
    self.assertTrue(os.path.isfile(model_dir + ".seconds"))

    def finished_then_failed(*unused_args, **unused_kwargs):
      # A new training (the model dir was removed) logs that it finished,
      # then fails at its end (the export, say).
      os.makedirs(model_dir)
      with open(os.path.join(model_dir, "log.json"), "w") as f:
        f.write('{"status": "finished"}')
      return 1

    with mock.patch.object(children, "run", side_effect=finished_then_failed):
      with self.assertRaisesRegex(RuntimeError, "training X failed"):
        reproduce._train("X", {}, model_dir, os.path.join(out, "log"),
                         say=lambda _: None)
    self.assertEqual(reproduce._train("X", {}, model_dir, "",
                                      say=lambda _: None), (None, True))

  def test_readme_tells_kept_runs_from_trained_ones(self):
    out = self.create_tempdir().full_path
    with mock.patch.object(reproduce, "_machine", return_value="m"):
      reproduce._write_readme(
          out, "cpu", reproduce.SCALES["cpu"], "cmd",
          {"A": (60.0, False), "B": (120.0, True), "C": (None, True)},
          train_time=61.0, eval_time=600.0, artifacts={})
    with open(os.path.join(out, "README.md")) as f:
      text = f.read()
    self.assertIn("* training: 1.0 min in this run; 2 of 3 runs had finished "
                  "earlier and were kept (2.0 min when they were trained, 1 "
                  "of them not recorded); evaluation: 10.0 min", text)
    self.assertIn("| A | 60 |\n| B | 120 (earlier run, kept) |\n"
                  "| C | not recorded (earlier run, kept) |", text)

  def test_stopped_training_exits_130_with_one_line(self):
    out = self.create_tempdir().full_path
    stopped = children.ChildStopped("training: SIGINT after batch 5, "
                                    "checkpoint /w/ckpt-5 saved")
    err = io.StringIO()
    with mock.patch.object(children, "run", side_effect=stopped) as run, \
        contextlib.redirect_stderr(err), \
        contextlib.redirect_stdout(io.StringIO()):
      code = reproduce.main(["--scale=tiny", "--algorithms=bptt",
                             f"--out_dir={out}/r", f"--work_dir={out}/w"])
    run.assert_called_once()  # the first run; nothing after it
    self.assertEqual((code, err.getvalue()), (130, (
        "reproduce: interrupted (training: SIGINT after batch 5, checkpoint "
        "/w/ckpt-5 saved); " + reproduce.RESUME_HINT + "\n")))

  def test_cpu_scale_evaluates_the_shipped_decoders_too(self):
    specs = reproduce.shipped_decoders(reproduce.SCALES["cpu"])
    self.assertEqual([roots.split_label(s)[0] for s in specs],
                     ["hbd-lstm-jpeg (shipped)", "hbd-lstm-jp2 (shipped)"])
    for spec in specs:
      path = roots.split_label(spec)[1]
      self.assertTrue(os.path.isfile(os.path.join(path, "hbd_model.json")),
                      path)
    self.assertEqual(reproduce.shipped_decoders(reproduce.SCALES["tiny"]), [])

  def test_run_scale_hands_the_shipped_decoders_to_the_study(self):
    tmp = self.create_tempdir().full_path
    for name, shipped in (("cpu", 2), ("tiny", 0)):
      with mock.patch.object(reproduce, "_train", return_value=(1.0, False)), \
          mock.patch.object(reproduce.study, "run", return_value={}) as run, \
          mock.patch.object(reproduce, "_write_readme"):
        reproduce.run_scale(name, os.path.join(tmp, name, "r"),
                            os.path.join(tmp, name, "w"), data_root=tmp,
                            algorithms=("bptt",), say=lambda _: None)
      decoders = run.call_args[1]["decoders"]
      self.assertEqual(decoders[len(decoders) - shipped:],
                       reproduce.shipped_decoders(reproduce.SCALES[name]))
      self.assertLen([d for d in decoders if "(shipped)" in d], shipped)

  def test_unknown_scale_is_refused_by_the_parser(self):
    with self.assertRaises(SystemExit) as e, mock.patch("sys.stderr"):
      reproduce.main(["--scale=huge"])
    self.assertEqual(e.exception.code, 2)


if __name__ == "__main__":
  absltest.main()
