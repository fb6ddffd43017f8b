"""The baselines' training campaign: the whole E2E family and GOOG, resumable.

A campaign is a list of `Run`s trained one after the other under one root
folder. Each run lives in ``<root>/<name>/``:

* ``ckpt/``: checkpoints (steps, training seconds, model, optimizer),
  ``history.jsonl`` (training losses) and ``curve.jsonl`` (the learning
  curve: validation bpp / PSNR / MS-SSIM and JPEG's PSNR at the same rate,
  against steps and training hours; `training.train_loop`);
* ``model/<name>/``: the exported SavedModel (written to a temporary folder
  and renamed, so a killed export never leaves half a model); its folder
  name is the model name written into its files, ready to be copied to
  ``tf_hbd/baselines/pretrained/``;
* ``status.json``: step, seconds and budget of the last finished session.

Budgets are totals over all sessions (training minutes and steps kept in the
checkpoint): rerunning the campaign with a larger budget continues every run
from its checkpoint, and a run whose budget is spent is skipped (re-exported
only if its SavedModel is missing). A run killed at any moment (kill -9)
loses at most one checkpoint interval. A run with `init_from` starts from
the newest checkpoint of that other run (a warm start: lower-lambda E2E
models from a higher-lambda one); once it has its own checkpoint it resumes
from that.

Training data: ``train_dir`` (train400) plus the sample photographs' train
split, random crops with horizontal flips; validation: the first images of
``val_dir`` (bsd68). Kodak and bsd68 are refused as training folders.

Sessions on machines that are not kept: `snapshot` writes, without
training and while a run may be writing checkpoints, ``<out>/<name>/`` per
run with a checkpoint: the model's variables and step / seconds restored
from the newest intact checkpoint (no optimizer state), the learning curve
and losses up to that step, and a MODEL.md; small enough to commit. The next
session (a new root) passes that folder as ``warm_start``: a run without a
checkpoint of its own continues from its snapshot (weights, step and
seconds, so budgets stay totals; fresh optimizer; the curve continues); a
run with a checkpoint ignores it.
"""

import dataclasses
import glob
import json
import os
import shutil
import time
from typing import Callable, Optional, Sequence

from tf_hbd.baselines import training

__all__ = ["Run", "E2E_LAMBDAS", "E2E_BASE_LAMBDA", "default_plan",
           "run_campaign", "run_status", "curve_markdown", "GOOG_WIDTHS",
           "snapshot", "snapshot_checkpoint", "SNAPSHOT_PREFIX",
           "GOOG_FIT_IMAGES"]

# lambda (loss = bpp + lambda * MSE_255) of the E2E family: about 0.1 to
# 1.0 bpp on gray Kodak (the shipped 64-filter models gave 0.22 bpp at 0.002
# and 0.33 at 0.004). The base model, trained from scratch, is the one
# Table 3 needs: at 0.37 bpp JPEG's gray Kodak curve has slope ~13.6 dB/bpp
# at MSE ~50 (255 scale), i.e. dMSE/dbpp ~ -150 and lambda ~ 0.0065 at the
# rate; 0.005 keeps a converging model just below 0.37 bpp.
E2E_LAMBDAS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.04)
E2E_BASE_LAMBDA = 0.005
# GOOG widths of the campaign (the paper: 64, (256, 512, 512), 512,
# (512, 512, 256, 128)); see BUILD.md for the measured step times.
# 2.46 M parameters (3.5x the shipped model's 0.70 M): 1.27 s per step of
# 32 crops x 16 iterations against 0.86 s for the shipped widths and 11.7 s
# for twice these (9.8 M), measured under load.
# Training images whose GOOG codes the entropy coder's tables are fitted on
# at export (`goog.export`; setting ``goog_fit_images``, 0: raw bits).
GOOG_FIT_IMAGES = 100
GOOG_WIDTHS = {"encoder_conv": 32, "encoder_rnn": (64, 128, 128),
               "decoder_conv": 128, "decoder_rnn": (128, 128, 64, 32)}


@dataclasses.dataclass(frozen=True)
class Run:
  """One model of the campaign.

  Attributes:
    name: model name (``e2e-...`` or ``goog...``); also the folder name.
    family: "e2e" or "goog".
    minutes: training-time budget in minutes (total over sessions).
    max_steps: step budget (total over sessions).
    lmbda: E2E only, the rate-distortion trade-off.
    init_from: name of another run to warm-start from (E2E).
    learning_rate: Adam's step size.
    kwargs: further arguments of `e2e.train` / `goog.train`.
    decay_from: GOOG only, the fraction of the budget after which the rate
      decays (a cosine to 5 %, `training.fit`); None: constant.
  """
  name: str
  family: str
  minutes: float
  max_steps: int = 10_000_000
  lmbda: Optional[float] = None
  init_from: Optional[str] = None
  learning_rate: float = 1e-4
  kwargs: tuple = ()
  decay_from: Optional[float] = None


def e2e_name(lmbda: float) -> str:
  return f"e2e-l{lmbda:g}"


def default_plan(e2e_base_minutes: float = 480.0, e2e_minutes: float = 180.0,
                 goog_minutes: float = 360.0, num_filters: int = 128,
                 lambdas: Sequence[float] = E2E_LAMBDAS,
                 base_lambda: float = E2E_BASE_LAMBDA,
                 compute_dtype: str = "float32",
                 goog_widths: Optional[dict] = None,
                 goog_decay_from: Optional[float] = None,
                 goog_learning_rate: float = 5e-4) -> list:
  """The campaign: the E2E base model, the rest of the E2E family, GOOG.

  The base (``base_lambda``) trains from scratch; the other lambdas are
  warm-started in a chain: each lower lambda from the next higher one
  (0.002 from 0.005, 0.001 from 0.002), higher lambdas from the
  next lower one. GOOG (16 iterations) comes last, at Adam's
  `goog_learning_rate`; `goog_decay_from`: see `Run.decay_from`.
  """
  lambdas = sorted(set(lambdas) | {base_lambda})
  e2e_kwargs = (("num_filters", num_filters),
                ("compute_dtype", compute_dtype))
  runs = [Run(e2e_name(base_lambda), "e2e", e2e_base_minutes,
              lmbda=base_lambda, learning_rate=5e-4, kwargs=e2e_kwargs)]
  i = lambdas.index(base_lambda)
  lower = list(reversed(lambdas[:i]))
  higher = lambdas[i + 1:]
  for chain in (lower, higher):
    parent = base_lambda
    for lmbda in chain:
      runs.append(Run(e2e_name(lmbda), "e2e", e2e_minutes, lmbda=lmbda,
                      init_from=e2e_name(parent), learning_rate=1e-4,
                      kwargs=e2e_kwargs))
      parent = lmbda
  widths = dict(GOOG_WIDTHS if goog_widths is None else goog_widths)
  runs.append(Run("goog", "goog", goog_minutes,
                  learning_rate=goog_learning_rate,
                  kwargs=tuple(sorted(widths.items())),
                  decay_from=goog_decay_from))
  return runs


def _paths(root, run):
  base = os.path.join(root, run.name)
  return {"dir": base, "ckpt": os.path.join(base, "ckpt"),
          "model": os.path.join(base, "model", run.name),
          "status": os.path.join(base, "status.json")}


def run_status(root: str, run: Run) -> dict:
  """What is known about a run: ``state`` is "new", "partial" (has a
  checkpoint, budget not spent), "trained" (budget spent, not exported) or
  "done"; with ``step`` and ``seconds`` of the last finished session."""
  p = _paths(root, run)
  status = {}
  if os.path.isfile(p["status"]):
    try:
      with open(p["status"]) as f:
        status = json.load(f)
    except (OSError, json.JSONDecodeError):
      status = {}
  spent = bool(status) and (status.get("seconds", 0) >= 60.0 * run.minutes
                            or status.get("step", 0) >= run.max_steps)
  exported = os.path.isfile(os.path.join(p["model"], "saved_model.pb"))
  has_ckpt = os.path.isfile(os.path.join(p["ckpt"], "checkpoint"))
  if has_ckpt and not spent:
    status = {**status, **_checkpoint_progress(p["ckpt"])}
  if spent and exported:
    state = "done"
  elif spent:
    state = "trained"
  elif has_ckpt:
    state = "partial"
  else:
    state = "new"
  return {"state": state, **status}


def _checkpoint_progress(ckpt_dir) -> dict:
  """``step`` and ``seconds`` of the newest checkpoint ({} if unreadable)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    path = tf.train.latest_checkpoint(ckpt_dir)
    return {"step": int(tf.train.load_variable(
                path, "state/step/.ATTRIBUTES/VARIABLE_VALUE")),
            "seconds": float(tf.train.load_variable(
                path, "state/seconds/.ATTRIBUTES/VARIABLE_VALUE"))}
  except (tf.errors.OpError, ValueError, TypeError):
    return {}


def _export_atomically(export_fn, model, target):
  tmp = target + ".tmp"
  if os.path.isdir(tmp):
    shutil.rmtree(tmp)
  export_fn(model, tmp)
  old = target + ".old"
  if os.path.isdir(target):
    if os.path.isdir(old):
      shutil.rmtree(old)
    os.rename(target, old)
  os.rename(tmp, target)
  if os.path.isdir(old):
    shutil.rmtree(old)


def _train(run: Run, root: str, train_dir: str, validation_images,
           settings: dict, log: Callable[[str], None],
           warm_start: Optional[str] = None) -> dict:
  """Trains one run (resuming, or continuing its snapshot in `warm_start`
  when it has no checkpoint) and exports it atomically."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.baselines import e2e
  from tf_hbd.baselines import goog
  from tf_hbd.training import checkpoints
  # pylint: enable=g-import-not-at-top
  p = _paths(root, run)
  os.makedirs(p["dir"], exist_ok=True)
  tf.keras.backend.clear_session()
  kwargs = dict(run.kwargs)
  continue_from = None
  # Checkpoint files, not the state file (an unreadable one is set aside and
  # the newest intact checkpoint resumed; a snapshot must not win then).
  if not checkpoints.checkpoints_on_disk(p["ckpt"]):
    continue_from = snapshot_checkpoint(warm_start, run.name)
  if continue_from:
    _seed_logs(os.path.dirname(continue_from), p["ckpt"])
  common = dict(
      train_dir=train_dir, checkpoint_dir=p["ckpt"], export_dir=None,
      learning_rate=run.learning_rate, max_steps=run.max_steps,
      max_seconds=60.0 * run.minutes, seed=settings.get("seed", 0),
      log_every=settings.get("log_every", 200),
      checkpoint_every_s=settings.get("checkpoint_every_s", 300.0),
      sample_split=settings.get("sample_split", "train"),
      validation_images=validation_images,
      eval_every=settings.get("eval_every", 2000),
      continue_from=continue_from, log=log)
  if run.family == "e2e":
    init_from = _init_source(run, root, warm_start)
    export_fn = e2e.export
    result = e2e.train(
        lmbda=run.lmbda, init_from=init_from,
        patch_size=settings.get("e2e_patch_size", 128),
        batch_size=settings.get("e2e_batch_size", 8), **kwargs, **common)
  else:
    config = goog.GoogConfig(**kwargs)
    export_fn = _goog_export_fn(train_dir, settings.get("goog_fit_images",
                                                        GOOG_FIT_IMAGES))
    result = goog.train(
        config=config, patch_size=32,
        batch_size=settings.get("goog_batch_size", 32),
        iterations=settings.get("goog_iterations", 16),
        loss_norm=settings.get("goog_loss_norm", "l1"),
        loss_weights=settings.get("goog_loss_weights"),
        decay_from=run.decay_from, **common)
  # Export from the final checkpoint (a fresh model restored from it).
  model = _restore_for_export(run, p["ckpt"], kwargs)
  _export_atomically(export_fn, model, p["model"])
  status = {"name": run.name, "step": result["step"],
            "seconds": round(result["seconds"], 1),
            "budget_minutes": run.minutes, "max_steps": run.max_steps,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                          time.gmtime())}
  tmp = p["status"] + ".tmp"
  with open(tmp, "w") as f:
    json.dump(status, f)
  os.replace(tmp, p["status"])
  log(f"{run.name}: exported to {p['model']} ({status})")
  return status


def _new_model(run):
  """A freshly initialized model of `run` (its family and widths)."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.baselines import e2e
  from tf_hbd.baselines import goog
  # pylint: enable=g-import-not-at-top
  kwargs = dict(run.kwargs)
  if run.family == "e2e":
    return e2e.E2EModel(num_filters=kwargs.get("num_filters", 64),
                        lmbda=run.lmbda,
                        compute_dtype=kwargs.get("compute_dtype", "float32"))
  return goog.GoogModel(goog.GoogConfig(**kwargs))


def _goog_export_fn(train_dir, fit_images: int):
  """`goog.export` with entropy-coder tables fitted on the first
  `fit_images` training images (0: raw bits, no tables)."""
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  if not fit_images:
    return goog.export
  return lambda model, path: goog.export(
      model, path, fit_images=training.load_validation_images(
          train_dir, int(fit_images)))


def _restore_for_export(run, ckpt_dir, kwargs):
  del kwargs  # the run's own
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model = _new_model(run)
  tf.train.Checkpoint(model=model).restore(
      tf.train.latest_checkpoint(ckpt_dir)).expect_partial()
  return model


def _has_checkpoint(ckpt_dir) -> bool:
  return os.path.isfile(os.path.join(ckpt_dir, "checkpoint"))


def _init_source(run, root, warm_start):
  """Where a warm-started run's first weights come from: the parent's
  checkpoint folder under `root`, else the parent's snapshot in
  `warm_start`, else None (no parent, or nothing to start from)."""
  if not run.init_from:
    return None
  parent_ckpt = os.path.join(root, run.init_from, "ckpt")
  if _has_checkpoint(parent_ckpt) or not warm_start:
    return parent_ckpt
  if snapshot_checkpoint(warm_start, run.init_from):
    return os.path.join(warm_start, run.init_from)
  return parent_ckpt


def run_campaign(plan: Sequence[Run], root: str, train_dir: str,
                 val_dir: Optional[str], *, val_images: int = 8,
                 only: Optional[Sequence[str]] = None,
                 settings: Optional[dict] = None, dry_run: bool = False,
                 warm_start: Optional[str] = None,
                 log: Callable[[str], None] = print) -> list:
  """Trains every unfinished run of `plan` in order.

  Args:
    plan: the runs (see `default_plan`).
    root: the campaign folder.
    train_dir: training folder (train400); held-out sets are refused.
    val_dir: validation folder (bsd68) for the learning curves, or None.
    val_images: how many validation images.
    only: train only these run names (others are skipped).
    settings: overrides of e2e_patch_size (128), e2e_batch_size (8),
      goog_batch_size (32), goog_iterations (16, unrolled in training),
      goog_loss_norm ("l1") and goog_loss_weights (None: uniform; see
      `goog.iteration_weights`),
      eval_every (2000), checkpoint_every_s (300), log_every (200), seed
      (0), sample_split ("train").
    dry_run: only report each run's state.
    warm_start: a folder of snapshots (`snapshot`) from an earlier session:
      a run without a checkpoint under `root` continues from
      ``<warm_start>/<name>/`` if there is one (weights, step and seconds;
      fresh optimizer); a run with a checkpoint ignores it.
    log: progress lines.

  Returns:
    list of (name, state before, status after or None).
  """
  training.check_training_folder(train_dir)
  settings = dict(settings or {})
  validation = None
  out = []
  for run in plan:
    before = run_status(root, run)
    if only and run.name not in only:
      continue
    snap = (snapshot_checkpoint(warm_start, run.name)
            if before["state"] == "new" else None)
    log(f"{run.name}: {before['state']} ({before.get('step', 0)} steps, "
        f"{before.get('seconds', 0) / 3600.0:.2f} h of "
        f"{run.minutes / 60.0:.2f} h)"
        + (f", continues snapshot {snap}" if snap else ""))
    if dry_run or before["state"] == "done":
      out.append((run.name, before["state"], None))
      continue
    if (run.init_from and before["state"] == "new" and not snap
        and not _has_checkpoint(os.path.join(root, run.init_from, "ckpt"))
        and not snapshot_checkpoint(warm_start, run.init_from)):
      raise ValueError(f"{run.name} starts from {run.init_from}, which has "
                       f"no checkpoint yet; train it first")
    if validation is None and val_dir:
      validation = training.load_validation_images(val_dir, val_images)
    out.append((run.name, before["state"],
                _train(run, root, train_dir, validation, settings, log,
                       warm_start)))
  return out


def curve_markdown(root: str, run: Run, path: Optional[str] = None) -> str:
  """A run's learning curve (``curve.jsonl``) as a markdown table.

  Args:
    root: the campaign folder.
    run: the run.
    path: another ``curve.jsonl`` to read (e.g. a snapshot's); default:
      the run's under `root`.
  """
  path = path or os.path.join(_paths(root, run)["ckpt"], "curve.jsonl")
  records = {r["step"]: r for r in training.read_jsonl(path)}
  lines = [f"{run.name}:", "",
           "| step | hours | bpp | PSNR (dB) | MS-SSIM | JPEG PSNR at that "
           "bpp | vs JPEG (dB) |", "|---|---|---|---|---|---|---|"]
  for step in sorted(records):
    r = records[step]
    lines.append(f"| {step} | {r['hours']:.2f} | {r['bpp']:.4f} | "
                 f"{r['psnr']:.2f} | {r['ms_ssim']:.4f} | "
                 f"{r['jpeg_psnr']:.2f} | {r['vs_jpeg_db']:+.2f} |")
  return "\n".join(lines)


# Snapshots (`snapshot`): ``<out>/<name>/`` holds the checkpoint
# ``model.index`` + ``model.data-*`` (object graph of the training
# checkpoints without the optimizer: ``model/...``, ``state/step``,
# ``state/seconds``) and a ``checkpoint`` file naming it by a relative path,
# so `tf.train.latest_checkpoint` finds it wherever the folder is checked out.
SNAPSHOT_PREFIX = "model"
_SNAPSHOT_LOGS = ("curve.jsonl", "history.jsonl")


def snapshot_checkpoint(folder: Optional[str], name: str) -> Optional[str]:
  """The checkpoint of run `name` in a snapshot folder, or None (no folder,
  no snapshot of that run)."""
  if not folder:
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory = os.path.join(folder, name)
  if not os.path.isfile(os.path.join(directory, "checkpoint")):
    return None
  return tf.train.latest_checkpoint(directory)


def _restore_intact(run, ckpt_dir, log):
  """(model, TrainState, path) of the newest checkpoint in `ckpt_dir` that
  reads back completely (`checkpoints.restore_newest_intact`, read only: a
  training process may be writing or deleting checkpoints meanwhile), or
  None when none does."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.training import checkpoints
  # pylint: enable=g-import-not-at-top
  model, state = _new_model(run), training.TrainState()
  try:
    latest = tf.train.latest_checkpoint(ckpt_dir)
  except (tf.errors.OpError, ValueError):  # a torn state file
    latest = None
  try:
    path, _ = checkpoints.restore_newest_intact(
        tf.train.Checkpoint(state=state, model=model), ckpt_dir, latest,
        log=lambda line: log(f"{run.name}: {line}"), repair_state=False,
        expect_partial=True)
  except checkpoints.CheckpointError:
    return None
  return None if path is None else (model, state, path)


def _copy_records(src, dst, max_step):
  """Copies the records of a ``.jsonl`` file up to step `max_step`."""
  records = [r for r in training.read_jsonl(src)
             if r.get("step", 0) <= max_step]
  with open(dst, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)


def _seed_logs(snapshot_dir, ckpt_dir):
  """A warm-started run's curve and losses start as its snapshot's (so the
  curve continues over sessions); files the run already has are kept."""
  os.makedirs(ckpt_dir, exist_ok=True)
  for name in _SNAPSHOT_LOGS:
    src, dst = (os.path.join(snapshot_dir, name),
                os.path.join(ckpt_dir, name))
    if os.path.isfile(src) and not os.path.exists(dst):
      shutil.copyfile(src, dst)


def _bytes(prefix) -> int:
  """Bytes of a checkpoint's files (0 for files deleted meanwhile)."""
  total = 0
  for f in glob.glob(glob.escape(prefix) + ".*"):
    try:
      total += os.path.getsize(f)
    except OSError:
      pass
  return total


def _inside(path, folder) -> bool:
  path, folder = os.path.realpath(path), os.path.realpath(folder)
  return os.path.commonpath([path, folder]) == folder


def snapshot(plan: Sequence[Run], root: str, out_dir: str, *,
             command: str = "", train_dir: str = "train400",
             val_dir: str = "bsd68", val_images: int = 8,
             settings: Optional[dict] = None,
             only: Optional[Sequence[str]] = None,
             log: Callable[[str], None] = print) -> list:
  """Writes the committable state of every run that has a checkpoint.

  Nothing is trained and nothing under `root` is written; a run may be
  training meanwhile (a checkpoint being written or deleted is skipped for
  the next older intact one). For each run with a readable checkpoint,
  ``<out_dir>/<name>/`` (written in a temporary folder and renamed) holds:
  ``model.index`` / ``model.data-*`` + ``checkpoint`` (model variables, step
  and seconds; no optimizer state), ``curve.jsonl`` and ``history.jsonl`` up
  to that step, and ``MODEL.md``.

  Args:
    plan: the campaign's runs (as trained: same widths and lambdas).
    root: the campaign folder (only read).
    out_dir: the snapshot folder (e.g. ``campaigns/baselines``).
    command: the campaign's command line, for MODEL.md.
    train_dir, val_dir, val_images, settings: as given to `run_campaign`,
      for MODEL.md.
    only: only these run names.
    log: progress lines.

  Returns:
    list of dicts (one per snapshot): ``name``, ``step``, ``seconds``,
    ``source`` (the checkpoint read), ``bytes`` (the snapshot's checkpoint
    files), ``source_bytes`` (those of the checkpoint read), ``parameters``,
    ``files``, ``dir``.

  Raises:
    ValueError: `out_dir` is inside `root`.
  """
  if _inside(out_dir, root):
    raise ValueError(f"{out_dir} is inside the campaign folder {root}; "
                     f"snapshots go elsewhere (e.g. campaigns/baselines)")
  context = {"command": command, "train_dir": train_dir, "val_dir": val_dir,
             "val_images": val_images, "settings": dict(settings or {})}
  out = []
  for run in plan:
    ckpt_dir = _paths(root, run)["ckpt"]
    if (only and run.name not in only) or not os.path.isdir(ckpt_dir):
      continue
    restored = _restore_intact(run, ckpt_dir, log)
    if restored is None:
      log(f"{run.name}: no readable checkpoint in {ckpt_dir}; no snapshot")
      continue
    os.makedirs(out_dir, exist_ok=True)
    info = {"name": run.name, "dir": os.path.join(out_dir, run.name)}
    context["finished"] = _finished_budget(root, run, restored)
    _export_atomically(
        lambda _, tmp: info.update(_fill_snapshot(tmp, run, restored,
                                                  context)),
        None, info["dir"])
    log(f"{run.name}: snapshot of {info['source']} (step {info['step']}, "
        f"{info['seconds'] / 3600.0:.2f} h) in {info['dir']}, "
        f"{info['bytes']:,} bytes of weights (the checkpoint with the "
        f"optimizer: {info['source_bytes']:,})")
    out.append(info)
  return out


def _finished_budget(root, run, restored) -> Optional[float]:
  """Hours of the budget a finished session of `run` spent, if `restored`
  is that session's last checkpoint (status.json), else None."""
  path = _paths(root, run)["status"]
  try:
    with open(path) as f:
      status = json.load(f)
  except (OSError, json.JSONDecodeError):
    return None
  state = restored[1]
  if int(status.get("step", -1)) != int(state.step.numpy()):
    return None
  minutes = status.get("budget_minutes")
  return None if minutes is None else float(minutes) / 60.0


def _fill_snapshot(directory, run, restored, context) -> dict:
  """Writes one run's snapshot files into `directory` (new)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model, state, source = restored
  os.makedirs(directory)
  prefix = os.path.join(directory, SNAPSHOT_PREFIX)
  tf.train.Checkpoint(state=state, model=model).write(prefix)
  with open(os.path.join(directory, "checkpoint"), "w") as f:
    f.write(f'model_checkpoint_path: "{SNAPSHOT_PREFIX}"\n'
            f'all_model_checkpoint_paths: "{SNAPSHOT_PREFIX}"\n')
  step = int(state.step.numpy())
  for name in _SNAPSHOT_LOGS:
    _copy_records(os.path.join(os.path.dirname(source), name),
                  os.path.join(directory, name), step)
  files = sorted(f for f in os.listdir(directory)
                 if f.startswith(SNAPSHOT_PREFIX + "."))
  info = {"step": step, "seconds": float(state.seconds.numpy()),
          "source": source, "files": files,
          "bytes": sum(os.path.getsize(os.path.join(directory, f))
                       for f in files),
          "source_bytes": _bytes(source),
          "parameters": sum(v.shape.num_elements() for v in model.variables)}
  curve = curve_markdown("", run, os.path.join(directory, "curve.jsonl"))
  with open(os.path.join(directory, "MODEL.md"), "w") as f:
    f.write(_snapshot_markdown(run, info, context, curve))
  return info


def _architecture(run, settings) -> str:
  kwargs = dict(run.kwargs)
  if run.family == "e2e":
    return (f"E2E (Ballé et al. 2017, tensorflow-compression): "
            f"{kwargs.get('num_filters', 64)} filters, transforms computed "
            f"in {kwargs.get('compute_dtype', 'float32')}; λ = {run.lmbda:g} "
            f"(loss = bpp + λ · MSE on 0..255); "
            f"{settings.get('e2e_patch_size', 128)}² crops, batch "
            f"{settings.get('e2e_batch_size', 8)}")
  widths = ", ".join(f"{k} {v}" for k, v in sorted(kwargs.items()))
  return (f"GOOG (Toderici et al. 2017): widths {widths}; "
          f"{settings.get('goog_iterations', 16)} iterations unrolled in "
          f"training; loss: {_goog_loss(settings)}; 32² crops, batch "
          f"{settings.get('goog_batch_size', 32)}")


def _goog_loss(settings) -> str:
  """GOOG's training loss in words (for MODEL.md)."""
  norm = {"l1": "|r_t|", "l2": "r_t²"}.get(
      settings.get("goog_loss_norm", "l1"), "?")
  weights = settings.get("goog_loss_weights")
  if weights is None:
    return f"mean over iterations of the mean {norm}"
  if not isinstance(weights, str):
    weights = ",".join(f"{float(w):g}" for w in weights)
  return (f"mean {norm} weighted over iterations by {weights} (the last "
          "weight repeated, normalized to a sum of 1)")


def _snapshot_markdown(run, info, context, curve) -> str:
  """MODEL.md of a snapshot."""
  settings = context["settings"]
  start = (f"warm start from `{run.init_from}`" if run.init_from
           else "from scratch")
  written = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
  lines = [
      f"# {run.name}: campaign snapshot (not a shipped model)", "",
      "A snapshot of issue 13's baseline training campaign "
      "(`tf_hbd/baselines/campaign.py`), written while it trains by "
      "`scripts/baseline_campaign.py --snapshot`. It is **not a shipped "
      "model**: no SavedModel, not checked or measured on Kodak; it is the "
      "state the next session continues (`--warm_start`) and a record of "
      "the learning curve so far.", "",
      f"* Architecture: {_architecture(run, settings)}; "
      f"{info['parameters']:,} parameters (all variables).",
      f"* Training: {info['step']:,} steps, {info['seconds'] / 3600.0:.2f} h "
      f"of step time (totals over sessions); {start}; Adam "
      f"{run.learning_rate:g} (a session that continues a snapshot starts a "
      f"fresh Adam, its rate ramped over {training.WARMUP_STEPS:,} updates"
      + (f"; from {run.decay_from:.0%} of the budget on, a cosine down to "
         f"{training.DECAY_FINAL:.0%} of it at the end"
         if run.decay_from is not None else "") + "); "
      + (f"finished: its budget was {context['finished']:.2f} h"
         if context.get("finished") is not None else
         f"budget {run.minutes / 60.0:.2f} h"
         + (f" or {run.max_steps:,} steps" if run.max_steps < 10_000_000
            else "")) + ".",
      f"* Data: `{os.path.basename(os.path.normpath(context['train_dir']))}` "
      "plus the sample photographs' train split "
      "(`tf_hbd.data.sample_images`), random crops with horizontal flips; "
      f"validation (the curve below): the first {context['val_images']} "
      f"images of `{os.path.basename(os.path.normpath(context['val_dir']))}`"
      f", coded for real every {settings.get('eval_every', 2000):,} steps.",
      f"* Campaign command: `{context['command'] or '(not recorded)'}`; "
      "a new machine continues with `--warm_start=<this folder's parent>`.",
      f"* Files: {', '.join(f'`{f}`' for f in info['files'])} = "
      f"**{info['bytes']:,} bytes** (model variables, step and seconds; no "
      "optimizer state), `checkpoint`, `curve.jsonl` and `history.jsonl` up "
      "to this step.",
      f"* Source: `{info['source']}`, read {written}.", "",
      "## Learning curve", "", curve, ""]
  if len(curve.splitlines()) <= 4:
    lines.append("(no validation point yet: one every "
                 f"{settings.get('eval_every', 2000):,} steps)\n")
  return "\n".join(lines)
