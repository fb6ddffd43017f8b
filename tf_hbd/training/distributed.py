"""Data-parallel training on TensorFlow's `tf.distribute` engine.

Strategies (`make_strategy`, ``scripts/train.py --strategy``):

* ``default``: one process, one device; the plain `tf_hbd.training.trainer.Trainer`;
* ``mirrored``: `tf.distribute.MirroredStrategy`, the GPUs (or the given
  devices; ``num_cpu_devices`` splits the CPU into logical devices, for
  tests) of one machine;
* ``multi_worker``: `tf.distribute.MultiWorkerMirroredStrategy`, one process
  per machine (or per GPU group) described by ``TF_CONFIG``; without it, one
  worker. Collectives: ``ring`` (gRPC, any device; what the tests use over
  loopback), ``nccl`` (GPUs) or ``auto``.

`DistributedTrainer` is the `Trainer` under a strategy. The model, its
variables, the optimizer and the loop's counters are created under
``strategy.scope()`` (the decoder and the algorithm must be built under it
too, before the trainer). ``config.batch_size`` is the **global** batch: each
of the R replicas trains on B / R of its examples:

* input: every worker builds the same global stream (`tf_hbd.data.pipelines`, a pure
  function of the seed and the batch number) and keeps, of each global batch,
  the rows of its replicas (`shard_batches`; the same split as tf.data's
  ``AutoShardPolicy.DATA``, done explicitly so that it is exact for in-memory
  arrays and TFDS files alike, and exact resume keeps working); every example
  gets ``example_id`` = n * B + row;
* loss: normalised by the global batch (``Algorithm.global_batch_size``), so
  the replicas' losses and gradients *sum* to those of the global batch in
  both loss forms;
* updates: each call of the algorithm's ``apply_gradients`` (once per batch
  for BPTT and SAB, once per refinement step for online RTRL/UORO) sums the
  gradients over all replicas (all-reduce), clips the global norm of the sum
  and applies it on every replica, so the replicas stay identical. RTRL's and
  UORO's forward state (state, influence or estimate) stays on the replica
  that owns the examples; see `tf_hbd.training.algorithms.uoro` for the few sums
  batched UORO adds;
* checkpoints, logs, summaries and the export: written by the chief
  (``strategy.extended.should_checkpoint``) under ``model_dir``; the other
  workers write theirs to a temporary directory (saving may be collective, so
  every worker saves), deleted at the end, and restore from the chief's
  ``model_dir/checkpoints`` (a shared file system or bucket). Resuming is as
  exact as with one process;
* validation: the chief only.

With one replica every sum is the identity: a one-worker run is the
single-process computation, and a run on R replicas equals it up to the
order of float additions (tested with 2 workers over loopback).
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Callable, Optional

import tensorflow as tf

from tf_hbd.training import checkpoints
from tf_hbd.training import config as _config
from tf_hbd.training import trainer as training

__all__ = [
    "COMMUNICATIONS",
    "STRATEGIES",
    "DistributedTrainer",
    "is_chief",
    "make_strategy",
    "shard_batches",
    "split_cpu",
    "worker_task",
]

STRATEGIES = _config.STRATEGIES
COMMUNICATIONS = _config.COMMUNICATIONS


def split_cpu(num_devices: int):
  """Splits the first CPU into `num_devices` logical devices.

  Must run before TensorFlow initialises its devices (before any op).
  """
  cpus = tf.config.list_physical_devices("CPU")
  tf.config.set_logical_device_configuration(
      cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(num_devices))


def make_strategy(name: str = "default", *, devices=None,
                  num_cpu_devices: int = 0, communication: str = "auto",
                  timeout_s: float = 0):
  """A `tf.distribute` strategy by name (see module docstring).

  Args:
    name: "default", "mirrored" or "multi_worker".
    devices: for "mirrored": device names (None: every GPU, else the CPU).
    num_cpu_devices: split the CPU into this many logical devices first
      (0: leave it); "mirrored" then uses them when `devices` is None.
    communication: collectives of "multi_worker": "auto", "ring" or "nccl".
    timeout_s: "multi_worker": abort a collective after this long (0: never;
      a failed peer is still detected by the strategy's health checks).
  """
  if name not in STRATEGIES:
    raise ValueError(f"unknown strategy {name!r}; choose from {STRATEGIES}")
  if communication not in COMMUNICATIONS:
    raise ValueError(f"unknown communication {communication!r}; choose from "
                     f"{COMMUNICATIONS}")
  if num_cpu_devices and num_cpu_devices > 1:
    split_cpu(num_cpu_devices)
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    if not devices and num_cpu_devices and num_cpu_devices > 1:
      devices = [f"/cpu:{i}" for i in range(int(num_cpu_devices))]
    return tf.distribute.MirroredStrategy(devices=devices or None)
  impl = tf.distribute.experimental.CommunicationImplementation
  options = tf.distribute.experimental.CommunicationOptions(
      implementation={"auto": impl.AUTO, "ring": impl.RING,
                      "nccl": impl.NCCL}[communication],
      timeout_seconds=float(timeout_s) if timeout_s else None)
  return tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=options)


def worker_task(strategy):
  """(task_type, task_id) of this process (``(None, 0)`` without a cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.task_type:
    return None, 0
  return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy) -> bool:
  """Whether this process writes checkpoints, logs and the export."""
  return bool(strategy.extended.should_checkpoint)


def shard_batches(dataset: tf.data.Dataset, global_batch_size: int,
                  input_context: tf.distribute.InputContext,
                  start_batch: int = 0) -> tf.data.Dataset:
  """This worker's per-replica batches from a stream of global batches.

  Global batch n (counted from `start_batch`) gets ``example_id`` = n * B +
  row (int64); the worker with input pipeline w of W, holding L = R / W
  replicas, keeps rows [w L b, (w + 1) L b) (b = B / R) and yields them as L
  consecutive batches of b, one per local replica (replica r of the strategy
  then holds rows [r b, (r + 1) b)). The union over workers is the global
  batch, in order.

  Args:
    dataset: global batches (dicts of tensors whose first dimension is B).
    global_batch_size: B, a multiple of the number of replicas R.
    input_context: from `strategy.distribute_datasets_from_function`.
    start_batch: the number of the dataset's first batch.
  """
  g = int(global_batch_size)
  replicas = int(input_context.num_replicas_in_sync)
  workers = int(input_context.num_input_pipelines)
  worker = int(input_context.input_pipeline_id)
  if g % replicas or replicas % workers:
    raise ValueError(f"the global batch size {g} must be a multiple of the "
                     f"{replicas} replicas ({workers} workers)")
  local = replicas // workers
  per_replica = g // replicas
  lo, hi = worker * local * per_replica, (worker + 1) * local * per_replica

  def take(n, batch):
    batch = dict(batch)
    batch["example_id"] = n * g + tf.range(g, dtype=tf.int64)
    out = {}
    for key, value in batch.items():
      tf.debugging.assert_equal(tf.shape(value)[0], g, message=(
          f"'{key}' is not a global batch of {g}"))
      part = tf.reshape(value[lo:hi], tf.concat(
          [[local, per_replica], tf.shape(value)[1:]], 0))
      part.set_shape(tf.TensorShape([local, per_replica]).concatenate(
          value.shape[1:]))
      out[key] = part
    return out

  ds = dataset.enumerate(start=int(start_batch)).map(take).unbatch()
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.OFF)  # sharded above
  return ds.with_options(options)


class DistributedTrainer(training.Trainer):
  """`tf_hbd.training.trainer.Trainer` under a `tf.distribute` strategy.

  Args:
    algo: a `tf_hbd.training.algorithms.Algorithm` built under ``strategy.scope()``.
    batches: ``batches(start_batch) -> tf.data.Dataset`` of *global*
      batches (``config.batch_size`` examples each), the same stream on
      every worker (e.g. `tf_hbd.data.train_inputs.Stream.batches`).
    validator: a `tf_hbd.training.trainer.Validator` or None (run by the chief).
    config: a `tf_hbd.training.trainer.TrainConfig`; ``batch_size`` is global.
    strategy: a `tf.distribute.Strategy` (see `make_strategy`).
    printer: where progress lines go.

  Raises:
    ValueError: the batch does not split evenly, or the model was built
      outside the strategy's scope.
  """

  def __init__(self, algo, batches: Callable[[int], tf.data.Dataset],
               validator: Optional[training.Validator],
               config: training.TrainConfig, strategy, printer=print):
    self.strategy = strategy
    # A multi-worker checkpoint is a collective: one worker cannot save
    # alone on a signal, so signals keep their usual effect there.
    self.stop_on_signals = not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy)
    self.num_replicas = int(strategy.num_replicas_in_sync)
    if config.batch_size % self.num_replicas:
      raise ValueError(f"batch size {config.batch_size} does not split "
                       f"evenly over {self.num_replicas} replicas")
    outside = [v.name for v in algo.variables
               if not strategy.extended.variable_created_in_scope(v)]
    if outside:
      raise ValueError(f"build the decoder and the algorithm under "
                       f"strategy.scope(); created outside it: {outside[:3]}")
    self.is_chief = is_chief(strategy)
    self.task = worker_task(strategy)
    self.chief_model_dir = config.model_dir
    self.scratch_dir = None
    if not self.is_chief:
      self.scratch_dir = tempfile.mkdtemp(
          prefix=f"hbd_{self.task[0]}{self.task[1]}_")
      config = dataclasses.replace(config, model_dir=self.scratch_dir)
    algo.global_batch_size = int(config.batch_size)
    self._global_batches = batches
    with strategy.scope():
      super().__init__(algo, self._replica_batches, validator, config,
                       printer)
    self.replica_batch_size = config.batch_size // self.num_replicas
    self._step_fn = tf.function(self._distributed_step, autograph=False)

  # ---- input -----------------------------------------------------------

  def _replica_batches(self, start_batch):
    def dataset_fn(input_context):
      return shard_batches(self._global_batches(start_batch),
                           self.config.batch_size, input_context,
                           start_batch)
    return self.strategy.distribute_datasets_from_function(dataset_fn)

  # ---- one step --------------------------------------------------------

  def _apply(self, grads):
    # Dense: sparse (IndexedSlices) gradients of the small position table
    # can have different row counts on different replicas.
    grads = [tf.zeros_like(v) if g is None else
             tf.cast(tf.convert_to_tensor(g), v.dtype)
             for g, v in zip(grads, self.algo.variables)]
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
      grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    if self.config.clip_norm and self.config.clip_norm > 0:
      grads, _ = tf.clip_by_global_norm(grads, self.config.clip_norm)
    self.optimizer.apply_gradients(zip(grads, self.algo.variables),
                                   skip_gradients_aggregation=True)

  def _replica_step(self, batch):
    out = self._train_step(batch)
    return self.algo.replica_sum(out)  # the global batch's metrics

  def _distributed_step(self, batch):
    out = self.strategy.run(self._replica_step, (batch,))
    return {k: self.strategy.experimental_local_results(v)[0]
            for k, v in out.items()}

  # ---- state -----------------------------------------------------------

  def _resumed(self, latest):
    """The chief: as `Trainer`; another worker (whose own folder is a new
    temporary one, `latest` None) restores the chief's newest checkpoint."""
    if self.is_chief:
      return super()._resumed(latest)
    directory = os.path.join(self.chief_model_dir, "checkpoints")
    # The chief's newest intact checkpoint, whatever its state file holds
    # (the chief may be setting an unreadable one aside); never written here.
    latest, _ = checkpoints.restore_newest_intact(
        self.checkpoint, directory, checkpoints.readable_latest(directory),
        repair_state=False)  # its warnings: stderr
    if latest:
      self.print(f"resumed from the chief's {latest} at batch "
                 f"{int(self.batches_done.numpy())}")
    return None

  def _validate(self):
    if not self.is_chief:
      return {"val_psnr": None, "codec_psnr": None, "val_gain_db": None}
    return super()._validate()

  def run(self):
    """Trains (or resumes) to the end on every worker; the chief's log.

    Returns the final log dict (a non-chief's own, unwritten-to-model_dir
    log), or None when stopped by ``max_steps``.
    """
    try:
      log = super().run()
      self._barrier()
      return log
    finally:
      if self.scratch_dir:
        self.writer.close()
        shutil.rmtree(self.scratch_dir, ignore_errors=True)

  def _barrier(self):
    """Waits until every worker gets here (one all-reduce), so that no
    worker (in particular the chief, whose process hosts the cluster's
    coordination service) exits while others still train or save."""
    fn = lambda: tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tf.constant(1.0))
    tf.function(lambda: self.strategy.run(fn), autograph=False)()
