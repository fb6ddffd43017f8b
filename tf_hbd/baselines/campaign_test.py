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
             "sample_split": None, "goog_iterations": 2,
             "goog_fit_images": 2}


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
    self.assertEqual([o[2]["step"] for o in out], [2, 1, 1])
    # e2e-l0.01 starts from its parent's last checkpoint (`e2e.train`'s
    # init_from; this test is its only check of a warm start).
    parent = os.path.join(root, "e2e-l0.02", "ckpt", "ckpt-2")
    self.assertTrue(any(f"warm start from {parent}" in line
                        for line in lines), lines)
    for run in plan:
      self.assertEqual(campaign.run_status(root, run)["state"], "done")
      model_dir = os.path.join(root, run.name, "model", run.name)
      codec = baselines.load_path(model_dir, run.family)
      self.assertEqual(codec.name, run.name)
      image = np.full((20, 30), 100, np.uint8)
      self.assertEqual(codec.decompress(codec.compress(image)).shape,
                       (20, 30))
      if run.family == "goog":  # exported with entropy-coder tables
        self.assertIsNotNone(codec.bit_tables)
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
    # A larger budget continues from the checkpoint and exports over the
    # old model (GOOG: both families resume through `training.train_loop`,
    # and a GOOG step, evaluation and export cost a fraction of E2E's).
    longer = [campaign.Run("goog", "goog", 100.0, max_steps=2,
                           kwargs=_TINY_GOOG)]
    self.assertEqual(campaign.run_status(root, longer[0])["state"],
                     "partial")
    lines = []
    out = campaign.run_campaign(longer, root, train_dir, val_dir,
                                settings=_SETTINGS, log=lines.append)
    self.assertEqual(out[0][2]["step"], 2)
    self.assertTrue(any("resumed" in line and "at step 1" in line
                        for line in lines))
    with open(os.path.join(root, "goog", "status.json")) as f:
      self.assertEqual(json.load(f)["step"], 2)
    table = campaign.curve_markdown(root, longer[0])
    self.assertLen(table.splitlines(), 4 + 2)  # steps 1 and 2
    self.assertNotIn(".tmp", " ".join(os.listdir(
        os.path.join(root, "goog", "model"))))

  def test_goog_loss_settings_reach_training(self):
    root, train_dir = tempfile.mkdtemp(), _folder("train400")
    settings = dict(_SETTINGS, goog_iterations=2, goog_loss_norm="l2",
                    goog_loss_weights="3,1", goog_fit_images=0)
    campaign.run_campaign([_tiny_run(max_steps=1)], root, train_dir, None,
                          settings=settings, log=lambda _: None)
    [record] = training.read_jsonl(
        os.path.join(root, "goog", "ckpt", "history.jsonl"))
    mse = [10.0 ** (-record[f"psnr_{t}"] / 10.0) for t in (1, 2)]
    self.assertAllClose(record["loss"], 0.75 * mse[0] + 0.25 * mse[1],
                        rtol=0.02)

  def test_held_out_training_folder_refused(self):
    with self.assertRaises(ValueError):
      campaign.run_campaign([], tempfile.mkdtemp(), "../data/kodak", None)


_CURVE_KEYS = ("bpp", "psnr", "ms_ssim", "jpeg_psnr", "vs_jpeg_db")


def _tiny_run(max_steps=10_000_000, name="goog"):
  """A tiny GOOG run (an E2E model takes ~50x longer to build; snapshots
  do not depend on the family)."""
  return campaign.Run(name, "goog", 100.0, max_steps=max_steps,
                      kwargs=_TINY_GOOG)


def _tiny_e2e(max_steps=10_000_000):
  return campaign.Run("e2e-l0.02", "e2e", 100.0, max_steps=max_steps,
                      lmbda=0.02, kwargs=(("num_filters", 4),))


def _partial_run(root, run, steps, eval_every=2):
  """A run's checkpoints as the campaign writes them (`training.fit`'s
  object graph: state, model, Adam with its slots), from a loop whose
  "training" step moves every weight; returns the model at the end."""
  model = campaign._new_model(run)  # pylint: disable=protected-access
  optimizer = tf.keras.optimizers.Adam(1e-4)
  optimizer.build(model.trainable_variables)
  sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)

  def step(_):
    for v in model.trainable_variables:
      v.assign_add(tf.fill(v.shape, 0.01))
    return {"loss": tf.constant(1.0)}

  curve = lambda: {k: float(len(k)) for k in _CURVE_KEYS}
  training.train_loop(
      step, sampler, 1, os.path.join(root, run.name, "ckpt"),
      {"model": model, "optimizer": optimizer}, max_steps=steps,
      evaluate=curve, eval_every=eval_every, checkpoint_every_s=1e9,
      log=lambda _: None)
  return model


def _weights(prefix):
  """{name: value} of the model's variables in a checkpoint."""
  return {n: tf.train.load_variable(prefix, n)
          for n, _ in tf.train.list_variables(prefix)
          if n.startswith("model/")}


def _files(folder):
  return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
          for d, _, fs in os.walk(folder) for f in fs}


class SnapshotTest(tf.test.TestCase):

  def test_snapshot_of_a_partial_run_equals_its_checkpoint(self):
    root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    run = _tiny_run()
    _partial_run(root, run, steps=5)
    before = _files(root)
    lines = []
    [info] = campaign.snapshot([run, _tiny_e2e()], root, out,
                               log=lines.append)
    self.assertEqual(_files(root), before)  # nothing written under root
    newest = tf.train.latest_checkpoint(os.path.join(root, run.name, "ckpt"))
    self.assertEqual((info["step"], info["source"]), (5, newest))
    snap = campaign.snapshot_checkpoint(out, run.name)
    self.assertEqual(snap, os.path.join(out, run.name, "model"))
    expected, got = _weights(newest), _weights(snap)
    self.assertSetEqual(set(got), set(expected))
    for name, value in expected.items():
      self.assertAllEqual(got[name], value)
    names = [n for n, _ in tf.train.list_variables(snap)]
    self.assertFalse([n for n in names if "optimizer" in n or "OPT" in n])
    for var in ("step", "seconds"):
      key = f"state/{var}/.ATTRIBUTES/VARIABLE_VALUE"
      self.assertEqual(tf.train.load_variable(snap, key),
                       tf.train.load_variable(newest, key))
    size = sum(os.path.getsize(snap + s)
               for s in (".index", ".data-00000-of-00001"))
    self.assertEqual(info["bytes"], size)
    full = sum(os.path.getsize(f) for f in tf.io.gfile.glob(newest + ".*"))
    self.assertLess(size, full / 2)  # Adam's two slots per weight left out
    curve = training.read_jsonl(os.path.join(out, run.name, "curve.jsonl"))
    self.assertEqual([r["step"] for r in curve], [2, 4, 5])
    self.assertEqual(os.listdir(out), [run.name])  # no temporary folder
    self.assertIn("snapshot of", lines[-1])
    with self.assertRaisesRegex(ValueError, "inside"):
      campaign.snapshot([run], root, os.path.join(root, "snaps"))

  def test_model_md_holds_the_curve_and_the_facts(self):
    root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    run = _tiny_run()
    _partial_run(root, run, steps=4)
    command = "python scripts/baseline_campaign.py --root=runs/baselines"
    [info] = campaign.snapshot([run], root, out, command=command,
                               log=lambda _: None)
    with open(os.path.join(out, run.name, "MODEL.md")) as f:
      text = f.read()
    table = campaign.curve_markdown(root, run)
    self.assertIn(table, text)
    self.assertLen(table.splitlines(), 4 + 2)  # steps 2 and 4
    for fact in (command, "GOOG", "encoder_rnn (8, 8, 8)", "16 iterations",
                 "4 steps", f"{info['bytes']:,} bytes", "not a shipped model",
                 "train400", "first 8 images of `bsd68`"):
      self.assertIn(fact, text)
    self.assertIn("mean over iterations of the mean |r_t|", text)
    goog_line = campaign._architecture(  # pylint: disable=protected-access
        run, {"goog_iterations": 8, "goog_loss_norm": "l2",
              "goog_loss_weights": "4,4,4,1"})
    for fact in ("8 iterations", "mean r_t² weighted over iterations by "
                 "4,4,4,1"):
      self.assertIn(fact, goog_line)
    e2e_line = campaign._architecture(  # pylint: disable=protected-access
        _tiny_e2e(), {})
    for fact in ("E2E", "4 filters", "λ = 0.02", "128² crops, batch 8"):
      self.assertIn(fact, e2e_line)

  def test_model_md_states_the_budget_a_finished_session_spent(self):
    root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    run = _tiny_run()  # its budget in this command: 100 min = 1.67 h
    _partial_run(root, run, steps=4)
    status = os.path.join(root, run.name, "status.json")

    def read():
      with open(os.path.join(out, run.name, "MODEL.md")) as f:
        return f.read()

    with open(status, "w") as f:  # a finished session at another step
      json.dump({"step": 3, "seconds": 60.0, "budget_minutes": 45.0}, f)
    campaign.snapshot([run], root, out, log=lambda _: None)
    self.assertIn("budget 1.67 h.", read())
    with open(status, "w") as f:  # that session ended at this checkpoint
      json.dump({"step": 4, "seconds": 60.0, "budget_minutes": 45.0}, f)
    campaign.snapshot([run], root, out, log=lambda _: None)
    self.assertIn("finished: its budget was 0.75 h.", read())
    self.assertNotIn("budget 1.67 h", read())

  def test_damaged_newest_checkpoint_falls_back_to_an_older_one(self):
    root, out = tempfile.mkdtemp(), tempfile.mkdtemp()
    run = _tiny_run()
    _partial_run(root, run, steps=4)  # checkpoints 2 and 4
    ckpt = os.path.join(root, run.name, "ckpt")
    for f in tf.io.gfile.glob(os.path.join(ckpt, "ckpt-4.data*")):
      with open(f, "r+b") as fh:  # as if being written right now
        fh.truncate(10)
    lines = []
    [info] = campaign.snapshot([run], root, out, log=lines.append)
    self.assertEqual(info["step"], 2)
    self.assertTrue(info["source"].endswith("ckpt-2"))
    self.assertIn("ckpt-4 is damaged", lines[0])
    for name, value in _weights(os.path.join(ckpt, "ckpt-2")).items():
      self.assertAllEqual(_weights(info["source"])[name], value)
    # Its curve stops at its step: the next session evaluates step 4 again.
    curve = training.read_jsonl(os.path.join(out, run.name, "curve.jsonl"))
    self.assertEqual([r["step"] for r in curve], [2])
    # A torn `checkpoint` file: the files on disk are still found.
    with open(os.path.join(ckpt, "checkpoint"), "w") as f:
      f.write('model_checkpoint_path: "ckpt')
    self.assertEqual(campaign.snapshot([run], root, out,
                                       log=lambda _: None)[0]["step"], 2)
    # Nothing readable: no snapshot, no error; the old one is kept.
    for f in tf.io.gfile.glob(os.path.join(ckpt, "ckpt-2.data*")):
      with open(f, "r+b") as fh:
        fh.truncate(10)
    lines = []
    self.assertEqual(campaign.snapshot([run], root, out, log=lines.append),
                     [])
    self.assertIn("no readable checkpoint", lines[-1])
    self.assertIsNotNone(campaign.snapshot_checkpoint(out, run.name))

  def test_warm_start_continues_steps_seconds_and_weights(self):
    root, out, new_root = (tempfile.mkdtemp() for _ in range(3))
    run = _tiny_run()
    _partial_run(root, run, steps=3)
    [info] = campaign.snapshot([run], root, out, log=lambda _: None)
    model = campaign._new_model(run)  # pylint: disable=protected-access
    optimizer = tf.keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    seen = []

    def step(_):  # an Adam update of every weight
      seen.append(([v.numpy() for v in model.variables],
                   int(optimizer.iterations.numpy())))
      optimizer.apply_gradients(
          [(tf.ones_like(v), v) for v in model.trainable_variables])
      return {"loss": tf.constant(1.0)}

    lines = []
    state = training.train_loop(
        step, training.CropSampler([np.zeros((8, 8), np.uint8)], 4), 1,
        os.path.join(new_root, "ckpt"),
        {"model": model, "optimizer": optimizer}, max_steps=5,
        continue_from=campaign.snapshot_checkpoint(out, run.name),
        log=lines.append)
    self.assertIn("warm start from snapshot", lines[0])
    self.assertIn("at step 3", lines[0])
    self.assertEqual(int(state.step.numpy()), 5)  # 2 steps in this session
    self.assertGreater(state.seconds.numpy(), info["seconds"])
    self.assertLen(seen, 2)
    snap = campaign.snapshot_checkpoint(out, run.name)
    reference = campaign._new_model(run)  # pylint: disable=protected-access
    tf.train.Checkpoint(model=reference).read(snap).expect_partial()
    # A fresh optimizer; the first step of this session sees the snapshot's
    # weights...
    weights, iterations = seen[0]
    self.assertEqual(iterations, 0)
    for got, want in zip(weights, reference.variables):
      self.assertAllEqual(got, want.numpy())
    # ... and moves them.
    self.assertNotAllClose(seen[-1][0][0], reference.variables[0].numpy())

  def test_campaign_warm_start_and_own_checkpoint(self):
    root, out, new_root = (tempfile.mkdtemp() for _ in range(3))
    train_dir = _folder("train400", size=(32, 32))
    settings = dict(_SETTINGS, eval_every=1000, goog_iterations=1)
    _partial_run(root, _tiny_run(), steps=3)
    campaign.snapshot([_tiny_run()], root, out, log=lambda _: None)
    # A new machine: no checkpoint; the snapshot's step and weights go on.
    lines = []
    [(_, before, after)] = campaign.run_campaign(
        [_tiny_run(max_steps=4)], new_root, train_dir, None,
        settings=settings, warm_start=out, log=lines.append)
    self.assertEqual((before, after["step"]), ("new", 4))
    self.assertLen([x for x in lines if "warm start from snapshot" in x], 1)
    self.assertTrue(any("at step 3" in x for x in lines))
    curve = training.read_jsonl(
        os.path.join(new_root, "goog", "ckpt", "curve.jsonl"))
    self.assertEqual([r["step"] for r in curve], [2, 3])  # the snapshot's
    # A run with its own checkpoint ignores the snapshot.
    lines = []
    [(_, before, after)] = campaign.run_campaign(
        [_tiny_run(max_steps=5)], new_root, train_dir, None,
        settings=settings, warm_start=out, log=lines.append)
    self.assertEqual((before, after["step"]), ("partial", 5))
    self.assertTrue(any("resumed" in x and "at step 4" in x for x in lines))
    self.assertFalse(any("snapshot" in x for x in lines))


if __name__ == "__main__":
  tf.test.main()
