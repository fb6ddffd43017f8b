"""Trained baseline models where training left them: campaign folders.

`tf_hbd.baselines.campaign` leaves its models in two kinds of folders, and
this module finds them and turns them into SavedModels that the registry
(`tf_hbd.baselines.use`), hence the one evaluator
(`tf_hbd.evaluation.systems`) and `scripts/rd_baselines.py`, can run, without
copying anything into the package:

* an **export**: a SavedModel folder (``<root>/<name>/model/<name>/``), or a
  run folder ``<root>/<name>/`` that holds one (its checkpoints in
  ``ckpt/`` and ``status.json`` give steps and hours);
* a **snapshot** (``campaigns/baselines/<name>/``, `campaign.snapshot`):
  the model's variables, step and seconds in a checkpoint named by
  ``checkpoint``, ``curve.jsonl`` and ``MODEL.md``; it is exported here
  (`saved_model`) to a SavedModel in a work folder.

A folder holding several of these (a campaign root, ``campaigns/baselines``)
stands for all of them. The model's name (its folder's name, or ``LABEL=``
in `find`) is written into every file it makes, and its family is the
name's first part (``e2e``, ``goog``).
"""

import dataclasses
import json
import os
import re
import sys
from typing import Callable, List, Optional

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.data import roots

__all__ = ["ModelFolder", "find", "find_all", "saved_model", "build_model",
           "progress", "stored_weights", "check_fit_dir"]


@dataclasses.dataclass(frozen=True)
class ModelFolder:
  """A trained model found in a folder.

  Attributes:
    name: the model name (written into its files).
    family: "e2e" or "goog".
    folder: the folder it was found in.
    export: its SavedModel folder, or None.
    checkpoint: its checkpoint prefix (a snapshot's, or the run's newest),
      or None.
    curve: its ``curve.jsonl`` (validation against steps and hours), or
      None.
    notes: the snapshot's ``MODEL.md``, or None.
  """
  name: str
  family: str
  folder: str
  export: Optional[str] = None
  checkpoint: Optional[str] = None
  curve: Optional[str] = None
  notes: Optional[str] = None


def _file(*parts) -> Optional[str]:
  path = os.path.join(*parts)
  return path if os.path.isfile(path) else None


def _latest(directory) -> Optional[str]:
  if not os.path.isfile(os.path.join(directory, "checkpoint")):
    return None
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.latest_checkpoint(directory)


def _exported_from(run: str) -> Optional[str]:
  """The checkpoint a campaign run's export was written from (the step in
  its ``status.json``), or None: a run that trains on has newer ones."""
  status = _file(run, "status.json")
  if not status:
    return None
  with open(status, encoding="utf-8") as f:
    step = json.load(f).get("step")
  prefix = os.path.join(run, "ckpt", f"ckpt-{step}")
  return prefix if _file(prefix + ".index") else None


def _one(path: str, name: str) -> Optional[ModelFolder]:
  """The model in `path` itself (not its subfolders), or None."""
  parent = os.path.dirname(path)
  if _file(path, "saved_model.pb"):
    # <root>/<run>/model/<run>: the run's checkpoints are two levels up.
    run = (os.path.dirname(parent)
           if os.path.basename(parent) == "model" else None)
    ckpt = os.path.join(run, "ckpt") if run else None
    return ModelFolder(name, baselines.family_of(name), path, export=path,
                       checkpoint=_exported_from(run) if run else None,
                       curve=_file(ckpt, "curve.jsonl") if ckpt else None)
  export = os.path.join(path, "model", os.path.basename(path))
  if _file(export, "saved_model.pb"):
    found = _one(export, name)
    return dataclasses.replace(found, folder=path)
  if _file(path, "checkpoint") and (_file(path, "model.index")):
    return ModelFolder(name, baselines.family_of(name), path,
                       checkpoint=_latest(path),
                       curve=_file(path, "curve.jsonl"),
                       notes=_file(path, "MODEL.md"))
  return None


def find(spec: str) -> List[ModelFolder]:
  """The models in ``[LABEL=]PATH``: PATH's own, else its subfolders'.

  A campaign run that has neither an export nor a snapshot yet (only
  training checkpoints) is not found: snapshot it first
  (``scripts/baseline_campaign.py --snapshot``).

  Args:
    spec: a folder (see the module docstring), optionally prefixed by the
      model name to use (one model only).

  Raises:
    HbdError: no model there, a name that is not ``e2e...`` / ``goog...``,
      or a label for a folder of several models.
  """
  label, path = roots.split_label(spec)
  path = os.path.normpath(os.path.expanduser(path))
  if label:
    baselines.family_of(label)  # raises for a name of no family
  name = label or os.path.basename(path)
  found = (_one(path, name) if name.split("-", 1)[0] in baselines.FAMILIES
           else None)
  if found:
    return [found]
  models = []
  if os.path.isdir(path):
    for child in sorted(os.listdir(path)):
      if child.split("-", 1)[0] in baselines.FAMILIES:
        one = _one(os.path.join(path, child), child)
        models += [one] if one else []
  if not models:
    raise errors.HbdError(
        f"no trained baseline model in {path!r}: expected a SavedModel, a "
        "campaign run folder with model/<name>/, a snapshot (checkpoint + "
        "model.index) or a folder of these, named e2e-... or goog...")
  if label and len(models) > 1:
    raise errors.HbdError(f"{spec!r}: a label names one model, {path!r} "
                          f"holds {len(models)}")
  if label:
    models = [dataclasses.replace(models[0], name=label)]
  return models


def find_all(specs) -> List[ModelFolder]:
  """`find` over several specs; names must be unique."""
  models = [m for spec in specs for m in find(spec)]
  names = [m.name for m in models]
  twice = sorted({n for n in names if names.count(n) > 1})
  if twice:
    raise errors.HbdError(f"model names given twice: {twice} (name them "
                          "with LABEL=PATH)")
  return models


def progress(model: ModelFolder) -> dict:
  """``step`` and ``seconds`` of training (totals over sessions), from the
  checkpoint, else the run's ``status.json``; {} when unknown."""
  if model.checkpoint:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    try:
      return {"step": int(tf.train.load_variable(
                  model.checkpoint, "state/step/.ATTRIBUTES/VARIABLE_VALUE")),
              "seconds": float(tf.train.load_variable(
                  model.checkpoint,
                  "state/seconds/.ATTRIBUTES/VARIABLE_VALUE"))}
    except (tf.errors.OpError, ValueError):
      pass
  runs = [model.folder]
  if model.export:  # <root>/<run>/model/<run>
    runs.append(os.path.dirname(os.path.dirname(model.export)))
  status = next(filter(None, (_file(d, "status.json") for d in runs)), None)
  if status:
    with open(status) as f:
      doc = json.load(f)
    return {k: doc[k] for k in ("step", "seconds") if k in doc}
  return {}


def _lambda_of(name: str) -> float:
  match = re.search(r"-l([0-9.]+(?:e-?[0-9]+)?)", name)
  return float(match.group(1)) if match else 0.0


def build_model(model: ModelFolder):
  """The Keras model of a checkpoint, restored (all its variables).

  E2E: the width is read from the checkpoint, lambda from the name
  (``e2e-l0.005``; only recorded in the export). GOOG: the campaign's
  widths (`campaign.GOOG_WIDTHS`).
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from tf_hbd.baselines import campaign
  from tf_hbd.baselines import e2e
  from tf_hbd.baselines import goog
  # pylint: enable=g-import-not-at-top
  if not model.checkpoint:
    raise errors.HbdError(f"{model.name}: no checkpoint in {model.folder}")
  if model.family == "e2e":
    width = tf.train.load_variable(
        model.checkpoint, "model/analysis/layer_with_weights-0/"
        "_bias_parameter/.ATTRIBUTES/VARIABLE_VALUE").shape[0]
    keras_model = e2e.E2EModel(num_filters=width,
                               lmbda=_lambda_of(model.name))
  else:
    keras_model = goog.GoogModel(goog.GoogConfig(**campaign.GOOG_WIDTHS))
  status = tf.train.Checkpoint(model=keras_model).read(model.checkpoint)
  status.expect_partial().assert_existing_objects_matched()
  return keras_model


def saved_model(model: ModelFolder, work_dir: str,
                weights: str = "float32", fit_dir: Optional[str] = None,
                max_fit_images: int = 400,
                log: Optional[Callable[[str], None]] = None) -> str:
  """A SavedModel folder of `model`, named by its name.

  Its export when it has one that stores `weights` (and, for GOOG with
  `fit_dir`, bit tables), or has no checkpoint to export again (then as it
  is; see `stored_weights`); else its checkpoint exported (`e2e.export` /
  `goog.export`) to ``<work_dir>/<weights>[-tables]/<name>/`` (reused if
  already there: give each evaluation a fresh `work_dir`).

  Args:
    model: from `find`.
    work_dir: where exports of checkpoints go.
    weights: "float32" or "float16" (`e2e.stored_twin`,
      `goog.stored_twin`).
    fit_dir: GOOG: the training images to fit the entropy coder's tables
      on (`goog.export`; a held-out folder, kodak or bsd68, is refused);
      None: an export of the checkpoint has no tables (raw bits; a warning
      goes to `log`). Ignored for E2E.
    max_fit_images: GOOG: at most this many images of `fit_dir`.
    log: where the no-tables warning goes (None: standard error).

  Raises:
    HbdError: a held-out `fit_dir`, or one without images.
  """
  from tf_hbd.baselines import e2e  # pylint: disable=g-import-not-at-top
  fit_dir = fit_dir if model.family == "goog" else None
  if fit_dir:
    check_fit_dir(fit_dir)
  if model.export and (_export_fits(model.export, weights, fit_dir) or
                       not model.checkpoint):
    return model.export
  kind = weights + ("-tables" if fit_dir else "")
  path = os.path.join(work_dir, kind, model.name)
  if _file(path, "saved_model.pb"):
    return path
  keras_model = build_model(model)
  if model.family == "e2e":
    e2e.export(keras_model, path + ".tmp", weights=weights)
  else:
    _export_goog(keras_model, path + ".tmp", weights, fit_dir,
                 max_fit_images, log, model.name)
  os.rename(path + ".tmp", path)
  return path


def check_fit_dir(fit_dir: str):
  """Raises `HbdError` unless `fit_dir` is a folder fit for training."""
  from tf_hbd.baselines import training  # pylint: disable=g-import-not-at-top
  try:
    training.check_training_folder(fit_dir)
  except ValueError as e:
    raise errors.HbdError(f"--fit_dir {e}") from None
  if not os.path.isdir(fit_dir):
    raise errors.HbdError(f"--fit_dir {fit_dir}: no such folder; give the "
                          "training images (train400)")


def _export_fits(export: str, weights: str, fit_dir) -> bool:
  """Whether an existing export stores `weights` (and tables if asked)."""
  if stored_weights(export) != weights:
    return False
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  return not fit_dir or goog.bit_source_of(export) is not None


def _export_goog(keras_model, path, weights, fit_dir, max_fit_images, log,
                 name):
  """`goog.export` with tables fitted on `fit_dir`, or none (warned)."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.baselines import goog
  from tf_hbd.baselines import training
  # pylint: enable=g-import-not-at-top
  if not fit_dir:
    (log or (lambda line: print(line, file=sys.stderr)))(
        f"warning: {name}: exported without entropy-coder tables (its files "
        "carry the raw bits); give the training folder (--fit_dir) to fit "
        "them")
    goog.export(keras_model, path, weights=weights)
    return
  try:
    fit = training.load_validation_images(fit_dir, max_fit_images)
  except (errors.HbdError, OSError, ValueError) as e:
    raise errors.HbdError(f"--fit_dir {fit_dir}: {e}") from None
  goog.export(keras_model, path, fit_images=fit, weights=weights,
              fit_source=f"{len(fit)} images of {os.path.normpath(fit_dir)}")


def stored_weights(saved_model_dir: str) -> str:
  """"float16" if a SavedModel stores any variable in float16 (an E2E
  or GOOG export of a `stored_twin`), else "float32"."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  try:
    reader = tf.train.load_checkpoint(
        os.path.join(saved_model_dir, "variables", "variables"))
  except (tf.errors.OpError, ValueError):
    return "float32"
  dtypes = reader.get_variable_to_dtype_map().values()
  return "float16" if tf.float16 in dtypes else "float32"
