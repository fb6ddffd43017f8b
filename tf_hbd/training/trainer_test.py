"""Tests of the training loop: exact resume, NaN guard, log, validation."""

import csv
import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.evaluation import metrics
from tf_hbd.data import sample_images
from tf_hbd.training import trainer as training
from tf_hbd.training.algorithms import base


def _photo(size=48):
  return np.ascontiguousarray(sample_images.load_sample("camera")[
      100:100 + size, 150:150 + size])


def _stream(batch_size=16, crash_at=None, nan_at=None):
  """A resumable in-memory stream; optionally crashes or poisons a batch."""
  arrays = data.blocks_from_images([("camera", _photo())], "jpeg",
                                   quality=15)

  def batches(start):
    ds = arrays.to_dataset(batch_size, seed=7, repeat=True,
                           start_batch=start)
    for i, b in enumerate(ds, start=start):
      if crash_at is not None and i == crash_at:
        raise KeyboardInterrupt("simulated crash")
      if nan_at is not None and i == nan_at:
        b = dict(b, target=b["target"] * np.nan)
      yield b

  return batches


def _validator():
  img = _photo(40)
  decoded, _ = codecs.roundtrip(img, "jpeg", quality=15)
  return training.Validator([training.ValImage("crop", img, decoded)])


def _trainer(model_dir, algo_name="bptt", batches=None, **kwargs):
  model = decoder_lib.build_decoder("lstm", units=6, patch_size=8, K=3,
                                    seed=4)
  algo = base.make_algorithm(algo_name, model)
  config = dict(model_dir=model_dir, epochs=2, steps_per_epoch=5,
                batch_size=16, optimizer="momentum", lr=0.05,
                checkpoint_every=2, log_every=0)
  config.update(kwargs)
  return training.Trainer(algo, batches or _stream(), _validator(),
                          training.TrainConfig(**config),
                          printer=lambda *a: None)


class TrainerTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("uoro", "sab")
  def test_resume_after_crash_gives_identical_weights(self, algo_name):
    full_dir = self.create_tempdir().full_path
    full = _trainer(full_dir, algo_name)
    full.run()
    crash_dir = self.create_tempdir().full_path
    crashed = _trainer(crash_dir, algo_name, _stream(crash_at=7))
    with self.assertRaises(KeyboardInterrupt):
      crashed.run()  # dies at batch 7; last checkpoints: 5 (epoch), 6
    resumed = _trainer(crash_dir, algo_name)
    resumed.run()
    self.assertEqual(int(resumed.batches_done.numpy()), 10)
    for a, b in zip(full.algo.variables, resumed.algo.variables):
      self.assertAllEqual(a, b, msg=a.name)
    for a, b in zip(full.optimizer.variables, resumed.optimizer.variables):
      self.assertAllEqual(a, b)
    with open(os.path.join(full_dir, "log.json")) as f:
      log_full = json.load(f)
    with open(os.path.join(crash_dir, "log.json")) as f:
      log_resumed = json.load(f)
    for key in ("train_loss", "val_psnr", "lr"):
      self.assertEqual([r[key] for r in log_full["epochs"]],
                       [r[key] for r in log_resumed["epochs"]], msg=key)

  def test_nan_loss_stops_and_keeps_last_good_checkpoint(self):
    model_dir = self.create_tempdir().full_path
    trainer = _trainer(model_dir, batches=_stream(nan_at=3))
    with self.assertRaisesRegex(training.TrainingDivergedError,
                                r"loss is nan at batch 3.*ckpt-2"):
      trainer.run()
    ckpt = trainer.manager.latest_checkpoint
    self.assertEndsWith(ckpt, "ckpt-2")
    reader = tf.train.load_checkpoint(ckpt)
    for name in reader.get_variable_to_shape_map():
      value = reader.get_tensor(name)
      if np.issubdtype(np.asarray(value).dtype, np.floating):
        self.assertTrue(np.all(np.isfinite(value)), msg=name)
    with open(os.path.join(model_dir, "log.json")) as f:
      self.assertEqual(json.load(f)["status"], "diverged")

  def test_log_export_and_schedule(self):
    model_dir = self.create_tempdir().full_path
    trainer = _trainer(model_dir, "rtrl", lr_end_fraction=0.1)
    log = trainer.run()
    self.assertEqual(log["status"], "finished")
    self.assertLen(log["epochs"], 2)
    self.assertIn(log["convergence_epoch"], (1, 2))
    row = log["epochs"][-1]
    self.assertEqual(row["step"], 10)
    self.assertAllClose(row["codec_psnr"], trainer.validator.codec_psnr)
    self.assertAllClose(row["val_gain_db"],
                        row["val_psnr"] - row["codec_psnr"])
    # Online RTRL: K updates per batch; the step size decays to its end.
    self.assertEqual(int(trainer.optimizer.iterations.numpy()), 10 * 3)
    self.assertAllClose(row["lr"], 0.05 * 0.1, rtol=1e-6)
    with open(os.path.join(model_dir, "metrics.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual(tuple(rows[0]), training.LOG_FIELDS)
    self.assertLen(rows, 2)
    # The trainer writes no SavedModel (the entry point writes the serving
    # export); the log tells what the data fixed of the decoder.
    self.assertEmpty(tf.io.gfile.glob(os.path.join(model_dir, "**",
                                                   "saved_model.pb")))
    self.assertEqual(log["decoder"], {"patch_size": 8, "setting_size": 0})
    self.assertNotEmpty(tf.io.gfile.glob(
        os.path.join(model_dir, "tensorboard", "events.*")))

  def test_identity_decoder_scores_the_codec_psnr(self):
    model = decoder_lib.build_decoder("lstm", units=4, patch_size=8, K=2)
    for v in model.readout_variables:  # U = 0, c = 0: output = decoded
      v.assign(tf.zeros_like(v))
    validator = _validator()
    out = validator(model)
    im = validator.images[0]
    self.assertAllClose(out["codec_psnr"], metrics.psnr(im.original,
                                                        im.decoded))
    self.assertAllClose(out["val_psnr"], out["codec_psnr"])
    self.assertAllClose(out["val_gain_db"], 0.0)

  def test_convergence_epoch(self):
    self.assertEqual(training.convergence_epoch([30.0, 30.5, 30.98, 31.0,
                                                 30.9], 0.05), 3)
    self.assertEqual(training.convergence_epoch([31.0, 30.0], 0.05), 1)
    self.assertIsNone(training.convergence_epoch([None, None]))

  def test_optimizers(self):
    self.assertIsInstance(training.make_optimizer("sgd", 0.1),
                          tf.keras.optimizers.SGD)
    self.assertAllClose(training.make_optimizer("momentum", 0.1).momentum,
                        0.9)
    self.assertIsInstance(training.make_optimizer("adam", 0.1),
                          tf.keras.optimizers.Adam)
    with self.assertRaises(ValueError):
      training.make_optimizer("rmsprop", 0.1)
    sched = training.learning_rate_schedule(2e-4, 100, 2.0, 0.01)
    self.assertAllClose(sched(0), 2e-4)
    self.assertAllClose(sched(50), 2e-6 + (2e-4 - 2e-6) * 0.25)
    self.assertAllClose(sched(100), 2e-6)


class OldCheckpointTest(tf.test.TestCase):
  """A checkpoint of the object graph the trainer has always saved resumes
  with this code, at its batch, and the new checkpoints keep its names."""

  def _old_checkpoint(self, model_dir):
    """``checkpoints/ckpt-5`` as `Trainer` wrote it before `loop.run`,
    built by hand: the model, the optimizer, the counters by their names and
    the algorithm's state (UORO's sign generator)."""
    model = decoder_lib.build_decoder("lstm", units=6, patch_size=8, K=3,
                                      seed=9)
    algo = base.make_algorithm("uoro", model)
    optimizer = tf.keras.optimizers.SGD(
        training.learning_rate_schedule(0.05, 30), momentum=0.9)
    optimizer.build(algo.variables)
    optimizer.apply_gradients([(tf.ones_like(v), v) for v in algo.variables])
    algo.generator.reset_from_seed(123)
    counters = dict(
        batches_done=tf.Variable(5, dtype=tf.int64),
        epoch_loss=tf.Variable(0.0, dtype=tf.float64),
        epoch_loss_last=tf.Variable(0.0, dtype=tf.float64),
        train_time=tf.Variable(3.5, dtype=tf.float64))
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer,
                               uoro_generator=algo.generator, **counters)
    prefix = tf.train.CheckpointManager(
        ckpt, os.path.join(model_dir, "checkpoints"), max_to_keep=3).save(
            checkpoint_number=5)
    return prefix, algo

  def test_resumes_at_its_batch_with_the_same_names(self):
    model_dir = self.create_tempdir().full_path
    old, old_algo = self._old_checkpoint(model_dir)
    self.assertEndsWith(old, "ckpt-5")
    trainer = _trainer(model_dir, "uoro")
    lines = []
    trainer.print = lines.append
    trainer._restore()  # pylint: disable=protected-access
    self.assertEqual(lines, [f"resumed from {old} at batch 5"])
    self.assertEqual(int(trainer.batches_done.numpy()), 5)
    self.assertEqual(float(trainer.train_time.numpy()), 3.5)
    for a, b in zip(old_algo.variables, trainer.algo.variables):
      self.assertAllEqual(a, b, msg=a.name)
    self.assertEqual(int(trainer.optimizer.iterations.numpy()), 1)
    self.assertAllEqual(trainer.algo.generator.state,
                        old_algo.generator.state)
    names = lambda p: {n for n, _ in tf.train.list_variables(p)}
    old_names = names(old)  # ckpt-5 is gone once 3 newer ones are kept
    log = _trainer(model_dir, "uoro").run()  # epoch 2: batches 6 to 10
    self.assertEqual(log["status"], "finished")
    self.assertEqual([r["epoch"] for r in log["epochs"]], [2])
    new = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    self.assertEndsWith(new, "ckpt-10")
    self.assertEqual(names(new), old_names)
    self.assertContainsSubset(
        {f"{k}/.ATTRIBUTES/VARIABLE_VALUE" for k in (
            "batches_done", "epoch_loss", "epoch_loss_last", "train_time")},
        old_names)


if __name__ == "__main__":
  tf.test.main()


class ScheduleAndAverageTest(tf.test.TestCase):

  def test_cosine_schedule_warms_up_then_decays(self):
    s = training.learning_rate_schedule(1e-3, 110, end_fraction=0.02,
                                        kind="cosine", warmup=10)
    lr = [float(s(i)) for i in (0, 5, 10, 60, 110)]
    self.assertAllClose(lr, [0.0, 5e-4, 1e-3, 0.51e-3, 2e-5], rtol=1e-3,
                        atol=1e-9)
    with self.assertRaisesRegex(ValueError, "unknown schedule"):
      training.learning_rate_schedule(1e-3, 10, kind="step")

  def test_weight_average(self):
    v = tf.Variable([0.0, 0.0])
    avg = training.WeightAverage([v], decay=0.5)
    for value in ([2.0, 4.0], [4.0, 8.0]):
      v.assign(value)
      avg.update()
    # decay ramps: min(0.5, 1/10) = 0.1 then min(0.5, 2/11).
    first = 0.1 * 0.0 + 0.9 * 2.0
    second = (2 / 11) * first + (9 / 11) * 4.0
    self.assertAllClose(avg.averages[0], [second, 2 * second])
    with avg.swapped():
      self.assertAllClose(v, [second, 2 * second])
    self.assertAllClose(v, [4.0, 8.0])

  def test_trainer_validates_and_exports_the_average(self):
    d = self.get_temp_dir()
    t = _trainer(os.path.join(d, "ema"), ema=0.9, export_best=True,
                 lr_schedule="cosine", warmup=2, epochs=1)
    t.run()  # one epoch: the best checkpoint holds the final average
    best = decoder_lib.build_decoder("lstm", units=6, patch_size=8, K=3,
                                     seed=5)
    tf.train.Checkpoint(model=best).read(os.path.join(
        d, "ema", "checkpoints", "best", "ckpt-1")).assert_consumed()
    trained = [v.numpy() for v in t.model.trainable_variables]
    with t.averaged():
      averaged = [v.numpy() for v in t.model.trainable_variables]
    for a, b in zip(averaged, best.trainable_variables):
      self.assertAllClose(a, b.numpy())
    self.assertNotAllClose(trained[0], averaged[0])
    # Resuming restores the average too.
    t2 = _trainer(os.path.join(d, "ema"), ema=0.9, export_best=True,
                  lr_schedule="cosine", warmup=2, epochs=1)
    t2._restore()  # pylint: disable=protected-access
    for a, b in zip(t.average.averages, t2.average.averages):
      self.assertAllClose(a, b)
