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
"""

import dataclasses
import json
import os
import shutil
import time
from typing import Callable, Optional, Sequence

from tf_hbd.baselines import training

__all__ = ["Run", "E2E_LAMBDAS", "E2E_BASE_LAMBDA", "default_plan",
           "run_campaign", "run_status", "curve_markdown", "GOOG_WIDTHS"]

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
  """
  name: str
  family: str
  minutes: float
  max_steps: int = 10_000_000
  lmbda: Optional[float] = None
  init_from: Optional[str] = None
  learning_rate: float = 1e-4
  kwargs: tuple = ()


def e2e_name(lmbda: float) -> str:
  return f"e2e-l{lmbda:g}"


def default_plan(e2e_base_minutes: float = 480.0, e2e_minutes: float = 180.0,
                 goog_minutes: float = 360.0, num_filters: int = 128,
                 lambdas: Sequence[float] = E2E_LAMBDAS,
                 base_lambda: float = E2E_BASE_LAMBDA,
                 compute_dtype: str = "float32",
                 goog_widths: Optional[dict] = None) -> list:
  """The campaign: the E2E base model, the rest of the E2E family, GOOG.

  The base (``base_lambda``) trains from scratch; the other lambdas are
  warm-started in a chain: each lower lambda from the next higher one
  (0.002 from 0.005, 0.001 from 0.002), higher lambdas from the
  next lower one. GOOG (16 iterations) comes last.
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
  runs.append(Run("goog", "goog", goog_minutes, learning_rate=5e-4,
                  kwargs=tuple(sorted(widths.items()))))
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
           settings: dict, log: Callable[[str], None]) -> dict:
  """Trains one run (resuming) and exports it atomically."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.baselines import e2e
  from tf_hbd.baselines import goog
  # pylint: enable=g-import-not-at-top
  p = _paths(root, run)
  os.makedirs(p["dir"], exist_ok=True)
  tf.keras.backend.clear_session()
  kwargs = dict(run.kwargs)
  common = dict(
      train_dir=train_dir, checkpoint_dir=p["ckpt"], export_dir=None,
      learning_rate=run.learning_rate, max_steps=run.max_steps,
      max_seconds=60.0 * run.minutes, seed=settings.get("seed", 0),
      log_every=settings.get("log_every", 200),
      checkpoint_every_s=settings.get("checkpoint_every_s", 300.0),
      sample_split=settings.get("sample_split", "train"),
      validation_images=validation_images,
      eval_every=settings.get("eval_every", 2000), log=log)
  if run.family == "e2e":
    init_from = None
    if run.init_from:
      init_from = os.path.join(root, run.init_from, "ckpt")
    export_fn = e2e.export
    result = e2e.train(
        lmbda=run.lmbda, init_from=init_from,
        patch_size=settings.get("e2e_patch_size", 128),
        batch_size=settings.get("e2e_batch_size", 8), **kwargs, **common)
  else:
    config = goog.GoogConfig(**kwargs)
    export_fn = goog.export
    result = goog.train(
        config=config, patch_size=32,
        batch_size=settings.get("goog_batch_size", 32),
        iterations=settings.get("goog_iterations", 16), **common)
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


def _restore_for_export(run, ckpt_dir, kwargs):
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.baselines import e2e
  from tf_hbd.baselines import goog
  # pylint: enable=g-import-not-at-top
  if run.family == "e2e":
    model = e2e.E2EModel(num_filters=kwargs.get("num_filters", 64),
                         lmbda=run.lmbda,
                         compute_dtype=kwargs.get("compute_dtype", "float32"))
  else:
    model = goog.GoogModel(goog.GoogConfig(**kwargs))
  tf.train.Checkpoint(model=model).restore(
      tf.train.latest_checkpoint(ckpt_dir)).expect_partial()
  return model


def run_campaign(plan: Sequence[Run], root: str, train_dir: str,
                 val_dir: Optional[str], *, val_images: int = 8,
                 only: Optional[Sequence[str]] = None,
                 settings: Optional[dict] = None, dry_run: bool = False,
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
      eval_every (2000), checkpoint_every_s (300), log_every (200), seed
      (0), sample_split ("train").
    dry_run: only report each run's state.
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
    log(f"{run.name}: {before['state']} ({before.get('step', 0)} steps, "
        f"{before.get('seconds', 0) / 3600.0:.2f} h of "
        f"{run.minutes / 60.0:.2f} h)")
    if dry_run or before["state"] == "done":
      out.append((run.name, before["state"], None))
      continue
    if run.init_from and before["state"] == "new":
      parent = [r for r in plan if r.name == run.init_from]
      if not parent or run_status(root, parent[0])["state"] == "new":
        raise ValueError(f"{run.name} starts from {run.init_from}, which has "
                         f"no checkpoint yet; train it first")
    if validation is None and val_dir:
      validation = training.load_validation_images(val_dir, val_images)
    out.append((run.name, before["state"],
                _train(run, root, train_dir, validation, settings, log)))
  return out


def curve_markdown(root: str, run: Run) -> str:
  """A run's learning curve (``curve.jsonl``) as a markdown table."""
  path = os.path.join(_paths(root, run)["ckpt"], "curve.jsonl")
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
