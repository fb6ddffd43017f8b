"""Tests of tf_hbd.baselines.campaign (tiny models, a few steps)."""

import json
import os
import tempfile

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tf_hbd import baselines
from tf_hbd.baselines import campaign
from tf_hbd.baselines import training


def _folder(name, n=3, size=(40, 52), seed=0):
  folder = os.path.join(tempfile.mkdtemp(), name)
  os.makedirs(folder)
  rng = np.random.default_rng(seed)
  for i in range(n):
    Image.fromarray(rng.integers(0, 256, size, np.uint8)).save(
        os.path.join(folder, f"img{i}.png"))
  return folder


_TINY_GOOG = (("decoder_conv", 8), ("decoder_rnn", (8, 8, 8, 8)),
              ("encoder_conv", 8), ("encoder_rnn", (8, 8, 8)))
_SETTINGS = {"e2e_patch_size": 32, "e2e_batch_size": 2, "goog_batch_size": 2,
             "eval_every": 2, "checkpoint_every_s": 1e9, "log_every": 1,
             "sample_split": None, "goog_iterations": 2}


class PlanTest(tf.test.TestCase):

  def test_default_plan(self):
    plan = campaign.default_plan()
    names = [r.name for r in plan]
    self.assertEqual(names[0], campaign.e2e_name(campaign.E2E_BASE_LAMBDA))
    self.assertIsNone(plan[0].init_from)
    e2e_runs = [r for r in plan if r.family == "e2e"]
    self.assertGreaterEqual(len(e2e_runs), 5)
    self.assertEqual({r.lmbda for r in e2e_runs},
                     set(campaign.E2E_LAMBDAS) | {campaign.E2E_BASE_LAMBDA})
    for r in e2e_runs[1:]:  # every parent is trained before its child
      self.assertIn(r.init_from, names[:names.index(r.name)])
      parent = [p for p in plan if p.name == r.init_from][0]
      if r.lmbda < plan[0].lmbda:  # lower lambdas from the next higher one
        self.assertGreater(parent.lmbda, r.lmbda)
      else:  # higher lambdas from the next lower one
        self.assertLess(parent.lmbda, r.lmbda)
    rates = sorted(r.lmbda for r in e2e_runs)  # about 0.1 to 1 bpp
    self.assertLessEqual(rates[0], 0.001)
    self.assertGreaterEqual(rates[-1], 0.03)
    self.assertEqual(plan[-1].family, "goog")
    self.assertTrue(all(dict(r.kwargs)["num_filters"] == 128
                        for r in e2e_runs))
    for r in plan:
      self.assertEqual(baselines.family_of(r.name), r.family)


class StatusTest(tf.test.TestCase):

  def test_states_and_skipping_without_training(self):
    root = tempfile.mkdtemp()
    run = campaign.Run("e2e-l0.5", "e2e", minutes=1.0, max_steps=100,
                       lmbda=0.5)
    self.assertEqual(campaign.run_status(root, run)["state"], "new")
    ckpt = os.path.join(root, run.name, "ckpt")
    os.makedirs(ckpt)
    with open(os.path.join(ckpt, "checkpoint"), "w") as f:
      f.write("x")
    self.assertEqual(campaign.run_status(root, run)["state"], "partial")
    status = os.path.join(root, run.name, "status.json")
    with open(status, "w") as f:
      json.dump({"step": 10, "seconds": 30.0}, f)
    self.assertEqual(campaign.run_status(root, run)["state"], "partial")
    with open(status, "w") as f:
      json.dump({"step": 10, "seconds": 60.0}, f)  # time budget spent
    self.assertEqual(campaign.run_status(root, run)["state"], "trained")
    model = os.path.join(root, run.name, "model", run.name)
    os.makedirs(model)
    open(os.path.join(model, "saved_model.pb"), "wb").close()
    done = campaign.run_status(root, run)
    self.assertEqual((done["state"], done["step"]), ("done", 10))
    longer = campaign.Run("e2e-l0.5", "e2e", minutes=2.0, max_steps=100,
                          lmbda=0.5)
    self.assertEqual(campaign.run_status(root, longer)["state"], "partial")
    fewer_steps = campaign.Run("e2e-l0.5", "e2e", minutes=2.0, max_steps=10,
                               lmbda=0.5)
    self.assertEqual(campaign.run_status(root, fewer_steps)["state"], "done")
    with open(status, "w") as f:
      f.write('{"step": 1')  # torn: as if never finished
    self.assertEqual(campaign.run_status(root, run)["state"], "partial")
    lines = []
    out = campaign.run_campaign([run, longer], root, "/data/train400", None,
                                dry_run=True, log=lines.append)
    self.assertEqual(out, [("e2e-l0.5", "partial", None)] * 2)
    self.assertLen(lines, 2)


class CampaignTest(tf.test.TestCase):

  @pytest.mark.slow
  def test_trains_skips_extends_and_warm_starts(self):
    root = tempfile.mkdtemp()
    train_dir, val_dir = _folder("train400"), _folder("val", 1, seed=1)
    e2e_kwargs = (("num_filters", 8),)
    plan = [
        campaign.Run("e2e-l0.02", "e2e", 100.0, max_steps=2, lmbda=0.02,
                     kwargs=e2e_kwargs),
        campaign.Run("e2e-l0.01", "e2e", 100.0, max_steps=1, lmbda=0.01,
                     init_from="e2e-l0.02", kwargs=e2e_kwargs),
        campaign.Run("goog", "goog", 100.0, max_steps=1, kwargs=_TINY_GOOG)]
    self.assertEqual(campaign.run_status(root, plan[0])["state"], "new")
    with self.assertRaisesRegex(ValueError, "no checkpoint yet"):
      campaign.run_campaign(plan[1:2], root, train_dir, val_dir,
                            settings=_SETTINGS, log=lambda _: None)
    lines = []
    out = campaign.run_campaign(plan, root, train_dir, val_dir,
                                settings=_SETTINGS, log=lines.append)
    self.assertEqual([o[1] for o in out], ["new"] * 3)
    self.assertTrue(any("warm start" in line for line in lines))
    for run in plan:
      self.assertEqual(campaign.run_status(root, run)["state"], "done")
      model_dir = os.path.join(root, run.name, "model", run.name)
      codec = baselines.load_path(model_dir, run.family)
      self.assertEqual(codec.name, run.name)
      image = np.full((20, 30), 100, np.uint8)
      self.assertEqual(codec.decompress(codec.compress(image)).shape,
                       (20, 30))
      curve = training.read_jsonl(
          os.path.join(root, run.name, "ckpt", "curve.jsonl"))
      self.assertEqual([r["step"] for r in curve],  # every 2 steps + end
                       [2] if run.max_steps == 2 else [1])
      self.assertTrue(all(np.isfinite(r["psnr"]) and r["bpp"] > 0
                          for r in curve))
    self.assertIn("psnr_16", curve[-1])  # GOOG: every iteration count
    # Rerun: nothing to do.
    out = campaign.run_campaign(plan, root, train_dir, val_dir,
                                settings=_SETTINGS, log=lambda _: None)
    self.assertEqual(out, [(r.name, "done", None) for r in plan])
    # A larger budget continues from the checkpoint.
    longer = [campaign.Run("e2e-l0.02", "e2e", 100.0, max_steps=3,
                           lmbda=0.02, kwargs=e2e_kwargs)]
    self.assertEqual(campaign.run_status(root, longer[0])["state"],
                     "partial")
    lines = []
    out = campaign.run_campaign(longer, root, train_dir, val_dir,
                                settings=_SETTINGS, log=lines.append)
    self.assertEqual(out[0][2]["step"], 3)
    self.assertTrue(any("resumed" in line and "at step 2" in line
                        for line in lines))
    with open(os.path.join(root, "e2e-l0.02", "status.json")) as f:
      self.assertEqual(json.load(f)["step"], 3)
    table = campaign.curve_markdown(root, longer[0])
    self.assertLen(table.splitlines(), 4 + 2)  # steps 2 and 3
    self.assertNotIn(".tmp", " ".join(os.listdir(
        os.path.join(root, "e2e-l0.02", "model"))))

  def test_held_out_training_folder_refused(self):
    with self.assertRaises(ValueError):
      campaign.run_campaign([], tempfile.mkdtemp(), "../data/kodak", None)


if __name__ == "__main__":
  tf.test.main()
