"""One resumable training loop and its machinery, one implementation of each.

Two trainings run in this package: the decoder
(`tf_hbd.training.trainer.Trainer`: any learning algorithm, epochs,
validation, weight average, `tf.distribute`) and the neural baselines
(`tf_hbd.baselines.training.train_loop`: GOOG and E2E, one compiled step on
random crops, a learning curve). Both run through `run`, a step-driven loop
in the manner of Orbit's ``Controller`` (TensorFlow Model Garden): it owns
what makes a run resumable, and each training plugs in its step and what it
reports:

* `run`: resume from the newest intact checkpoint (then ``on_resume``), the
  budget (`Budget`, steps and training seconds over all sessions) and an
  optional end step (``until``), the timing of every step (`timed`), the
  stop signals (`StopSignals`: a checkpoint at the current step, then
  `Stopped`), the periodic actions (`Every`: progress lines and records,
  validations, each optionally followed by a checkpoint) and the periodic
  checkpoints (`RunCheckpoint.due`). What happens at the end (the
  baselines' last evaluation and save, the decoder's log) is the caller's,
  after `run` returns why it ended;
* `RunCheckpoint`: checkpoints ``ckpt-<step>`` in a folder, resumed from the
  newest *intact* one (`tf_hbd.training.checkpoints.restore_newest_intact`:
  a garbled state file or damaged files fall back to an older checkpoint,
  never to step 0 over intact files), saved when due (every N steps and/or
  every S seconds);
* `Budget`: when a run stops, in steps and training seconds, both totals
  over all its sessions (the counters live in the checkpoint);
* `timed`: one step, its seconds added to the run's checkpointed clock;
* `with_warmup`: a fresh optimizer's rate ramped linearly (a rate held in
  the optimizer's variable; the decoder's schedules are Keras
  ``LearningRateSchedule`` objects, `tf_hbd.training.trainer`);
* `append_jsonl` / `read_jsonl`: a run's records, one JSON object a line,
  safe against a run killed while writing;
* `StopSignals`: SIGTERM / SIGINT turned into a request the loop honours
  between steps (save a checkpoint at the current step, then raise
  `Stopped`), so a stopped run loses no finished step.

What stays with each training: the step itself (the decoder's algorithms
apply their gradients inside it, once per batch or once per refinement
step), the data (the decoder's resumable stream of batches, the baselines'
crops as a function of the step number), what is logged and validated, and
the object graph of the checkpoint: `run` saves the caller's
`tf.train.Checkpoint` as given, nothing here adds to or renames it. A
multi-worker decoder run (`tf_hbd.training.distributed`) goes through `run`
too, with the stop signals off (its checkpoint is a collective that one
worker cannot take alone); its non-chief workers restore from the chief's
folder in their ``on_resume``.
"""

import dataclasses
import functools
import json
import signal
import threading
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tf_hbd.training import checkpoints

__all__ = ["run", "Every", "UNTIL", "BUDGET", "RunCheckpoint", "Budget",
           "timed", "with_warmup", "cosine_tail", "append_jsonl", "read_jsonl",
           "StopSignals", "Stopped"]


class RunCheckpoint:
  """The checkpoints of a resumable run, numbered by its step counter.

  Args:
    checkpoint: the `tf.train.Checkpoint` of everything the run keeps.
    directory: the checkpoint folder.
    step: the variable that counts the steps done (numbers the files).
    max_to_keep: checkpoints kept.
    every_steps: `due` at every multiple of this step (0: never by steps).
    every_seconds: `due` once this many seconds passed since the last save
      or restore (None: never by time).
    log: where the warnings of `restore` go (default: stderr, as
      `tf_hbd.training.checkpoints.warn`).
  """

  def __init__(self, checkpoint: tf.train.Checkpoint, directory: str,
               step: tf.Variable, *, max_to_keep: int = 3,
               every_steps: int = 0, every_seconds: Optional[float] = None,
               log: Callable[[str], None] = checkpoints.warn):
    self.checkpoint = checkpoint
    self.step = step
    self.max_to_keep = max_to_keep
    self.every_steps = every_steps
    self.every_seconds = every_seconds
    self.log = log
    checkpoints.set_aside_unreadable_state(directory, log)
    self.manager = tf.train.CheckpointManager(checkpoint, directory,
                                              max_to_keep=max_to_keep)
    self._last_save = time.time()

  @property
  def directory(self) -> str:
    return self.manager.directory

  @property
  def latest(self) -> Optional[str]:
    """The newest checkpoint's prefix (None before the first)."""
    return self.manager.latest_checkpoint

  def restore(self) -> Optional[str]:
    """Restores the newest intact checkpoint; its prefix, or None when the
    folder holds none (a fresh run).

    Raises:
      tf_hbd.training.checkpoints.CheckpointError: checkpoint files exist
        but none of them reads back.
    """
    prefix, repaired = checkpoints.restore_newest_intact(
        self.checkpoint, self.directory, self.latest, log=self.log)
    if repaired:  # the state file was rewritten: read it again
      self.manager = tf.train.CheckpointManager(
          self.checkpoint, self.directory, max_to_keep=self.max_to_keep)
    self._last_save = time.time()
    return prefix

  def due(self, step: int) -> bool:
    """Whether a checkpoint is due after step `step`."""
    if self.every_steps and step % self.every_steps == 0:
      return True
    return (self.every_seconds is not None
            and time.time() - self._last_save >= self.every_seconds)

  def save(self) -> str:
    """Writes ``ckpt-<step>``; its prefix."""
    prefix = self.manager.save(checkpoint_number=int(self.step.numpy()))
    self._last_save = time.time()
    return prefix


@dataclasses.dataclass(frozen=True)
class Budget:
  """When a resumable run stops: totals over all its sessions.

  Attributes:
    max_steps: stop once this many steps were done (None: no limit).
    max_seconds: stop once this many training seconds were spent (None: no
      limit).
  """
  max_steps: Optional[int] = None
  max_seconds: Optional[float] = None

  def spent(self, step: int, seconds: float = 0.0) -> bool:
    """Whether a run at `step` with `seconds` of training must stop."""
    if self.max_steps is not None and step >= self.max_steps:
      return True
    return self.max_seconds is not None and seconds >= self.max_seconds


def timed(fn: Callable, clock: tf.Variable):
  """Runs ``fn()`` and adds its wall time to `clock`, the run's
  checkpointed training seconds (time outside steps, e.g. validation,
  is not training time). Returns ``(fn's result, its seconds)``; `fn`
  should wait for its step (e.g. read its loss) so the time is the step's.
  """
  t0 = time.perf_counter()
  out = fn()
  seconds = time.perf_counter() - t0
  clock.assign_add(seconds)
  return out, seconds


def with_warmup(step_fn: Callable, optimizer, rate: float, warmup_steps: int,
                log: Optional[Callable[[str], None]] = None,
                decay: Optional[Callable[[], float]] = None) -> Callable:
  """`step_fn` trained at `rate`, ramped over the optimizer's first
  `warmup_steps` updates (``rate * (updates + 1) / warmup_steps``). A
  resumed optimizer past the ramp gets `rate` at the first step, whatever
  its checkpoint stored (logged when it differs). The optimizer's
  ``learning_rate`` must be a variable (a float at construction).

  `decay`, if given, is read before every step and multiplies the rate
  (a schedule in training time, e.g. `cosine_tail`); the rate is then set
  at every step.
  """
  first = [True]

  def scheduled(*args):
    updates = int(optimizer.iterations.numpy())
    if first[0] or updates <= warmup_steps or decay is not None:
      old = float(optimizer.learning_rate.numpy())
      changed = not np.isclose(old, rate, rtol=1e-6, atol=0.0)  # float32 held
      if first[0] and updates >= warmup_steps and changed and log:
        log(f"learning rate {rate:g} (the checkpoint had {old:g})")
      first[0] = False
      factor = 1.0 if decay is None else float(decay())
      optimizer.learning_rate.assign(
          rate * factor * min(1.0, (updates + 1) / max(warmup_steps, 1)))
    return step_fn(*args)

  return scheduled


def cosine_tail(progress: float, start: float, final: float) -> float:
  """A rate multiplier: 1 until `progress` (the fraction of the budget
  spent, e.g. training seconds / budget) reaches `start`, then half a
  cosine down to `final` at progress 1 (held after).

  Annealing the rate over the end of a fixed budget is the usual way to
  turn the last hours into a lower loss; a budget extended later restarts
  nothing, the curve is recomputed from the new budget.
  """
  if progress <= start or start >= 1.0:
    return 1.0
  p = min(1.0, (progress - start) / (1.0 - start))
  return final + (1.0 - final) * 0.5 * (1.0 + np.cos(np.pi * p))


def append_jsonl(path: str, record: dict) -> None:
  """Appends `record` as one line of JSON to `path`."""
  with tf.io.gfile.GFile(path, "a") as f:
    f.write(json.dumps(record) + "\n")


def read_jsonl(path: str) -> list:
  """The records of a ``.jsonl`` file ([] if missing); a torn last line
  (a run killed while writing) is ignored."""
  if not tf.io.gfile.exists(path):
    return []
  out = []
  with tf.io.gfile.GFile(path) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return out


class Stopped(KeyboardInterrupt):
  """A run stopped by a signal after saving a checkpoint at its last step.

  A `KeyboardInterrupt`, so the command lines' one "interrupted" handler
  (`tf_hbd.errors.exit_on_interrupt`: exit code 130, one line) applies; the
  message ("SIGTERM after batch 12, checkpoint <prefix> saved") names the
  signal, the step and the checkpoint, and that line shows it.
  """


class StopSignals:
  """Within: SIGTERM and SIGINT are recorded instead of killing the run.

  A loop checks `requested` between steps; when set it saves and raises
  `Stopped`. A second signal (of either kind) while a request is pending
  stops at once (that signal's previous handler: ``KeyboardInterrupt``
  for SIGINT, termination for SIGTERM), so a stuck run can still be killed.
  A signal that is ignored on entry, or whose handler was not installed
  from Python, keeps its handler. Off the main thread
  (where Python cannot install handlers), or with
  ``enabled=False``, it does nothing and `requested` stays None.

  Args:
    enabled: whether to catch the signals (False e.g. for a multi-worker
      run, whose checkpoint is a collective all workers must join).
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self, enabled: bool = True):
    self.enabled = enabled
    self.requested: Optional[str] = None
    self._previous = {}

  def _handle(self, signum, frame):
    if self.requested is not None:  # asked twice: behave as before
      previous = self._previous.get(signum)
      self.__exit__()
      if callable(previous):
        previous(signum, frame)
      elif signum == signal.SIGINT:
        raise KeyboardInterrupt
      else:
        signal.raise_signal(signum)
      return
    self.requested = signal.Signals(signum).name

  def __enter__(self) -> "StopSignals":
    if self.enabled and threading.current_thread() is threading.main_thread():
      for signum in self.SIGNALS:
        if signal.getsignal(signum) in (signal.SIG_IGN, None):
          continue  # e.g. SIGINT of a job started with `&`; a C handler
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}


# Why `run` ended.
UNTIL = "until"  # the step `until` was reached
BUDGET = "budget"  # the budget (steps or training seconds) was spent


@dataclasses.dataclass(frozen=True)
class Every:
  """An action `run` takes every `interval` steps.

  Attributes:
    interval: steps between calls (0: never by the step count).
    action: called as ``action(step)`` after step `step` (counted from 1).
    checkpoint: a checkpoint follows the action (e.g. after a validation,
      so that a resumed run never repeats it).
    last: also call it after the step that reaches the budget or `until`.
  """
  interval: int
  action: Callable[[int], Any]
  checkpoint: bool = False
  last: bool = False

  def due(self, step: int, last: bool) -> bool:
    """Whether the action is due after `step` (`last`: the run's last)."""
    return bool((self.interval and step % self.interval == 0)
                or (self.last and last))


def run(step_fn: Callable[[int], Any], saver: RunCheckpoint,
        clock: tf.Variable, budget: Budget, *, until: Optional[int] = None,
        on_resume: Optional[Callable[[Optional[str]], None]] = None,
        on_step: Optional[Callable[[int, Any, float], None]] = None,
        every: Sequence[Every] = (),
        on_budget: Optional[Callable[[int], None]] = None,
        on_stop: Optional[Callable[[int], None]] = None,
        unit: str = "step", stop_signals: bool = True) -> str:
  """Runs (or resumes) a training loop until `until` or the budget.

  First the newest intact checkpoint of `saver` is restored and
  ``on_resume(prefix)`` called (prefix None: no checkpoint). Then, while
  the step counter ``saver.step`` (the steps done, n) is below `until` and
  the budget is not spent (n and `clock`, the checkpointed training
  seconds): ``step_fn(n)`` runs, timed into `clock`; the counter becomes
  n + 1; ``on_step(n + 1, its result, its seconds)``; every due `Every`
  action; a checkpoint if an action asks for one, if `saver` says one is
  due or if a stop signal arrived; after a signal, ``on_stop(n + 1)``
  then `Stopped`. An exception of a step or an action ends the run
  without a checkpoint (the last one stays).

  Args:
    step_fn: one training step, called with the number of steps done.
    saver: the run's checkpoints; its ``step`` is the step counter.
    clock: the run's training seconds (a float64 variable it checkpoints).
    budget: steps and training seconds, totals over all sessions.
    until: the step count at which the run is complete (None: none).
    on_resume: called once after the restore, before any step.
    on_step: called after every step (e.g. running sums).
    every: the periodic actions, taken in this order.
    on_budget: called with the step count when the budget is spent, still
      under the stop signals' protection (e.g. a last checkpoint).
    on_stop: called after the checkpoint of a stop signal.
    unit: the name of a step in the message of `Stopped`.
    stop_signals: whether SIGTERM / SIGINT stop the loop between steps
      (`StopSignals`); False: they keep their usual effect.

  Returns:
    `UNTIL` or `BUDGET`: why the run ended.

  Raises:
    Stopped: SIGTERM or SIGINT arrived; the step under way was finished
      and checkpointed first.
  """
  prefix = saver.restore()
  if on_resume is not None:
    on_resume(prefix)
  with StopSignals(stop_signals) as stop:
    while True:
      n = int(saver.step.numpy())
      if until is not None and n >= until:
        return UNTIL
      if budget.spent(n, float(clock.numpy())):
        if on_budget is not None:
          on_budget(n)
        return BUDGET
      out, seconds = timed(functools.partial(step_fn, n), clock)
      n += 1
      saver.step.assign(n)
      last = ((until is not None and n >= until)
              or budget.spent(n, float(clock.numpy())))
      if on_step is not None:
        on_step(n, out, seconds)
      _after_step(n, last, every, saver, stop, on_stop, unit)


def _after_step(n, last, every, saver, stop, on_stop, unit):
  """The actions due after step `n`, the checkpoint if due, and the stop
  of a signal (a checkpoint at `n` first)."""
  checkpoint = False
  for action in every:
    if action.due(n, last):
      action.action(n)
      checkpoint = checkpoint or action.checkpoint
  prefix = None
  if checkpoint or saver.due(n) or stop.requested:
    prefix = saver.save()
  if stop.requested:  # also when it arrived after the test above
    prefix = prefix or saver.save()
    if on_stop is not None:
      on_stop(n)
    raise Stopped(f"{stop.requested} after {unit} {n}, "
                  f"checkpoint {prefix} saved")
