"""The training loop shared by every learning algorithm.

`Trainer` drives any `tf_hbd.training.algorithms` algorithm (it never branches on
which): it feeds batches, clips and applies the gradients the algorithm hands
back (once per batch for BPTT/SAB, once per refinement step for online
RTRL/UORO), logs progress and TensorBoard summaries, validates every epoch on
whole images through `tf_hbd.inference.refine`, checkpoints and resumes exactly
(its batches run through `tf_hbd.training.loop.run`, the loop the baselines
train through too), stops on a non-finite loss and, with ``export_best``,
keeps the best epoch's weights as a checkpoint. The run's one SavedModel,
the serving export, is written by the entry point (`tf_hbd.training.main`,
`tf_hbd.training.exports`); the checkpoints are the source of re-exports
(`tf_hbd.training.run_decoder`).

Optimisation (paper, section 3.2): SGD, batch 256, initial step size 2e-4
with polynomial decay, gradient global norm clipped to 13. "L2 polynomial
decay" is read as a power-2 polynomial decay of the step size over the whole
run (every update, so online algorithms decay per step) down to
``lr_end_fraction`` of the initial value. Momentum SGD and Adam are offered
too (the paper found that the online algorithms prefer SGD or momentum).

Epochs. The data is one endless stream of batches (the pipeline's epochs
follow each other); a training *epoch* is ``steps_per_epoch`` batches (by
default the number of whole batches in the training set), after which the
model is validated.

Exact resume. The checkpoint (`tf.train.CheckpointManager`) holds the model,
the optimizer, the number of batches consumed (the data pipeline's position:
the stream is a pure function of the seed and that number, see
`tf_hbd.data.pipelines`), the running epoch sums, the cumulative training time and any
algorithm state (UORO's sign generator). A rerun with the same flags restores
it, rebuilds the stream from that position and continues; the weights at the
end are bit-identical to an uninterrupted run's.

The log (``log.json`` and ``metrics.csv`` in the model directory; format in
BUILD.md, "Training algorithms") has one row per epoch: train loss, validation
PSNR of the refined images, the codec's PSNR on the same images, the gain,
time; and the convergence epoch: the first epoch whose validation PSNR is
within ``convergence_tol_db`` (default 0.05 dB) of the best.
"""

import contextlib
import csv
import dataclasses
import json
import math
import os
import time
from typing import Callable, Iterable, List, Optional

import numpy as np
import tensorflow as tf

from tf_hbd.training import checkpoints as checkpoints_lib
from tf_hbd.training import loop
from tf_hbd import errors
from tf_hbd.evaluation import metrics as metrics_lib
from tf_hbd.inference import refine as refine_lib

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "WeightAverage",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "ValImage",
    "Validator",
    "convergence_epoch",
    "learning_rate_schedule",
    "make_optimizer",
    "LOG_FIELDS",
]

OPTIMIZERS = ("sgd", "momentum", "adam")
LOG_FIELDS = ("epoch", "step", "train_loss", "train_loss_last", "val_psnr",
              "codec_psnr", "val_gain_db", "lr", "epoch_time_s", "time_s",
              "blocks_per_s")


class TrainingDivergedError(errors.HbdError):
  """The loss became NaN or infinite; the last good checkpoint is kept."""


SCHEDULES = ("polynomial", "cosine")


def learning_rate_schedule(lr, total_updates, power=2.0, end_fraction=0.01,
                           kind="polynomial", warmup=0):
  """The step size over `total_updates` updates.

  ``polynomial`` (the paper): decay with `power` from `lr` to
  ``end_fraction * lr``. ``cosine``: a linear warm-up from 0 to `lr` over
  `warmup` updates, then a cosine decay to ``end_fraction * lr``.
  """
  if kind == "cosine":
    warmup = int(min(max(0, warmup), max(0, total_updates - 1)))
    return tf.keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else float(lr),
        decay_steps=max(1, int(total_updates) - warmup),
        alpha=float(end_fraction), warmup_target=float(lr) if warmup else None,
        warmup_steps=warmup)
  if kind != "polynomial":
    raise ValueError(f"unknown schedule {kind!r}; choose from {SCHEDULES}")
  return tf.keras.optimizers.schedules.PolynomialDecay(
      initial_learning_rate=float(lr),
      decay_steps=max(1, int(total_updates)),
      end_learning_rate=float(lr) * float(end_fraction), power=float(power))


def make_optimizer(name, learning_rate, momentum=0.9):
  """"sgd" (paper), "momentum" (SGD with momentum) or "adam"."""
  if name == "sgd":
    return tf.keras.optimizers.SGD(learning_rate)
  if name == "momentum":
    return tf.keras.optimizers.SGD(learning_rate, momentum=float(momentum))
  if name == "adam":
    return tf.keras.optimizers.Adam(learning_rate)
  raise ValueError(f"unknown optimizer {name!r}; choose from {OPTIMIZERS}")


def convergence_epoch(psnrs, tol_db=0.05):
  """First (1-based) epoch whose PSNR is within `tol_db` of the best."""
  vals = [p for p in psnrs if p is not None and math.isfinite(p)]
  if not vals:
    return None
  best = max(vals)
  for i, p in enumerate(psnrs):
    if p is not None and math.isfinite(p) and p >= best - tol_db:
      return i + 1
  return None


class WeightAverage(tf.Module):
  """An exponential moving average of variables (Polyak averaging).

  ``update()`` after every optimizer step: avg <- decay avg + (1 - decay) v,
  with the decay ramped as ``min(decay, (1 + n) / (10 + n))`` over the first
  updates so early weights fade fast. ``swapped()`` is a context manager
  that puts the averages into the variables (for validation and export) and
  restores the trained values after.
  """

  def __init__(self, variables, decay):
    super().__init__(name="weight_average")
    self.decay = float(decay)
    self._vars = list(variables)
    self.averages = [tf.Variable(v, trainable=False, name="avg")
                     for v in self._vars]
    self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

  def update(self):
    n = tf.cast(self.count, tf.float32)
    decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
    for a, v in zip(self.averages, self._vars):
      a.assign(tf.cast(decay, a.dtype) * a
               + tf.cast(1.0 - decay, a.dtype) * v)
    self.count.assign_add(1)

  class _Swap:
    def __init__(self, owner):
      self.owner = owner
      self.saved = None

    def __enter__(self):
      self.saved = [tf.identity(v) for v in self.owner._vars]  # pylint: disable=protected-access
      for a, v in zip(self.owner.averages, self.owner._vars):  # pylint: disable=protected-access
        v.assign(a)

    def __exit__(self, *exc):
      for s, v in zip(self.saved, self.owner._vars):  # pylint: disable=protected-access
        v.assign(s)
      return False

  def swapped(self):
    return WeightAverage._Swap(self)


@dataclasses.dataclass
class ValImage:
  """A validation image: its original, the codec's reconstruction and the
  codec setting read from its bitstream (`tf_hbd.codecs.codec_setting`)."""
  name: str
  original: np.ndarray
  decoded: np.ndarray
  setting: Optional[np.ndarray] = None


class Validator:
  """Validation PSNR of whole images refined by a model (`tf_hbd.inference.refine`).

  Args:
    images: `ValImage` list (original and codec-decoded uint8 gray).
    K: refinement steps at inference (None: the model's K).
    batch_size: blocks per model call.
  """

  def __init__(self, images: List[ValImage], K=None, batch_size=4096):
    if not images:
      raise ValueError("no validation images")
    self.images = list(images)
    self.K = K
    self.batch_size = int(batch_size)
    self.codec_psnrs = [metrics_lib.psnr(im.original, im.decoded)
                        for im in self.images]

  @property
  def codec_psnr(self) -> float:
    return float(np.mean(self.codec_psnrs))

  def __call__(self, model):
    """{'val_psnr', 'codec_psnr', 'val_gain_db', 'per_image'}."""
    psnrs = []
    for im in self.images:
      refined = refine_lib.refine(im.decoded, model, K=self.K,
                                  batch_size=self.batch_size,
                                  setting=im.setting)
      psnrs.append(metrics_lib.psnr(im.original, refined))
    val = float(np.mean(psnrs))
    return {"val_psnr": val, "codec_psnr": self.codec_psnr,
            "val_gain_db": val - self.codec_psnr,
            "per_image": {im.name: p for im, p in zip(self.images, psnrs)},
            "codec_per_image": {im.name: p for im, p in
                                zip(self.images, self.codec_psnrs)}}


@dataclasses.dataclass
class TrainConfig:
  """Settings of a run (see `tf_hbd.training.main` for their flags).

  Attributes:
    model_dir: checkpoints, logs and TensorBoard summaries.
    epochs: training epochs.
    steps_per_epoch: batches per epoch.
    batch_size: blocks per batch (for throughput figures).
    optimizer, lr, momentum, lr_decay_power, lr_end_fraction, clip_norm,
      lr_schedule, warmup: see `make_optimizer` / `learning_rate_schedule`.
    ema: decay of the weight average used for validation and export (0:
      the trained weights themselves).
    export_best: keep the weights (averaged) of the best validation epoch
      so far as the checkpoint ``<model_dir>/checkpoints/best/ckpt-<epoch>``
      (`tf_hbd.training.run_decoder`, source "best").
    log_every: progress line and summaries every this many batches.
    checkpoint_every: also checkpoint every this many batches (0: only at
      epoch ends).
    max_to_keep: checkpoints kept.
    max_steps: stop after this many batches in total (0: no limit); the run
      is then unfinished and can be resumed.
    convergence_tol_db: tolerance of the convergence epoch.
    flags: the command line settings recorded in the log.
  """
  model_dir: str
  epochs: int = 1
  steps_per_epoch: int = 100
  batch_size: int = 256
  optimizer: str = "sgd"
  lr: float = 2e-4
  momentum: float = 0.9
  lr_decay_power: float = 2.0
  lr_end_fraction: float = 0.01
  clip_norm: float = 13.0
  lr_schedule: str = "polynomial"
  warmup: int = 0
  ema: float = 0.0
  export_best: bool = False
  log_every: int = 50
  checkpoint_every: int = 0
  max_to_keep: int = 3
  max_steps: int = 0
  convergence_tol_db: float = 0.05
  flags: dict = dataclasses.field(default_factory=dict)


def _fmt_time(seconds):
  seconds = int(max(0, seconds))
  return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Clock:
  """Wall time of the training steps of this session (data included)."""

  def __init__(self):
    self.session_time = 0.0  # all steps of this run
    self.session_batches = 0
    self.rate_time = 0.0  # steps since the last progress line
    self.rate_batches = 0
    self.epoch_t0 = None  # set by the epoch's first step

  def start_step(self):
    """A step begins (the epoch too, after `new_epoch` or at the start)."""
    if self.epoch_t0 is None:
      self.epoch_t0 = time.perf_counter()

  def add(self, dt):
    self.session_batches += 1
    self.session_time += dt
    self.rate_time += dt
    self.rate_batches += 1

  def take_rate(self, batch_size):
    """Blocks per second since the last call (then restarts the count)."""
    rate = self.rate_batches * batch_size / max(self.rate_time, 1e-9)
    self.rate_time, self.rate_batches = 0.0, 0
    return rate

  def epoch_time(self):
    """Seconds since the epoch began."""
    return time.perf_counter() - self.epoch_t0

  def new_epoch(self):
    """The next epoch begins with the next step (after the validation and
    the epoch's checkpoint)."""
    self.epoch_t0 = None


class Trainer:
  """Trains `algo.model` with `algo` on a resumable stream of batches.

  Args:
    algo: a `tf_hbd.training.algorithms.Algorithm`.
    batches: ``batches(start_batch) -> iterable`` of training batches, the
      endless stream from batch number `start_batch` on (a pure function of
      its argument, for exact resume).
    validator: a `Validator` or None (then no validation PSNR).
    config: a `TrainConfig`.
    printer: where progress lines go (default `print`).
  """

  def __init__(self, algo, batches: Callable[[int], Iterable],
               validator: Optional[Validator], config: TrainConfig,
               printer=print):
    self.algo = algo
    self.model = algo.model
    self.batches = batches
    self.validator = validator
    self.config = config
    self.print = printer
    c = config
    if c.epochs < 1 or c.steps_per_epoch < 1:
      raise ValueError("epochs and steps_per_epoch must be >= 1")
    os.makedirs(c.model_dir, exist_ok=True)
    # The batch one replica trains on (`tf_hbd.training.distributed` splits
    # c.batch_size across replicas); what the algorithm's resources scale with.
    self.replica_batch_size = c.batch_size
    total_updates = c.epochs * c.steps_per_epoch * algo.updates_per_batch
    self.schedule = learning_rate_schedule(c.lr, total_updates,
                                           c.lr_decay_power,
                                           c.lr_end_fraction, c.lr_schedule,
                                           c.warmup)
    self.optimizer = make_optimizer(c.optimizer, self.schedule, c.momentum)
    self.optimizer.build(algo.variables)
    self.average = (WeightAverage(self.model.trainable_variables, c.ema)
                    if c.ema else None)
    extra = {"average": self.average} if self.average else {}
    self.batches_done = tf.Variable(0, dtype=tf.int64, trainable=False,
                                    name="batches_done")
    self.epoch_loss = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                  name="epoch_loss_sum")
    self.epoch_loss_last = tf.Variable(0.0, dtype=tf.float64,
                                       trainable=False,
                                       name="epoch_loss_last_sum")
    self.train_time = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                  name="train_time_s")
    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer,
        batches_done=self.batches_done, epoch_loss=self.epoch_loss,
        epoch_loss_last=self.epoch_loss_last, train_time=self.train_time,
        **algo.checkpoint_items(), **extra)
    self.saver = loop.RunCheckpoint(
        self.checkpoint, os.path.join(c.model_dir, "checkpoints"),
        self.batches_done, max_to_keep=c.max_to_keep,
        every_steps=c.checkpoint_every)  # its warnings: stderr
    self._step_fn = tf.function(self._train_step, autograph=False)
    self.log_path = os.path.join(c.model_dir, "log.json")
    self.csv_path = os.path.join(c.model_dir, "metrics.csv")
    self.history = []
    # A run's: the step clock, the stream of batches, the last losses.
    self._clock, self._batches, self._losses = None, None, None
    self.writer = tf.summary.create_file_writer(
        os.path.join(c.model_dir, "tensorboard"))

  # ---- one step --------------------------------------------------------

  def _apply(self, grads):
    grads = [tf.zeros_like(v) if g is None else tf.cast(g, v.dtype)
             for g, v in zip(grads, self.algo.variables)]
    if self.config.clip_norm and self.config.clip_norm > 0:
      grads, _ = tf.clip_by_global_norm(grads, self.config.clip_norm)
    self.optimizer.apply_gradients(zip(grads, self.algo.variables))
    if self.average is not None:
      self.average.update()

  def _train_step(self, batch):
    out = self.algo.train_step(batch, self._apply)
    return {k: tf.cast(v, tf.float64) for k, v in out.items()}

  # ---- state -----------------------------------------------------------

  @property
  def manager(self) -> tf.train.CheckpointManager:
    return self.saver.manager

  def _restore(self):
    """Restores the newest intact checkpoint and the log's epochs."""
    self._resumed(self.saver.restore())

  def _resumed(self, latest):
    """After the restore of `latest` (None: no checkpoint): says so and
    keeps the log's epochs up to the checkpoint's."""
    if latest:
      self.print(f"resumed from {latest} at batch "
                 f"{int(self.batches_done.numpy())}")
    if os.path.exists(self.log_path):
      with open(self.log_path) as f:
        old = json.load(f)
      done = int(self.batches_done.numpy()) // self.config.steps_per_epoch
      self.history = [row for row in old.get("epochs", [])
                      if row["epoch"] <= done] if latest else []

  def _write_log(self, status, extra=None):
    c = self.config
    psnrs = [row.get("val_psnr") for row in self.history]
    best = None
    if any(p is not None for p in psnrs):
      best_i = int(np.nanargmax([np.nan if p is None else p for p in psnrs]))
      best = {"epoch": best_i + 1, "val_psnr": psnrs[best_i]}
    log = {
        "algorithm": self.algo.name,
        "algorithm_config": self.algo.describe(),
        "flags": c.flags,
        "status": status,
        "epochs_planned": c.epochs,
        "steps_per_epoch": c.steps_per_epoch,
        "batch_size": c.batch_size,
        "updates_per_batch": self.algo.updates_per_batch,
        # What the data fixed; with the flags, `run_decoder.rebuild` input.
        "decoder": {"patch_size": int(self.model.patch_size),
                    "setting_size": int(getattr(self.model, "setting_size",
                                                0))},
        "convergence_tol_db": c.convergence_tol_db,
        "convergence_epoch": convergence_epoch(psnrs, c.convergence_tol_db),
        "best": best,
        "epochs": self.history,
    }
    if extra:
      log.update(extra)
    tmp = self.log_path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(log, f, indent=1, default=float)
    os.replace(tmp, self.log_path)
    tmp = self.csv_path + ".tmp"
    with open(tmp, "w", newline="") as f:
      w = csv.DictWriter(f, fieldnames=LOG_FIELDS, extrasaction="ignore")
      w.writeheader()
      for row in self.history:
        w.writerow(row)
    os.replace(tmp, self.csv_path)
    return log

  # ---- the loop --------------------------------------------------------

  def averaged(self):
    """Context manager: the model holds its averaged weights inside."""
    if self.average is None:
      return contextlib.nullcontext()
    return self.average.swapped()

  def _validate(self):
    if self.validator is None:
      return {"val_psnr": None, "codec_psnr": None, "val_gain_db": None}
    with self.averaged():
      return self.validator(self.model)

  # SIGTERM / SIGINT: finish the batch, checkpoint, raise `loop.Stopped`.
  stop_on_signals = True

  def run(self):
    """Trains (or resumes) to the end; returns the final log dict.

    The batches run through `tf_hbd.training.loop.run` (resume, the
    ``max_steps`` budget, timing, stop signals, periodic checkpoints); the
    trainer plugs in the batch, the progress lines and the epochs (the
    validation, the log, the best checkpoint; a checkpoint follows).

    Returns:
      The final log dict, or None when stopped by ``max_steps``.

    Raises:
      tf_hbd.training.loop.Stopped: SIGTERM or SIGINT arrived; the batch
        under way was finished and checkpointed first (rerun to resume).
      TrainingDivergedError: non-finite loss (the checkpoint stays at the
        last good state).
      tf_hbd.errors.ResourceLimitError: the algorithm cannot fit (RTRL).
    """
    c = self.config
    self._check_resources()
    self._clock = _Clock()
    ended = loop.run(
        self._next_batch, self.saver, self.train_time,
        loop.Budget(max_steps=c.max_steps or None),
        until=c.epochs * c.steps_per_epoch, on_resume=self._start,
        on_step=self._add_batch,
        every=[loop.Every(c.log_every, self._progress),
               loop.Every(c.steps_per_epoch, self._end_epoch,
                          checkpoint=True)],
        on_budget=self._stop_at_max_steps,
        on_stop=lambda n: self._write_log("stopped"), unit="batch",
        stop_signals=self.stop_on_signals)
    return self._finish() if ended == loop.UNTIL else None

  def _start(self, latest):
    """After the restore of `latest`: the log's epochs, the first line and
    the stream of batches from the checkpoint's position on."""
    c = self.config
    self._resumed(latest)
    total = c.epochs * c.steps_per_epoch
    start = int(self.batches_done.numpy())
    if start >= total and self.history:
      self.print("training already finished")
      return
    self.print(f"training {self.algo.describe()} for {c.epochs} epochs x "
               f"{c.steps_per_epoch} batches of {c.batch_size}, from batch "
               f"{start}")
    self._batches = iter(self.batches(start))

  def _stop_at_max_steps(self, n):
    """The ``max_steps`` budget is spent at batch `n`: checkpoint, log."""
    self.print(f"stopping at batch {n} (max_steps)")
    self._save()
    self._write_log("stopped")

  def _check_resources(self):
    """The algorithm's resource check (raises when it cannot fit)."""
    est = self.algo.check_resources(self.replica_batch_size)
    if est:
      self.print(f"{self.algo.name}: estimated peak memory "
                 f"{est['peak_bytes'] / 2**30:.2f} GiB, about "
                 f"{est.get('seconds_per_batch', float('nan')):.2f} s per "
                 f"batch")

  def _next_batch(self, n):
    """Trains on the next batch (number `n`); (loss, last-step loss).

    Raises:
      TrainingDivergedError: the loss is not finite (logged first).
    """
    c = self.config
    self._clock.start_step()
    out = self._step_fn(next(self._batches))
    loss, loss_last = float(out["loss"].numpy()), float(
        out["loss_last"].numpy())
    if not math.isfinite(loss) or not math.isfinite(loss_last):
      latest = self.saver.latest
      self._write_log("diverged", {"diverged_at_batch": n})
      raise TrainingDivergedError(
          f"loss is {loss} at batch {n} (epoch "
          f"{n // c.steps_per_epoch + 1}, step "
          f"{n % c.steps_per_epoch + 1}); training stopped. The last good "
          f"checkpoint is {latest or '(none: no checkpoint was saved)'}. "
          f"Lower the learning rate (--lr) or the clip norm (--clip_norm) "
          f"and resume from it.")
    return loss, loss_last

  def _add_batch(self, n, losses, dt):  # pylint: disable=unused-argument
    """Batch `n` (counted from 1) is done: its time and losses are added."""
    self._clock.add(dt)
    self._losses = losses
    self.epoch_loss.assign_add(losses[0])
    self.epoch_loss_last.assign_add(losses[1])

  def _progress(self, n):
    """The progress line and the training summaries after batch `n`."""
    c = self.config
    loss, loss_last = self._losses
    clock = self._clock
    total = c.epochs * c.steps_per_epoch
    rate = clock.take_rate(c.batch_size)
    eta = clock.session_time / clock.session_batches * (total - n)
    self.print(f"epoch {(n - 1) // c.steps_per_epoch + 1}/{c.epochs} "
               f"step {(n - 1) % c.steps_per_epoch + 1}/"
               f"{c.steps_per_epoch} loss {loss:.5f} (last step "
               f"{loss_last:.5f}) {rate:.0f} blocks/s ETA {_fmt_time(eta)}"
               f" (+ validation)")
    with self.writer.as_default(step=n):
      tf.summary.scalar("train/loss", loss)
      tf.summary.scalar("train/loss_last", loss_last)
      tf.summary.scalar("train/blocks_per_s", rate)
      tf.summary.scalar("train/lr", self._lr())

  def _lr(self):
    return float(self.schedule(self.optimizer.iterations).numpy())

  def _save(self):
    self.saver.save()

  def _end_epoch(self, n):
    """The epoch ending at batch `n`: validation, log row, summaries, the
    best checkpoint; `loop.run` checkpoints after it."""
    c = self.config
    epoch = n // c.steps_per_epoch
    epoch_time = self._clock.epoch_time()
    v = self._validate()
    row = {
        "epoch": epoch,
        "step": n,
        "train_loss": float(self.epoch_loss.numpy()) / c.steps_per_epoch,
        "train_loss_last": float(self.epoch_loss_last.numpy())
                           / c.steps_per_epoch,
        "val_psnr": v["val_psnr"],
        "codec_psnr": v["codec_psnr"],
        "val_gain_db": v["val_gain_db"],
        "lr": self._lr(),
        "epoch_time_s": epoch_time,
        "time_s": float(self.train_time.numpy()),
        "blocks_per_s": c.steps_per_epoch * c.batch_size / max(epoch_time,
                                                              1e-9),
    }
    if v.get("per_image") is not None:  # the study's bootstrap over images
      row["val_per_image"] = v["per_image"]
      row["codec_per_image"] = v.get("codec_per_image")
    self.history.append(row)
    self.epoch_loss.assign(0.0)
    self.epoch_loss_last.assign(0.0)
    val = ("" if v["val_psnr"] is None else
           f" val PSNR {v['val_psnr']:.3f} dB (codec {v['codec_psnr']:.3f}, "
           f"gain {v['val_gain_db']:+.3f})")
    self.print(f"epoch {epoch}/{c.epochs} done: train loss "
               f"{row['train_loss']:.5f}{val} [{_fmt_time(epoch_time)}]")
    with self.writer.as_default(step=n):
      tf.summary.scalar("epoch/train_loss", row["train_loss"])
      if v["val_psnr"] is not None:
        tf.summary.scalar("epoch/val_psnr", v["val_psnr"])
        tf.summary.scalar("epoch/codec_psnr", v["codec_psnr"])
        tf.summary.scalar("epoch/val_gain_db", v["val_gain_db"])
    self.writer.flush()
    best = max((r["val_psnr"] for r in self.history
                if r["val_psnr"] is not None), default=None)
    if (c.export_best and v["val_psnr"] is not None
        and v["val_psnr"] >= best):
      self._save_best(epoch)
    self._write_log("running")
    self._clock.new_epoch()

  def _save_best(self, epoch):
    """The model's (averaged) weights as ``checkpoints/best/ckpt-<epoch>``;
    the older best checkpoints are removed once it is written."""
    directory = os.path.join(self.config.model_dir, "checkpoints", "best")
    prefix = os.path.join(directory, f"ckpt-{epoch}")
    with self.averaged():
      tf.train.Checkpoint(model=self.model).write(prefix)
    for old in checkpoints_lib.checkpoints_on_disk(directory):
      if old != prefix:
        for path in tf.io.gfile.glob(old + ".*"):
          tf.io.gfile.remove(path)
    self.print(f"saved the best model so far (epoch {epoch}) to {prefix}")

  def _finish(self):
    return self._write_log("finished")
