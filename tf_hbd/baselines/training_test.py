"""Tests of tf_hbd.baselines.training and the resumable training functions."""

import json
import os
import signal
import tempfile
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.data import sample_images
from tf_hbd.baselines import goog
from tf_hbd.baselines import training
from tf_hbd.training import checkpoints
from tf_hbd.training import loop


def _image_folder(n=3, size=(40, 52)):
  folder = tempfile.mkdtemp()
  rng = np.random.default_rng(0)
  for i in range(n):
    pixels = rng.integers(0, 256, size, np.uint8)
    Image.fromarray(pixels).save(os.path.join(folder, f"img{i}.png"))
  Image.fromarray(np.zeros((8, 8), np.uint8)).save(
      os.path.join(folder, "tiny.png"))
  return folder


class CropSamplerTest(tf.test.TestCase):

  def test_loading_skips_small_images(self):
    folder = _image_folder()
    self.assertLen(training.load_training_images(folder, 32), 3)
    self.assertLen(training.load_training_images(folder, 8), 4)
    self.assertLen(training.load_training_images(folder, 8, max_images=2), 2)
    with self.assertRaises(errors.ImageReadError):
      training.load_training_images(folder, 64)

  def test_batches_are_crops_and_reproducible(self):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (40, 52), np.uint8) for _ in range(3)]
    sampler = training.CropSampler(images, 16, seed=7)
    batch = sampler.batch(5, 6)
    self.assertEqual(batch.shape, (6, 16, 16, 1))
    self.assertEqual(batch.dtype, np.uint8)
    np.testing.assert_array_equal(batch, sampler.batch(5, 6))
    np.testing.assert_array_equal(
        batch, training.CropSampler(images, 16, seed=7).batch(5, 6))
    self.assertFalse(np.array_equal(batch, sampler.batch(6, 6)))
    self.assertFalse(np.array_equal(
        batch, training.CropSampler(images, 16, seed=8).batch(5, 6)))

    def is_crop(patch):
      for img in images:
        for cand in (img, img[:, ::-1]):
          for r in range(cand.shape[0] - 15):
            for c in range(cand.shape[1] - 15):
              if np.array_equal(cand[r:r + 16, c:c + 16], patch):
                return True
      return False

    self.assertTrue(all(is_crop(p[..., 0]) for p in batch))

  def test_rejects_images_smaller_than_patches(self):
    with self.assertRaises(ValueError):
      training.CropSampler([np.zeros((8, 8), np.uint8)], 16)


class GuardedUpdateTest(tf.test.TestCase):

  def test_skips_non_finite_updates(self):
    v = tf.Variable([1.0, 2.0])
    opt = tf.keras.optimizers.SGD(0.5)
    opt.build([v])

    @tf.function
    def update(loss, grad):
      return training.guarded_update(opt, loss, [grad], [v])

    self.assertTrue(update(tf.constant(1.0), tf.constant([1.0, 1.0])))
    self.assertAllClose(v, [0.5, 1.5])
    self.assertFalse(update(tf.constant(1.0), tf.constant([np.nan, 1.0])))
    self.assertFalse(update(tf.constant(np.inf), tf.constant([1.0, 1.0])))
    self.assertAllClose(v, [0.5, 1.5])

  def test_loop_tolerates_isolated_bad_steps_but_not_a_run_of_them(self):
    sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)
    losses = iter([1.0, np.nan, 2.0, 3.0] + [np.nan] * 5)
    lines = []
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    step = lambda _: {"loss": tf.constant(next(losses))}
    state = training.train_loop(step, sampler, 1, ckpt, {}, max_steps=4,
                                log_every=2, log=lines.append)
    self.assertEqual(int(state.step.numpy()), 4)
    lines = [" ".join(w for w in line.split() if "seconds" not in w)
             for line in lines]
    self.assertEqual(lines, ["step=2 loss=1.0 skipped=1", "step=4 loss=2.5"])
    with self.assertRaises(FloatingPointError):
      training.train_loop(step, sampler, 1, ckpt, {}, max_steps=100,
                          max_bad_steps=5, log=lambda _: None)


class CampaignDataTest(tf.test.TestCase):

  def test_held_out_sets_are_refused(self):
    for folder in ("../shared/data/kodak", "/x/BSD68/", "/d/kodak24"):
      with self.assertRaisesRegex(ValueError, "validation/test"):
        training.check_training_folder(folder)
    self.assertEqual(training.check_training_folder("/d/train400"),
                     "/d/train400")
    with self.assertRaises(ValueError):
      training.load_campaign_images("/nonexistent/bsd68", 8)

  def test_sample_photographs_are_added(self):
    folder = _image_folder()
    plain = training.load_campaign_images(folder, 32, sample_split=None)
    both = training.load_campaign_images(folder, 32)
    self.assertLen(plain, 3)
    names = sample_images.sample_names("train")
    self.assertLen(both, 3 + len(names))
    np.testing.assert_array_equal(both[3],
                                  sample_images.load_sample(names[0]))

  def test_score_at_rate(self):
    gray = sample_images.load_sample("camera")[:64, :64]
    noisy = np.clip(gray.astype(int) + 3, 0, 255).astype(np.uint8)
    m = training.score_at_rate([(gray, noisy, 2.0), (gray, gray, 1.0)])
    self.assertAlmostEqual(m["bpp"], 1.5)
    # identical images have infinite PSNR; one noisy image keeps it finite
    m = training.score_at_rate([(gray, noisy, 2.0)])
    self.assertAlmostEqual(m["psnr"], 20 * np.log10(255 / 3), places=3)
    self.assertLessEqual(m["jpeg_bpp"], 2.0)
    self.assertAlmostEqual(m["vs_jpeg_db"], m["psnr"] - m["jpeg_psnr"],
                           places=3)


class LoopTest(tf.test.TestCase):

  def _counting_step(self, v, fail_at=None):
    def step(_):
      if fail_at is not None and int(v.numpy()) == fail_at:
        raise KeyboardInterrupt("killed")
      v.assign_add(1.0)
      return {"loss": tf.constant(1.0)}
    return step

  def test_curve_and_resume_after_a_kill(self):
    sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    v = tf.Variable(0.0)
    evaluate = lambda: {"value": float(v.numpy())}
    kwargs = dict(evaluate=evaluate, eval_every=2, log=lambda _: None,
                  checkpoint_every_s=1e9)
    with self.assertRaises(KeyboardInterrupt):  # dies during step 6
      training.train_loop(self._counting_step(v, fail_at=5), sampler, 1,
                          ckpt, {"v": v}, max_steps=10, **kwargs)
    v.assign(-100.0)  # what the dead process had in memory is lost
    lines = []
    state = training.train_loop(self._counting_step(v), sampler, 1, ckpt,
                                {"v": v}, max_steps=7,
                                **dict(kwargs, log=lines.append))
    self.assertIn("at step 4", lines[0])  # the checkpoint after eval 4
    self.assertEqual(int(state.step.numpy()), 7)
    self.assertEqual(float(v.numpy()), 7.0)
    curve = training.read_jsonl(os.path.join(ckpt, "curve.jsonl"))
    self.assertEqual([(r["step"], r["value"]) for r in curve],
                     [(2, 2.0), (4, 4.0), (6, 6.0), (7, 7.0)])
    self.assertTrue(all(r["hours"] == round(r["seconds"] / 3600, 4)
                        for r in curve))
    # A finished run evaluated at its last step does not evaluate again.
    training.train_loop(self._counting_step(v), sampler, 1, ckpt, {"v": v},
                        max_steps=7, **kwargs)
    self.assertLen(training.read_jsonl(os.path.join(ckpt, "curve.jsonl")), 4)

  def test_sigterm_checkpoints_the_last_step_then_stops(self):
    sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    v = tf.Variable(0.0)
    def step(_):
      v.assign_add(1.0)
      if int(v.numpy()) == 3:  # e.g. `kill <pid>` during step 3
        os.kill(os.getpid(), signal.SIGTERM)
      return {"loss": tf.constant(1.0)}
    kwargs = dict(log=lambda _: None, checkpoint_every_s=1e9)
    handler = signal.getsignal(signal.SIGTERM)
    with self.assertRaisesRegex(loop.Stopped, "SIGTERM after step 3"):
      training.train_loop(step, sampler, 1, ckpt, {"v": v}, max_steps=10,
                          **kwargs)
    self.assertTrue(tf.train.latest_checkpoint(ckpt).endswith("ckpt-3"))
    self.assertEqual(signal.getsignal(signal.SIGTERM), handler)
    v.assign(-100.0)  # what the stopped process had in memory is gone
    state = training.train_loop(self._counting_step(v), sampler, 1, ckpt,
                                {"v": v}, max_steps=5, **kwargs)
    self.assertEqual(int(state.step.numpy()), 5)
    self.assertEqual(float(v.numpy()), 5.0)  # no step lost, none repeated

  def test_damaged_checkpoint_falls_back_to_an_older_one(self):
    sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    v = tf.Variable(0.0)
    kwargs = dict(evaluate=lambda: {}, eval_every=3, log=lambda _: None)
    training.train_loop(self._counting_step(v), sampler, 1, ckpt, {"v": v},
                        max_steps=6, **kwargs)
    newest = tf.train.latest_checkpoint(ckpt)
    self.assertTrue(newest.endswith("-6"))
    for f in tf.io.gfile.glob(newest + ".data*"):
      with open(f, "r+b") as fh:
        fh.truncate(1)
    lines = []
    v.assign(0.0)
    state = training.train_loop(self._counting_step(v), sampler, 1, ckpt,
                                {"v": v}, max_steps=6,
                                **dict(kwargs, log=lines.append))
    self.assertIn("damaged", lines[0])
    self.assertIn("falling back", lines[1])
    self.assertIn("ckpt-3 at step 3", lines[2])
    self.assertEqual(int(state.step.numpy()), 6)
    self.assertEqual(float(v.numpy()), 6.0)
    # nothing readable at all: a one-line error, the files are kept
    for f in tf.io.gfile.glob(os.path.join(ckpt, "ckpt-*.data*")):
      with open(f, "r+b") as fh:
        fh.truncate(1)
    with self.assertRaisesRegex(checkpoints.CheckpointError, "can be read"):
      training.train_loop(self._counting_step(v), sampler, 1, ckpt, {"v": v},
                          max_steps=9, **kwargs)

  def test_time_steps(self):
    sampler = training.CropSampler([np.zeros((8, 8), np.uint8)], 4)
    calls = []
    def step(batch):
      calls.append(batch.shape)
      return {"loss": tf.constant(0.0)}
    r = training.time_steps(step, sampler, 2, steps=3, warmup=2)
    self.assertLen(calls, 5)
    self.assertEqual(calls[0], (2, 4, 4, 1))
    self.assertLessEqual(r["min"], r["s_per_step"])
    self.assertLessEqual(r["s_per_step"], r["max"])


class TrainAndResumeTest(tf.test.TestCase):

  def test_goog_train_resume_and_history(self):
    folder = _image_folder()
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    kwargs = dict(train_dir=folder, checkpoint_dir=ckpt, export_dir=None,
                  config=goog.GoogConfig(8, (8, 8, 8), 8, (8, 8, 8, 8)),
                  batch_size=2, iterations=2, log_every=1)
    self.enter_context(mock.patch.object(training, "WARMUP_STEPS", 0))
    first = goog.train(max_steps=2, log=lambda _: None, **kwargs)
    self.assertEqual(first["step"], 2)
    lines = []
    second = goog.train(max_steps=3, log=lines.append, **kwargs)
    self.assertEqual(second["step"], 3)
    self.assertGreater(second["seconds"], first["seconds"])
    self.assertIn("resumed", lines[0])
    self.assertIn("at step 2", lines[0])
    with open(os.path.join(ckpt, "history.jsonl")) as f:
      history = [json.loads(line) for line in f]
    self.assertEqual([h["step"] for h in history], [1, 2, 3])
    self.assertTrue(all(np.isfinite(h["loss"]) for h in history))
    self.assertIn("psnr_2", history[-1])
    # A resumed run trains with the rate it is given, not the checkpoint's.
    lines = []
    goog.train(max_steps=4, log=lines.append, learning_rate=3e-5, **kwargs)
    self.assertIn("learning rate 3e-05 (the checkpoint had 0.0005)", lines[1])
    path = tf.train.latest_checkpoint(ckpt)
    self.assertAllClose(tf.train.load_variable(
        path, "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"), 3e-5)

  def test_time_budget_stops_training(self):
    folder = _image_folder()
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    result = goog.train(
        train_dir=folder, checkpoint_dir=ckpt, export_dir=None,
        config=goog.GoogConfig(8, (8, 8, 8), 8, (8, 8, 8, 8)),
        batch_size=2, iterations=2, max_steps=1000, max_seconds=0.0,
        log=lambda _: None)
    self.assertEqual(result["step"], 0)

  def test_decay_follows_the_training_seconds_of_the_budget(self):
    folder = _image_folder()
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    kwargs = dict(train_dir=folder, checkpoint_dir=ckpt, export_dir=None,
                  config=goog.GoogConfig(8, (8, 8, 8), 8, (8, 8, 8, 8)),
                  batch_size=2, iterations=2, log=lambda _: None)
    self.enter_context(mock.patch.object(training, "WARMUP_STEPS", 0))
    goog.train(max_steps=2, max_seconds=1e3, decay_from=0.0, **kwargs)
    path = tf.train.latest_checkpoint(ckpt)
    seconds = tf.train.load_variable(path, "state/seconds/.ATTRIBUTES/"
                                     "VARIABLE_VALUE")
    rate = tf.train.load_variable(
        path, "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE")
    # The rate of the last step: the tail at the seconds before that step.
    self.assertLess(rate, 5e-4)
    self.assertGreater(rate, 5e-4 * loop.cosine_tail(seconds / 1e3, 0.0,
                                                     training.DECAY_FINAL))
    # Resumed with a budget that ends right now: one step at the final rate.
    result = goog.train(max_steps=3, max_seconds=seconds + 1e-6,
                        decay_from=0.5, **kwargs)
    self.assertEqual(result["step"], 3)
    self.assertAllClose(tf.train.load_variable(
        tf.train.latest_checkpoint(ckpt),
        "optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"),
        5e-4 * training.DECAY_FINAL, rtol=1e-4)
    with self.assertRaisesRegex(ValueError, "time budget"):
      goog.train(max_steps=4, decay_from=0.5, **kwargs)

  def test_goog_rejects_unaligned_patches(self):
    with self.assertRaises(ValueError):
      goog.train(train_dir=_image_folder(), checkpoint_dir="/nonexistent",
                 export_dir=None, patch_size=48)


class OldCheckpointTest(tf.test.TestCase):
  """A checkpoint of the object graph the baselines have always saved (the
  campaign's checkpoints on disk) resumes with this code."""

  def _old_checkpoint(self, directory):
    """ckpt-7 as `train_loop` wrote it before `loop.run`, built by hand:
    ``state`` (``step`` int64, ``seconds`` float64) and the trackables
    (``model``, ``optimizer``: Adam with its slots) of `fit`."""
    state = tf.Module()
    state.step = tf.Variable(7, dtype=tf.int64)
    state.seconds = tf.Variable(12.25, dtype=tf.float64)
    model = tf.Module()
    model.w = tf.Variable([1.0, 2.0])
    optimizer = tf.keras.optimizers.Adam(1e-3)
    for _ in range(7):
      optimizer.apply_gradients([(tf.constant([0.5, -0.5]), model.w)])
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(state=state, model=model, optimizer=optimizer),
        directory, max_to_keep=3)
    return manager.save(checkpoint_number=7), model.w.numpy()

  def test_resumes_at_its_step_with_the_same_names(self):
    ckpt = os.path.join(tempfile.mkdtemp(), "ckpt")
    old, weights = self._old_checkpoint(ckpt)
    self.assertEndsWith(old, "ckpt-7")
    model = tf.Module()
    model.w = tf.Variable([0.0, 0.0])
    optimizer = tf.keras.optimizers.Adam(1e-3)
    optimizer.build([model.w])
    seen = []

    def step(_):
      seen.append((model.w.numpy(), int(optimizer.iterations.numpy())))
      optimizer.apply_gradients([(tf.constant([0.5, -0.5]), model.w)])
      return {"loss": tf.constant(1.0)}

    lines = []
    state = training.train_loop(
        step, training.CropSampler([np.zeros((8, 8), np.uint8)], 4), 1,
        ckpt, {"model": model, "optimizer": optimizer}, max_steps=9,
        log=lines.append)
    self.assertEqual(lines[0], f"resumed from {old} at step 7 (12 s "
                     f"trained)")
    self.assertEqual(int(state.step.numpy()), 9)
    self.assertGreater(state.seconds.numpy(), 12.25)
    self.assertAllEqual(seen[0][0], weights)  # the weights of ckpt-7
    self.assertEqual([i for _, i in seen], [7, 8])  # Adam's steps too
    new = tf.train.latest_checkpoint(ckpt)
    self.assertEndsWith(new, "ckpt-9")
    names = lambda p: {n for n, _ in tf.train.list_variables(p)}
    self.assertEqual(names(new), names(old))
    self.assertContainsSubset(
        {"state/step/.ATTRIBUTES/VARIABLE_VALUE",
         "state/seconds/.ATTRIBUTES/VARIABLE_VALUE",
         "model/w/.ATTRIBUTES/VARIABLE_VALUE",
         "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"}, names(new))


if __name__ == "__main__":
  tf.test.main()
