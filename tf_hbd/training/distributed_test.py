"""Tests of data-parallel training (`tf_hbd.training.distributed`).

The equality checks train the same few steps on one replica and on two
(`MirroredStrategy` over two logical CPU devices; the two-process version over
loopback is `tests/multi_worker_test.py`) and compare the weights. Logical
devices must be configured before TensorFlow starts, so those runs happen in
a child process: ``python -m tf_hbd.training.distributed_test --child ALGOS OUT``.
"""

import json
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import pytest
import tensorflow as tf

from tf_hbd.data import pipelines as data
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training import distributed
from tf_hbd.model import losses
from tf_hbd.data import sample_images
from tf_hbd.training import trainer as training
from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import testing_utils as tu
from tf_hbd.training.algorithms import uoro

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
# Weights after 3 steps agree to ~1e-8 (float32 sums in another order).
_TOLERANCE = 1e-6
_ALGOS = {"bptt": ("bptt", {}), "sab": ("sab", {}), "rtrl": ("rtrl", {}),
          "uoro": ("uoro", {}),
          "uoro_per_example": ("uoro", {"per_example": True}),
          "uoro_post_update": ("uoro", {"form": "post_update"}),
          "snap1": ("snap1", {})}
# Checked by the test that `make test-fast` runs; the others only by `make
# test` (marked slow).
_FAST_EQUALITY = ("bptt", "uoro", "snap1")


def _arrays():
  crop = sample_images.load_sample("camera")[100:148, 150:198]
  return data.blocks_from_images([("camera", np.ascontiguousarray(crop))],
                                 "jpeg", quality=15)


def _train(algo_name, options, strategy, arrays, batch_size=16, steps=3):
  """Trains `steps` batches; (initial weights, final weights, epoch loss).

  ``strategy=None``: the plain one-process `training.Trainer`.
  """
  scope = strategy.scope() if strategy else tf.distribute.get_strategy(
  ).scope()
  with scope:
    model = decoder_lib.build_decoder("lstm", units=4, patch_size=8, K=2,
                                      seed=4)
    algo = base.make_algorithm(algo_name, model, **options)
  initial = [v.numpy() for v in algo.variables]
  config = training.TrainConfig(
      model_dir=tempfile.mkdtemp(), epochs=1, steps_per_epoch=steps,
      batch_size=batch_size, optimizer="momentum", lr=0.05, log_every=0)
  batches = lambda start: arrays.to_dataset(batch_size, seed=7, repeat=True,
                                            start_batch=start)
  quiet = lambda *a: None
  if strategy is None:
    trainer = training.Trainer(algo, batches, None, config, printer=quiet)
  else:
    trainer = distributed.DistributedTrainer(algo, batches, None, config,
                                             strategy, printer=quiet)
  log = trainer.run()
  return (initial, [v.numpy() for v in algo.variables],
          log["epochs"][0]["train_loss"])


def _max_diff(a, b):
  return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _equality_one(name, one, two, arrays):
  """Trains `name` on 1 and 2 mirrored replicas (BPTT also plainly)."""
  algo_name, options = _ALGOS[name]
  initial, w1, loss1 = _train(algo_name, options, one, arrays)
  _, w2, loss2 = _train(algo_name, options, two, arrays)
  result = {"max_diff": _max_diff(w1, w2), "moved": _max_diff(initial, w1),
            "loss_one": loss1, "loss_two": loss2,
            "replicas": two.num_replicas_in_sync}
  if name == "bptt":  # the distributed trainer = the plain one
    _, w0, loss0 = _train(algo_name, options, None, arrays)
    result["max_diff_plain"] = _max_diff(w0, w2)
    result["loss_plain"] = loss0
  return result


def _equality_child(names, out_path):
  """Runs each algorithm on 1 and 2 mirrored replicas; writes the diffs.

  One process for all of them (one TensorFlow start-up); an algorithm that
  raises is recorded with its traceback and the others still run.
  """
  distributed.split_cpu(2)
  # One strategy object each, reused: collective instance keys restart with
  # every new strategy over the same devices.
  one = tf.distribute.MirroredStrategy(["/cpu:0"])
  two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  arrays = _arrays()
  out = {}
  for name in names:
    try:
      out[name] = _equality_one(name, one, two, arrays)
    except Exception:  # pylint: disable=broad-except
      out[name] = {"error": traceback.format_exc()[-3000:]}
  with open(out_path, "w") as f:
    json.dump(out, f, indent=1)


def _run_child(names, timeout=600):
  out = os.path.join(tempfile.mkdtemp(), "equality.json")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
  proc = subprocess.run(
      [sys.executable, "-m", "tf_hbd.training.distributed_test", "--child",
       ",".join(names), out], cwd=_ROOT, env=env, capture_output=True,
      text=True, timeout=timeout)
  if proc.returncode:
    raise AssertionError(f"child failed:\n{proc.stderr[-4000:]}")
  with open(out) as f:
    return json.load(f)


class _Context:
  """What `shard_batches` reads of a `tf.distribute.InputContext`."""

  def __init__(self, workers, worker, replicas):
    self.num_input_pipelines = workers
    self.input_pipeline_id = worker
    self.num_replicas_in_sync = replicas


class ShardingTest(tf.test.TestCase):

  def _global(self, n=3, size=8):
    rows = np.arange(n * size, dtype=np.int32).reshape(n, size)
    return tf.data.Dataset.from_tensor_slices(
        {"x": rows, "y": np.stack([rows, -rows], axis=-1).astype(np.float32)})

  def test_workers_and_replicas_split_each_global_batch_in_order(self):
    # 2 workers x 2 local replicas, global batch 8: 2 rows per replica.
    per_worker = []
    for w in (0, 1):
      ds = distributed.shard_batches(self._global(), 8, _Context(2, w, 4),
                                     start_batch=5)
      per_worker.append(list(ds.as_numpy_iterator()))
    for n in range(3):
      parts = [per_worker[w][2 * n + j] for w in (0, 1) for j in (0, 1)]
      x = np.concatenate([p["x"] for p in parts])
      self.assertAllEqual(x, np.arange(8) + 8 * n)
      ids = np.concatenate([p["example_id"] for p in parts])
      self.assertAllEqual(ids, (5 + n) * 8 + np.arange(8))
      self.assertAllEqual(parts[1]["y"][:, 1], -parts[1]["x"])
    self.assertLen(per_worker[0], 6)

  def test_one_replica_gets_the_global_batch(self):
    ds = distributed.shard_batches(self._global(), 8, _Context(1, 0, 1))
    first = next(ds.as_numpy_iterator())
    self.assertAllEqual(first["x"], np.arange(8))
    self.assertAllEqual(first["example_id"], np.arange(8))

  def test_uneven_split_is_refused(self):
    with self.assertRaisesRegex(ValueError, "multiple of the 3 replicas"):
      distributed.shard_batches(self._global(), 8, _Context(1, 0, 3))

  def test_mismatched_batch_is_refused(self):
    ds = distributed.shard_batches(self._global(size=6), 8, _Context(2, 0, 2))
    with self.assertRaises(tf.errors.InvalidArgumentError):
      next(iter(ds))

  def test_unknown_strategy(self):
    with self.assertRaisesRegex(ValueError, "unknown strategy"):
      distributed.make_strategy("tpu")
    self.assertIs(distributed.make_strategy("default"),
                  tf.distribute.get_strategy())


class LossAndSignsTest(tf.test.TestCase):

  def test_halves_sum_to_the_global_loss_in_both_forms(self):
    rng = np.random.default_rng(0)
    target = rng.random((6, 8, 8)).astype(np.float32)
    recons = rng.random((6, 3, 64)).astype(np.float32)
    for form in losses.FORMS:
      full = losses.distortion(target, recons, form=form)
      halves = sum(losses.distortion(target[s], recons[s], form=form,
                                     batch_size=6)
                   for s in (slice(0, 2), slice(2, 6)))
      self.assertAllClose(halves, full, rtol=1e-6, msg=form)
      # Normalising each half by its own size would not add up.
      own = sum(losses.distortion(target[s], recons[s], form=form)
                for s in (slice(0, 2), slice(2, 6)))
      self.assertNotAllClose(own, full, rtol=1e-3, msg=form)

  def test_uoro_signs_depend_on_the_example_not_the_split(self):
    algo = uoro.UORO(tu.small_decoder("lstm", units=3, K=3), seed=5)
    algo.global_batch_size = 8
    ids = tf.constant(2 * 8 + np.arange(8), tf.int64)  # global batch 2
    full = algo.signs([8, 6], tf.float32, ids, step=1)
    parts = [algo.signs([4, 6], tf.float32, ids[s], step=1)
             for s in (slice(0, 4), slice(4, 8))]
    self.assertAllEqual(tf.concat(parts, 0), full)
    self.assertAllEqual(tf.abs(full), tf.ones_like(full))
    self.assertNotAllEqual(algo.signs([8, 6], tf.float32, ids, step=2), full)
    other = tf.constant(3 * 8 + np.arange(8), tf.int64)
    self.assertNotAllEqual(algo.signs([8, 6], tf.float32, other, step=1),
                           full)

  def test_replica_sum_is_the_identity_on_one_replica(self):
    algo = base.make_algorithm("bptt", tu.small_decoder("lstm", units=3))
    x = tf.constant([1.0, 2.0])
    self.assertAllEqual(algo.replica_sum(x), x)


class MirroredEqualityTest(tf.test.TestCase):

  def _check(self, name, r):
    self.assertNotIn("error", r, msg=r.get("error"))
    self.assertEqual(r["replicas"], 2)
    self.assertGreater(r["moved"], 1e-3)  # it did train
    self.assertLess(r["max_diff"], _TOLERANCE,
                    msg="max |weight difference|, 2 vs 1 replicas")
    self.assertAllClose(r["loss_two"], r["loss_one"], rtol=1e-6,
                        msg="epoch loss, 2 vs 1 replicas")
    if name == "bptt":  # the distributed trainer = the plain one
      self.assertLess(r["max_diff_plain"], _TOLERANCE,
                      msg="max |weight difference|, 2 replicas vs plain")
      self.assertAllClose(r["loss_plain"], r["loss_one"], rtol=1e-6,
                          msg="epoch loss, plain vs 1 replica")

  def _check_all(self, names):
    """All of `names` in one child process (one TensorFlow start-up); the
    failure names each algorithm that failed."""
    results = _run_child(names)
    self.assertCountEqual(results, names)
    failures = []
    for name in names:
      try:
        self._check(name, results[name])
      except AssertionError as e:
        failures.append(f"{name}: {e}")
    if failures:
      self.fail("two replicas differ from one for " + ", ".join(
          f.split(":")[0] for f in failures) + ":\n" + "\n".join(failures))

  def test_two_replicas_equal_one_bptt_uoro_snap1(self):
    # Not `slow`: `make test-fast` keeps the gradient equality of the three
    # main algorithms (and BPTT's distributed = plain trainer).
    self._check_all(list(_FAST_EQUALITY))

  @pytest.mark.slow
  def test_two_replicas_equal_one_for_the_other_algorithms(self):
    others = [n for n in _ALGOS if n not in _FAST_EQUALITY]
    self.assertCountEqual(others + list(_FAST_EQUALITY), _ALGOS)
    self._check_all(others)


if __name__ == "__main__":
  if sys.argv[1:2] == ["--child"]:
    _equality_child(sys.argv[2].split(","), sys.argv[3])
  else:
    tf.test.main()
