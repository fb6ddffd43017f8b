"""Training machinery shared by the neural baselines (GOOG and E2E).

Both baselines train on random square crops of gray training images (the
decoder's training images: ``train400`` on a development machine, Places365 in
the paper). This module holds what the two training scripts have in common:

* `load_training_images` / `CropSampler`: the images held in memory and a
  reproducible batch of random crops (with horizontal flips) for every step:
  batch ``s`` depends only on ``(seed, s)``, so a resumed run sees exactly the
  batches an uninterrupted run would have seen;
* `train_loop`: a step- and time-boxed run with progress logging, periodic
  checkpoints and resume, through the loop the decoder's
  `tf_hbd.training.trainer.Trainer` runs through too
  (`tf_hbd.training.loop.run`: resume from the newest intact checkpoint,
  budget, timing, stop signals, periodic checkpoints and actions;
  `with_warmup`: the rate's warm-up). Training time is kept in the
  checkpoint, so a time budget (``max_seconds``) is a budget for the whole
  run, across restarts.
"""

import os
import time
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.training import loop

__all__ = ["load_training_images", "CropSampler", "TrainState", "train_loop",
           "fit", "make_step_fn", "with_warmup", "time_steps", "read_jsonl",
           "load_campaign_images",
           "check_training_folder", "HELD_OUT", "load_validation_images",
           "score_at_rate", "crop_sampler",
           "guarded_update"]


def load_training_images(folder: str, min_size: int,
                         max_images: Optional[int] = None) -> list:
  """Loads the gray training images of a folder (or glob) into memory.

  Args:
    folder: a folder or glob (see `tf_hbd.codecs.images.list_images`).
    min_size: images whose shorter side is below this are skipped.
    max_images: keep at most this many (sorted by file name).

  Returns:
    A list of uint8 arrays (H, W).

  Raises:
    ImageReadError: no usable image.
  """
  files = images.list_images(folder)
  if max_images:
    files = files[:max_images]
  out = [images.load_image(f).gray for f in files]
  out = [g for g in out if min(g.shape) >= min_size]
  if not out:
    raise errors.ImageReadError(
        folder, f"no training image has a shorter side >= {min_size}")
  return out


# Folder names that hold validation / test images: never train on them.
HELD_OUT = ("kodak", "bsd68")


def check_training_folder(folder: str) -> str:
  """`folder`, or `ValueError` if it names a held-out set (kodak, bsd68)."""
  parts = os.path.normpath(os.fspath(folder)).lower().split(os.sep)
  for held_out in HELD_OUT:
    if any(held_out in part for part in parts):
      raise ValueError(f"{folder}: {held_out} is a validation/test set; "
                       f"train on train400 (and the sample photographs)")
  return folder


def load_campaign_images(folder: str, min_size: int,
                         max_images: Optional[int] = None,
                         sample_split: Optional[str] = "train") -> list:
  """The baselines' training images: a folder plus the sample photographs.

  Args:
    folder: the training folder (``train400``); a held-out set (kodak,
      bsd68) is refused.
    min_size: images whose shorter side is below this are skipped.
    max_images: at most this many images from `folder`.
    sample_split: also add this split of `tf_hbd.data.sample_images` (the
      scikit-image photographs; "train" is disjoint from every evaluation
      set); None: the folder only.

  Returns:
    A list of uint8 arrays (H, W).
  """
  from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
  out = load_training_images(check_training_folder(folder), min_size,
                             max_images)
  if sample_split:
    extra = [sample_images.load_sample(n)
             for n in sample_images.sample_names(sample_split)]
    out += [g for g in extra if min(g.shape) >= min_size]
  return out


def crop_sampler(train_dir: str, patch_size: int,
                 max_images: Optional[int] = None,
                 sample_split: Optional[str] = None,
                 seed: int = 0) -> "CropSampler":
  """The training crops of a baseline run: the images of `train_dir` (plus
  the sample photographs' `sample_split`, `load_campaign_images`; without it
  any folder, `load_training_images`) at least `patch_size` on a side."""
  if sample_split:
    images = load_campaign_images(train_dir, patch_size, max_images,
                                  sample_split)
  else:
    images = load_training_images(train_dir, patch_size, max_images)
  return CropSampler(images, patch_size, seed)


def load_validation_images(folder: str, max_images: int = 8) -> list:
  """The first `max_images` gray images of a validation folder (bsd68)."""
  files = images.list_images(folder)[:max_images]
  if not files:
    raise errors.ImageReadError(folder, "no validation image")
  return [images.load_image(f).gray for f in files]


def score_at_rate(pairs: Sequence[tuple]) -> dict:
  """Means over images of a codec's quality and of JPEG's at the same rate.

  Args:
    pairs: ``(reference, decoded, bpp)`` per image (gray uint8; bpp of the
      real file, header included).

  Returns:
    dict: ``bpp``, ``psnr``, ``ms_ssim`` (means), ``jpeg_bpp``,
    ``jpeg_psnr`` (JPEG at the largest quality whose file is not above each
    image's bpp) and ``vs_jpeg_db`` = psnr - jpeg_psnr.
  """
  from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  rows = []
  for reference, decoded, bpp in pairs:
    jpeg, enc = codecs.roundtrip(reference, "jpeg", bpp=bpp)
    rows.append((bpp, metrics.psnr(reference, decoded),
                 metrics.ms_ssim(reference, decoded), enc.bpp,
                 metrics.psnr(reference, jpeg)))
  m = np.mean(np.asarray(rows, np.float64), axis=0)
  return {"bpp": round(m[0], 5), "psnr": round(m[1], 4),
          "ms_ssim": round(m[2], 5), "jpeg_bpp": round(m[3], 5),
          "jpeg_psnr": round(m[4], 4), "vs_jpeg_db": round(m[1] - m[4], 4)}


class CropSampler:
  """Random square crops of in-memory gray images, reproducible per step."""

  def __init__(self, gray_images: Sequence[np.ndarray], patch_size: int,
               seed: int = 0):
    if patch_size < 1:
      raise ValueError(f"patch_size must be positive, got {patch_size}")
    self.images = [np.asarray(g, np.uint8) for g in gray_images
                   if min(g.shape) >= patch_size]
    if not self.images:
      raise ValueError(f"no image is at least {patch_size} pixels on a side")
    self.patch_size = int(patch_size)
    self.seed = int(seed)

  def batch(self, step: int, batch_size: int) -> np.ndarray:
    """The batch of step `step`: uint8 array (batch_size, P, P, 1)."""
    rng = np.random.default_rng([self.seed, int(step)])
    p = self.patch_size
    out = np.empty((batch_size, p, p, 1), np.uint8)
    for b in range(batch_size):
      img = self.images[rng.integers(len(self.images))]
      r = rng.integers(img.shape[0] - p + 1)
      c = rng.integers(img.shape[1] - p + 1)
      crop = img[r:r + p, c:c + p]
      if rng.integers(2):
        crop = crop[:, ::-1]
      out[b, :, :, 0] = crop
    return out


def guarded_update(optimizer, loss, grads, variables):
  """Applies the gradients only if the loss and every gradient are finite.

  One bad batch (e.g. a likelihood that underflows) then costs one skipped
  step instead of NaN weights. Call inside the `tf.function` of a step.

  Returns:
    A boolean tensor: whether the update was applied.
  """
  finite = tf.reduce_all([tf.math.is_finite(loss)] + [
      tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])

  def apply():
    optimizer.apply_gradients(zip(grads, variables))
    return tf.constant(True)

  return tf.cond(finite, apply, lambda: tf.constant(False))


class TrainState(tf.Module):
  """Step counter and accumulated training seconds, saved with checkpoints."""

  def __init__(self):
    super().__init__(name="train_state")
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                               name="seconds")


# Updates over which a fresh optimizer's rate is ramped up (see `fit`).
WARMUP_STEPS = 1000
# The rate at the end of a decayed budget, as a fraction of the rate (`fit`).
DECAY_FINAL = 0.05


def train_loop(step_fn: Callable, sampler: CropSampler, batch_size: int,
               checkpoint_dir: str, trackables: dict, *,
               max_steps: int, max_seconds: Optional[float] = None,
               log_every: int = 50, checkpoint_every_s: float = 120.0,
               max_bad_steps: int = 10,
               evaluate: Optional[Callable[[], dict]] = None,
               eval_every: int = 0,
               continue_from: Optional[str] = None,
               log: Callable[[str], None] = print,
               state: Optional[TrainState] = None) -> TrainState:
  """Runs (or resumes) a training loop with checkpoints.

  The loop is `tf_hbd.training.loop.run` (the decoder's too): resume,
  budget, timing, stop signals, periodic checkpoints; this function plugs
  in the step (the crops of step ``s`` are ``sampler.batch(s)``), the
  progress records and the learning curve.

  Args:
    step_fn: called as ``step_fn(batch_uint8)``; returns a dict of scalar
      tensors (losses) to log. It updates the model's variables, except when
      the loss or a gradient is not finite (use `guarded_update`).
    sampler: yields the batches (batch ``s`` for step ``s``).
    batch_size: crops per step.
    checkpoint_dir: where checkpoints go (an existing one is resumed).
    trackables: objects to checkpoint (model, optimizer, ...).
    max_steps: stop once this many steps were run in total.
    max_seconds: stop once this much training time was spent in total (over
      all restarts); None for no time limit.
    log_every: steps between progress lines.
    checkpoint_every_s: seconds between checkpoints.
    max_bad_steps: raise `FloatingPointError` after this many non-finite
      losses in a row (steps the step function skipped).
    evaluate: optional; called every `eval_every` steps and at the end
      (when its step was not evaluated yet) as ``evaluate()``, returns a
      dict of numbers (validation metrics), written with ``step``,
      ``seconds`` and ``hours`` (training time) to ``curve.jsonl`` in
      `checkpoint_dir` (the learning curve); a checkpoint follows every
      evaluation, so a resumed run never evaluates a step twice; its time
      is not training time.
    eval_every: steps between evaluations (0: only at the end).
    continue_from: a checkpoint without optimizer (a campaign snapshot) to
      start from when `checkpoint_dir` has none: the trackables but
      ``optimizer`` and step / seconds come from it; fresh optimizer.
    log: where progress lines go.
    state: the `TrainState` to restore into and advance (a new one if None;
      given when the step's schedule reads the training seconds).

  Returns:
    The `TrainState` (final step and seconds).

  Raises:
    tf_hbd.training.loop.Stopped: on SIGTERM / SIGINT, after a checkpoint.
  """
  state = TrainState() if state is None else state
  saver = loop.RunCheckpoint(
      tf.train.Checkpoint(state=state, **trackables), checkpoint_dir,
      state.step, max_to_keep=3, every_seconds=checkpoint_every_s, log=log)
  records = _Records(checkpoint_dir, state, evaluate, max_bad_steps, log)

  def on_resume(prefix):
    _resume(prefix, state, trackables, continue_from, log)
    records.open()

  def step(n):
    values = step_fn(tf.constant(sampler.batch(n, batch_size)))
    return {k: float(v) for k, v in values.items()}  # waits for the step

  every = [loop.Every(log_every, records.progress, last=True)]
  if evaluate is not None:
    every.append(loop.Every(eval_every, records.evaluate, checkpoint=True))
  loop.run(step, saver, state.seconds, loop.Budget(max_steps, max_seconds),
           on_resume=on_resume, on_step=records.add, every=every)
  saver.save()  # before the last evaluation: a stop during it loses no step
  if evaluate is not None and int(state.step.numpy()) not in records.evaluated:
    records.evaluate(int(state.step.numpy()))
  return state


def _resume(restored, state, trackables, continue_from, log):
  """After `loop.run` restored `restored` (None: no checkpoint yet): says
  so, or starts from `continue_from` (without the optimizer) if given."""
  if restored:
    log(f"resumed from {restored} at step "
        f"{int(state.step.numpy())} ({state.seconds.numpy():.0f} s trained)")
  elif continue_from:
    _restore_without_optimizer(continue_from, state, trackables)
    log(f"warm start from snapshot {continue_from} at step "
        f"{int(state.step.numpy())} ({state.seconds.numpy():.0f} s trained), "
        f"fresh optimizer")


def _restore_without_optimizer(path, state, trackables):
  """Restores `state` and every trackable but ``optimizer`` from `path`.

  Raises:
    ValueError: `path` is not a readable checkpoint of these objects.
  """
  objects = {k: v for k, v in trackables.items() if k != "optimizer"}
  try:
    tf.train.Checkpoint(state=state, **objects).read(
        path).expect_partial().assert_existing_objects_matched()
  except (tf.errors.OpError, ValueError, AssertionError, IndexError,
          RuntimeError) as e:
    raise ValueError(f"{path}: not a readable snapshot of this model "
                     f"({type(e).__name__}: "
                     f"{str(e).splitlines()[0][:200]})") from e


class _Records:
  """What a baseline run reports: the means of the step values since the
  last progress line (one line to `log`, one record in ``history.jsonl``)
  and the evaluations (the learning curve, ``curve.jsonl``)."""

  def __init__(self, directory, state, evaluate, max_bad_steps, log):
    self.directory = directory
    self.state = state
    self.evaluate_fn = evaluate
    self.log = log
    self.means = _StepMeans(max_bad_steps)
    self.history_path = os.path.join(directory, "history.jsonl")
    self.curve_path = os.path.join(directory, "curve.jsonl")
    self.evaluated = set()

  def open(self):
    """Creates the folder; reads which steps the curve has already."""
    tf.io.gfile.makedirs(self.directory)
    self.evaluated = {r["step"] for r in read_jsonl(self.curve_path)}

  def add(self, step, values, seconds):  # pylint: disable=unused-argument
    """Adds the values of step `step` to the means."""
    self.means.add(values, step)

  def progress(self, step):
    """The progress record of `step`: a line to the log, one to the history."""
    record = self.means.take_record(step, self.state.seconds.numpy())
    self.log(" ".join(f"{k}={v}" for k, v in record.items()))
    loop.append_jsonl(self.history_path, record)

  def evaluate(self, step):
    """Runs the evaluation; appends its record to the learning curve."""
    seconds = float(self.state.seconds.numpy())
    record = {"step": step, "seconds": round(seconds, 1),
              "hours": round(seconds / 3600.0, 4), **self.evaluate_fn()}
    self.log("eval " + " ".join(f"{k}={v}" for k, v in record.items()))
    loop.append_jsonl(self.curve_path, record)
    self.evaluated.add(step)


class _StepMeans:
  """Means of the step values between progress lines; counts the steps the
  step function skipped (non-finite values) and raises `FloatingPointError`
  after `max_bad_steps` of them in a row."""

  def __init__(self, max_bad_steps):
    self.max_bad_steps = max_bad_steps
    self.bad_in_a_row = 0
    self.sums, self.count, self.skipped = {}, 0, 0

  def add(self, values, step):
    if all(np.isfinite(v) for v in values.values()):
      for k, v in values.items():
        self.sums[k] = self.sums.get(k, 0.0) + v
      self.count += 1
      self.bad_in_a_row = 0
    else:  # the step function skipped the update (see `guarded_update`)
      self.skipped += 1
      self.bad_in_a_row += 1
      if self.bad_in_a_row >= self.max_bad_steps:
        raise FloatingPointError(f"{self.bad_in_a_row} non-finite steps in a "
                                 f"row at step {step}: {values}")

  def take_record(self, step, seconds):
    """The progress record of `step`; the means start again."""
    means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
    record = {"step": step, "seconds": round(float(seconds), 1),
              **{k: round(v, 6) for k, v in means.items()}}
    if self.skipped:
      record["skipped"] = self.skipped
    self.sums, self.count, self.skipped = {}, 0, 0
    return record


# A run's records and the rate's warm-up: `tf_hbd.training.loop`.
read_jsonl = loop.read_jsonl
with_warmup = loop.with_warmup


def make_step_fn(model, optimizer, batch_size: int, patch_size: int,
                 call_kwargs: Optional[dict] = None) -> Callable:
  """The compiled training step of `fit`: ``step_fn(uint8 batch) -> dict``.

  It minimises ``model(batch, training=True, **call_kwargs)["loss"]`` with
  `guarded_update`.
  """
  call_kwargs = dict(call_kwargs or {})

  # AutoGraph stays on here (not elsewhere, issue 16): the E2E model's
  # tensorflow_compression GDN layers branch in Python on a tensor.
  @tf.function(autograph=True, input_signature=[
      tf.TensorSpec((batch_size, patch_size, patch_size, 1), tf.uint8)])
  def step_fn(batch):
    with tf.GradientTape() as tape:
      values = model(batch, training=True, **call_kwargs)
    variables = model.trainable_variables
    grads = tape.gradient(values["loss"], variables)
    guarded_update(optimizer, values["loss"], grads, variables)
    return values

  return step_fn


def time_steps(step_fn: Callable, sampler: CropSampler, batch_size: int,
               steps: int = 5, warmup: int = 2) -> dict:
  """Seconds per training step of `step_fn` (after `warmup` steps).

  Used to choose widths and dtypes and to predict hours per model. The
  steps do update the model (use a throw-away one).

  Returns:
    dict: ``s_per_step`` (median of `steps` timed steps), ``min``, ``max``,
    ``compile_s`` (the first, tracing step).
  """
  t0 = time.time()
  step_fn(tf.constant(sampler.batch(0, batch_size)))
  compile_s = time.time() - t0
  for i in range(1, warmup):
    step_fn(tf.constant(sampler.batch(i, batch_size)))
  times = []
  for i in range(steps):
    batch = tf.constant(sampler.batch(warmup + i, batch_size))
    t0 = time.time()
    values = step_fn(batch)
    float(values["loss"])  # waits for the step
    times.append(time.time() - t0)
  return {"s_per_step": float(np.median(times)), "min": float(min(times)),
          "max": float(max(times)), "compile_s": compile_s}


def fit(model, optimizer, sampler: CropSampler, batch_size: int,
        patch_size: int, checkpoint_dir: str, *, export_fn: Callable = None,
        export_dir: Optional[str] = None, call_kwargs: Optional[dict] = None,
        max_steps: int = 0, max_seconds: Optional[float] = None,
        log_every: int = 100, checkpoint_every_s: float = 60.0,
        evaluate: Optional[Callable[[], dict]] = None, eval_every: int = 0,
        continue_from: Optional[str] = None, log: Callable = print,
        warmup_steps: Optional[int] = None,
        decay_from: Optional[float] = None) -> dict:
  """The training run shared by the neural codecs: one compiled step
  (``model(batch, training=True, **call_kwargs)["loss"]`` minimised with
  `guarded_update`), `train_loop` (checkpoints, resume, budget) and the
  optional export. `evaluate` / `eval_every`: the learning curve;
  `continue_from`: a snapshot to continue when there is no checkpoint; see
  `train_loop`. The optimizer's learning rate at the call is the one used,
  also when resuming (a checkpoint stores the rate it was trained with; a
  campaign may change it between sessions), which is logged when it differs.
  A fresh optimizer (a new run, a warm start from another run or from a
  snapshot) ramps that rate linearly over its first `warmup_steps` updates
  (default `WARMUP_STEPS`):
  Adam's first update moves every weight by the full rate in the direction
  of its gradient's sign, which took a trained 128-filter E2E model from
  27.6 to 19.7 dB in one step at 5e-4 (`benchmarks/warm_start_fresh_adam.py`).
  `decay_from` (a fraction of `max_seconds`): from there on the rate
  follows `loop.cosine_tail` down to `DECAY_FINAL` of itself at the end of
  the time budget (None: a constant rate).

  Returns:
    dict with the final ``step``, ``seconds`` (over all restarts) and
    ``wall_this_run``.
  """
  state = TrainState()
  decay = None
  if decay_from is not None:
    if not max_seconds:
      raise ValueError("decay_from needs a time budget (max_seconds)")
    decay = lambda: loop.cosine_tail(  # pylint: disable=g-long-lambda
        float(state.seconds.numpy()) / max_seconds, decay_from, DECAY_FINAL)
  step_fn = with_warmup(
      make_step_fn(model, optimizer, batch_size, patch_size, call_kwargs),
      optimizer, float(optimizer.learning_rate.numpy()),
      WARMUP_STEPS if warmup_steps is None else warmup_steps, log, decay)
  start = time.time()
  state = train_loop(
      step_fn, sampler, batch_size, checkpoint_dir,
      {"model": model, "optimizer": optimizer}, max_steps=max_steps,
      max_seconds=max_seconds, log_every=log_every,
      checkpoint_every_s=checkpoint_every_s, evaluate=evaluate,
      eval_every=eval_every, continue_from=continue_from, log=log,
      state=state)
  result = {"step": int(state.step.numpy()),
            "seconds": float(state.seconds.numpy()),
            "wall_this_run": time.time() - start}
  if export_dir:
    export_fn(model, export_dir)
    log(f"exported SavedModel to {export_dir}")
  return result
