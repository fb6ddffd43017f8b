"""Tests of tf_hbd.baselines.folders (campaign model folders)."""

import json
import os
import tempfile

import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.baselines import campaign
from tf_hbd.baselines import e2e
from tf_hbd.baselines import folders
from tf_hbd.baselines import training


def curve_records(steps=(10, 12)):
  """Learning-curve records as `training.train_loop` writes them."""
  return [{"step": s, "seconds": 3.0 * s, "hours": s / 1200.0,
           "bpp": 0.5 + s / 100.0, "psnr": 20.0 + s, "ms_ssim": 0.9,
           "jpeg_bpp": 0.5, "jpeg_psnr": 25.0, "vs_jpeg_db": s - 5.0}
          for s in steps]


def write_snapshot(folder, name="e2e-l0.02", num_filters=4, step=12,
                   seconds=36.5, seed=1):
  """A snapshot of a tiny E2E model as `campaign.snapshot` writes it.

  Returns:
    (the model, its snapshot folder).
  """
  tf.random.set_seed(seed)
  run = campaign.Run(name, "e2e", 100.0, lmbda=0.02,
                     kwargs=(("num_filters", num_filters),))
  model = campaign._new_model(run)  # pylint: disable=protected-access
  state = training.TrainState()
  state.step.assign(step)
  state.seconds.assign(seconds)
  source = os.path.join(folder, "src", "ckpt-12")
  os.makedirs(os.path.dirname(source), exist_ok=True)
  with open(os.path.join(os.path.dirname(source), "curve.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in curve_records())
  directory = os.path.join(folder, name)
  context = {"command": "python scripts/baseline_campaign.py --root=R",
             "train_dir": "train400", "val_dir": "bsd68", "val_images": 8,
             "settings": {}}
  campaign._fill_snapshot(  # pylint: disable=protected-access
      directory, run, (model, state, source), context)
  return model, directory


def _fake_export(path):
  os.makedirs(path)
  open(os.path.join(path, "saved_model.pb"), "wb").close()
  return path


class FindTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    cls.model, cls.snap = write_snapshot(os.path.join(cls.root, "snaps"))

  def test_snapshot(self):
    [found] = folders.find(self.snap)
    self.assertEqual((found.name, found.family, found.export),
                     ("e2e-l0.02", "e2e", None))
    self.assertEqual(found.checkpoint, os.path.join(self.snap, "model"))
    self.assertEqual(found.curve, os.path.join(self.snap, "curve.jsonl"))
    self.assertEqual(found.notes, os.path.join(self.snap, "MODEL.md"))
    self.assertEqual(folders.progress(found), {"step": 12, "seconds": 36.5})
    # The folder of snapshots stands for all of them; a label renames one.
    self.assertEqual(folders.find(os.path.dirname(self.snap)), [found])
    [named] = folders.find("e2e-x=" + self.snap)
    self.assertEqual(named.name, "e2e-x")
    [named] = folders.find("e2e-y=" + os.path.dirname(self.snap))
    self.assertEqual((named.name, named.folder), ("e2e-y", self.snap))

  def test_campaign_run_and_export(self):
    root = os.path.join(self.create_tempdir().full_path, "campaign")
    export = _fake_export(os.path.join(root, "e2e-l0.01", "model",
                                       "e2e-l0.01"))
    _fake_export(os.path.join(root, "goog", "model", "goog"))
    with open(os.path.join(root, "goog", "status.json"), "w") as f:
      json.dump({"step": 7, "seconds": 9.0, "budget_minutes": 1}, f)
    os.makedirs(os.path.join(root, "notes"))  # not a model: skipped
    run, goog = folders.find(root)
    self.assertEqual((run.name, run.family, run.export),
                     ("e2e-l0.01", "e2e", export))
    self.assertEqual(run.folder, os.path.join(root, "e2e-l0.01"))
    self.assertIsNone(run.checkpoint)
    self.assertEqual(goog.family, "goog")
    self.assertEqual(folders.progress(goog), {"step": 7, "seconds": 9.0})
    self.assertEqual(folders.progress(run), {})
    [direct] = folders.find(export)
    self.assertEqual((direct.name, direct.export), ("e2e-l0.01", export))
    # An export is used as it is (with no checkpoint to export again, even
    # when it does not store the weights asked for).
    self.assertEqual(folders.saved_model(run, "/nonexistent"), export)
    self.assertEqual(folders.saved_model(run, "/nonexistent", "float16"),
                     export)
    self.assertEqual(folders.stored_weights(export), "float32")
    with self.assertRaisesRegex(errors.HbdError, "no checkpoint"):
      folders.build_model(run)
    # A held-out fit folder is refused before anything is exported.
    for held_out in ("kodak", "bsd68"):
      with self.assertRaisesRegex(errors.HbdError,
                                  f"^--fit_dir .*{held_out} is a validation"):
        folders.saved_model(goog, self.get_temp_dir(), "float16",
                            fit_dir=os.path.join(root, held_out))
    with self.assertRaisesRegex(errors.HbdError, "no such folder"):
      folders.check_fit_dir(os.path.join(root, "train-missing"))
    with self.assertRaisesRegex(errors.HbdError, "a label names one"):
      folders.find("e2e-a=" + root)
    # A run that trains on after its export: the export's own checkpoint
    # (status.json's step), not the newest one.
    ckpt = os.path.join(root, "goog", "ckpt")
    os.makedirs(ckpt)
    for step in (7, 9):
      open(os.path.join(ckpt, f"ckpt-{step}.index"), "wb").close()
    [goog_again] = folders.find(os.path.join(root, "goog"))
    self.assertEqual(goog_again.checkpoint, os.path.join(ckpt, "ckpt-7"))
    os.remove(os.path.join(ckpt, "ckpt-7.index"))
    [goog_again] = folders.find(os.path.join(root, "goog"))
    self.assertIsNone(goog_again.checkpoint)
    with self.assertRaisesRegex(errors.HbdError, "given twice"):
      folders.find_all([root, export])

  def test_nothing_there(self):
    empty = self.create_tempdir().full_path
    for path in (empty, os.path.join(empty, "missing")):
      with self.assertRaisesRegex(errors.HbdError, "no trained baseline"):
        folders.find(path)
    with self.assertRaisesRegex(errors.HbdError, "does not start with"):
      folders.find("webp=" + self.snap)

  def test_build_model_restores_every_weight(self):
    [found] = folders.find(self.snap)
    model = folders.build_model(found)
    self.assertIsInstance(model, e2e.E2EModel)
    self.assertEqual((model.num_filters, model.lmbda), (4, 0.02))
    for a, b in zip(model.get_weights(), self.model.get_weights()):
      np.testing.assert_array_equal(a, b)
    for name, lmbda in (("e2e-l0.005", 0.005), ("e2e-l1e-3", 1e-3),
                        ("e2e-base", 0.0)):
      self.assertEqual(folders._lambda_of(name), lmbda)  # pylint: disable=protected-access


if __name__ == "__main__":
  tf.test.main()
