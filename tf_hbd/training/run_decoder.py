"""The decoder of a training run, rebuilt from its settings and checkpoints.

A training run (`tf_hbd.training.main`) writes one SavedModel, the serving
export ``<model_dir>/serving``; the decoder's weights stay in its
checkpoints, the source of re-exports (``scripts/export.py``), calibration
and evaluation:

* ``final``: the newest intact checkpoint of ``<model_dir>/checkpoints``
  (at the end of a finished run, its last batch); with ``--ema`` the weight
  average is put into the decoder, as validation and the serving export do;
* ``best``: ``<model_dir>/checkpoints/best/ckpt-<epoch>``, the weights
  (averaged with ``--ema``) of the best validation epoch so far, which
  ``--export_best`` keeps while the run goes on (`tf_hbd.training.trainer`).

`load` builds the model the run trained with `build_algorithm` (the
function the training entry point uses) from the run's `RunConfig` (the
flags in ``log.json``) and its ``decoder`` record (patch size and
codec-setting size, which the training data fixed), then restores the
weights. The same weights give the same serving export, pixel for pixel.

Run directories written before this layout hold Keras decoder SavedModels
instead (``export/``: the final weights; ``best/``): `load` reads ``best/``
when the run has no best checkpoint, and ``export/`` when the log has no
``decoder`` record.

  from tf_hbd.training import run_decoder
  model, where = run_decoder.load("runs/bptt", "best")
"""

import dataclasses
import os
from typing import Optional, Tuple

import tensorflow as tf

from tf_hbd import errors
from tf_hbd.training import checkpoints as checkpoints_lib
from tf_hbd.training import config as config_lib

__all__ = ["SOURCES", "LEGACY_DIRS", "RunDecoderError", "best_dir",
           "build_algorithm", "run_config", "decoder_inputs", "rebuild",
           "load", "init_source"]

# The decoders of a run directory: the final weights and the best
# validation epoch's (--export_best).
SOURCES = ("final", "best")
# Where runs of earlier versions kept them (Keras decoder SavedModels).
LEGACY_DIRS = {"final": "export", "best": "best"}


class RunDecoderError(errors.HbdError):
  """The run directory holds no decoder of the kind asked for."""


def best_dir(model_dir: str) -> str:
  """The folder of the best epoch's checkpoint (``--export_best``)."""
  return os.path.join(model_dir, "checkpoints", "best")


def build_algorithm(cfg: config_lib.RunConfig, patch_size: int,
                    setting_size: int = 0):
  """The decoder and learning algorithm of a run (fresh weights).

  Build under ``strategy.scope()`` to place the variables on replicas.

  Args:
    cfg: the run's settings.
    patch_size: patch side d of the training data.
    setting_size: codec-setting features of the training data (used when
      ``cfg.setting_input``).

  Returns:
    (decoder, algorithm); ``algorithm.model`` is what the run trains.
  """
  from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import algorithms  # pylint: disable=g-import-not-at-top
  options = {"tied": cfg.tied} if cfg.cell in ("lstm", "gru") else {}
  decoder = decoder_lib.build_decoder(
      cfg.cell, units=cfg.units, patch_size=patch_size, K=cfg.K,
      sne=cfg.sne, seed=cfg.seed, center_inputs=cfg.center_inputs,
      boundary=cfg.boundary, cell_options=options,
      setting_size=setting_size if cfg.setting_input else 0,
      matmul_dtype=None if cfg.precision == "float32" else cfg.precision)
  algo = algorithms.make_algorithm(
      cfg.algo, decoder, K=cfg.K, alpha=cfg.alpha, loss_form=cfg.loss_form,
      loss_norm=cfg.loss_norm, loss_norm_eps=cfg.loss_norm_eps,
      loss_norm_scope=cfg.loss_norm_scope,
      **algorithms.options_from_flags(cfg.algo, dataclasses.asdict(cfg)))
  return decoder, algo


def run_config(log: dict) -> config_lib.RunConfig:
  """The `RunConfig` of a run's log (flags of other versions ignored)."""
  names = set(config_lib.flag_names())
  return config_lib.RunConfig(**{k: v for k, v in log.get("flags", {}).items()
                                 if k in names})


def decoder_inputs(log: dict) -> Tuple[int, int]:
  """(patch size, setting size) of a run's decoder.

  From the log's ``decoder`` record; logs without one (earlier versions) of
  runs on in-memory data (sample, folder:, recompress:) give them by the
  rules of `tf_hbd.data.train_inputs`.

  Raises:
    RunDecoderError: neither is possible (a TFDS dataset, no record).
  """
  record = log.get("decoder")
  if record:
    return int(record["patch_size"]), int(record.get("setting_size", 0))
  cfg = run_config(log)
  if not (cfg.dataset == "sample"
          or cfg.dataset.startswith(("folder:", "recompress:"))):
    raise RunDecoderError(
        f"the run's log has no decoder record and its dataset "
        f"{cfg.dataset!r} does not tell the patch size")
  from tf_hbd.codecs import codec_setting  # pylint: disable=g-import-not-at-top
  from tf_hbd.data import train_inputs  # pylint: disable=g-import-not-at-top
  d = cfg.patch_size or train_inputs.DEFAULT_PATCH_SIZE[cfg.codec]
  return int(d), codec_setting.SIZE[cfg.codec] if cfg.setting_input else 0


def rebuild(log: dict):
  """The model a run trained (`build_algorithm`), with fresh weights."""
  patch_size, setting_size = decoder_inputs(log)
  _, algo = build_algorithm(run_config(log), patch_size, setting_size)
  return algo.model


def _restore(model, directory: str, average_decay: float, written: bool,
             printer) -> Optional[str]:
  """Restores the newest intact checkpoint of `directory` into `model` (and
  the weight average into its variables); its prefix, None if none."""
  from tf_hbd.training import trainer  # pylint: disable=g-import-not-at-top
  items = {"model": model}
  if average_decay:
    items["average"] = trainer.WeightAverage(model.trainable_variables,
                                             average_decay)
  prefix, _ = checkpoints_lib.restore_newest_intact(
      tf.train.Checkpoint(**items), directory,
      checkpoints_lib.readable_latest(directory), log=printer,
      repair_state=False, expect_partial=True, written=written)
  if prefix and average_decay:
    for avg, v in zip(items["average"].averages, model.trainable_variables):
      v.assign(avg)
  return prefix


def _legacy(model_dir: str, source: str):
  """The Keras SavedModel of an earlier version's run dir, or None."""
  path = os.path.join(model_dir, LEGACY_DIRS[source])
  if not os.path.isfile(os.path.join(path, "saved_model.pb")):
    return None
  from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import algorithms  # pylint: disable=g-import-not-at-top,unused-import (registers SAB)
  return decoder_lib.load_decoder(path), path


def load(model_dir: str, source: str = "final", log: Optional[dict] = None,
         printer=checkpoints_lib.warn):
  """A run's decoder with the weights of `source` (see module docstring).

  Args:
    model_dir: the run directory (``--model_dir`` of the training run).
    source: "final" or "best" (`SOURCES`).
    log: its ``log.json`` (read when None).
    printer: where warnings on skipped damaged checkpoints go (default:
      stderr).

  Returns:
    (model, where the weights came from: a checkpoint prefix or, for runs
    of earlier versions, a SavedModel folder).

  Raises:
    RunDecoderError: no such decoder in `model_dir`.
  """
  if source not in SOURCES:
    raise ValueError(f"unknown source {source!r}; choose from {SOURCES}")
  if log is None:
    from tf_hbd.training import exports  # pylint: disable=g-import-not-at-top
    log = exports.read_log(model_dir)
  directory = (best_dir(model_dir) if source == "best"
               else os.path.join(model_dir, "checkpoints"))
  has_checkpoint = bool(checkpoints_lib.checkpoints_on_disk(directory))
  # An earlier version's final export/ is its final weights as exported.
  if not has_checkpoint or (source == "final" and not log.get("decoder")):
    legacy = _legacy(model_dir, source)
    if legacy is not None:
      return legacy
  if not has_checkpoint:
    raise RunDecoderError(
        f"{model_dir} has no {source} decoder: no checkpoint in {directory}"
        + (" (train with --export_best to keep one)"
           if source == "best" else ""))
  model = rebuild(log)
  # "best" holds the averaged weights already (`Trainer._save_best`).
  decay = float(run_config(log).ema) if source == "final" else 0.0
  prefix = _restore(model, directory, decay, source == "best", printer)
  return model, prefix


def init_source(path: str, printer=print):
  """What ``--init_from=path`` starts from: a run dir's decoder (its best
  checkpoint, else its final one), else `path` itself (a SavedModel)."""
  if (os.path.isfile(os.path.join(path, "log.json"))
      and not os.path.isfile(os.path.join(path, "saved_model.pb"))):
    which = ("best" if checkpoints_lib.checkpoints_on_disk(best_dir(path))
             or os.path.isdir(os.path.join(path, LEGACY_DIRS["best"]))
             else "final")
    model, where = load(path, which)
    printer(f"the {which} decoder of the run {path}: {where}")
    return model
  return path
