"""Trains the HBD decoder with BPTT, SAB, RTRL or UORO: the training entry point.

  python -m tf_hbd.training --algo=bptt --model_dir=/tmp/hbd_bptt
  hbd-train --algo=uoro --units=64 --dataset=folder:$TF_HBD_DATA/train400 \
      --val_images=$TF_HBD_DATA/bsd68 --val_quality=20 --model_dir=/tmp/hbd_uoro

(``python scripts/train.py ...`` in a checkout is the same program.)

The flags are the fields of `tf_hbd.training.config.RunConfig` (defaults and
help there); ``--config=tiny|cpu|study|paper`` starts from a named
configuration whose fields the flags given override.

Progress lines, TensorBoard summaries (<model_dir>/tensorboard), the per-epoch
log (<model_dir>/log.json, metrics.csv), checkpoints (rerun the same command
to resume exactly; --export_best also keeps the best epoch's weights in
<model_dir>/checkpoints/best) and, at the end, the run's one SavedModel: the
serving export <model_dir>/serving (tf_hbd.training.exports). The checkpoints
are the source of re-exports (scripts/export.py, tf_hbd.training.run_decoder).
See BUILD.md, "Training algorithms".

Several GPUs or machines (BUILD.md, "Distributed training"): --strategy=
mirrored (one machine) or multi_worker (one process per machine, cluster in
TF_CONFIG; the same command on every worker, model_dir on shared storage);
--batch_size is then the global batch, split across the replicas.
"""

import dataclasses
import os
import sys

from tf_hbd import errors
from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())
# Ctrl-C while TensorFlow loads: one line, exit 130 (tf_hbd.errors).
_imported = errors.interrupt_exits_while_importing("train.py")
try:  # released even when an import fails (the handler must not stay)
  # pylint: disable=g-import-not-at-top,wrong-import-position
  from absl import app
  from absl import flags
  import tensorflow as tf

  from tf_hbd.training import checkpoints
  from tf_hbd.training import config as config_lib
  from tf_hbd.model import decoder as decoder_lib
  from tf_hbd.training import distributed
  from tf_hbd.training import exports
  from tf_hbd.training import flag_checks
  from tf_hbd.training import run_decoder
  from tf_hbd.data import roots
  from tf_hbd.data import train_inputs
  from tf_hbd.training import trainer as training
finally:
  _imported()

__all__ = ["main", "run", "settings"]

# One flag per field of tf_hbd.training.config.RunConfig (defaults and help
# live there); --config picks the configuration the given flags override.
_FLAGS = config_lib.define_flags(module_name=__name__)
_CONFIG = flags.DEFINE_enum(
    "config", None, list(config_lib.CONFIGS), "Start from this named "
    "configuration (tf_hbd.training.config; {data} in its paths is "
    "--data_root); the flags given override its fields. Unset: the "
    "defaults listed here.")
_DATA_ROOT = flags.DEFINE_string(
    "data_root", None, "--config: the folder of the data sets (train400, "
    "bsd68, kodak); default: $TF_HBD_DATA.")
flags.mark_flag_as_required("model_dir")


def settings():
  """The run's `config.RunConfig`: --config (or the defaults) overridden by
  the flags given."""
  if _CONFIG.value is None:
    return config_lib.from_flag_values(flags.FLAGS)
  base = config_lib.resolve(config_lib.CONFIGS[_CONFIG.value],
                            roots.data_root(_DATA_ROOT.value))
  return config_lib.from_flag_values(flags.FLAGS, base)


def _recompress_config(cfg):
  from tf_hbd.data import recompress  # pylint: disable=g-import-not-at-top
  config = {"crop": cfg.crop, "strategy": cfg.boundary,
            "synthetic_fraction": cfg.synthetic_fraction,
            "tone_fraction": cfg.tone_fraction,
            "grid_offset": cfg.grid_offset,
            "codec_error": (cfg.loss_norm != "none"
                            and cfg.loss_norm_scope == "image")}
  if cfg.jpeg_qualities:
    config["quality_mixture"] = recompress.parse_mixture(cfg.jpeg_qualities)
  if cfg.jp2_bpp:
    config["bpp_range"] = recompress.parse_bpp_range(cfg.jp2_bpp)
  return config


def main(argv):
  """Checks the flags before any data is built; one-line errors, exit codes
  (tf_hbd.training.flag_checks)."""
  try:
    cfg = settings()
  except errors.UsageError as e:  # --config naming a data root not given
    print(f"train.py: error: {e}", file=sys.stderr)
    return flag_checks.EXIT_USAGE
  quiet.quiet_tensorflow(cfg.verbose)
  return flag_checks.guarded_main(
      lambda argv: _train(cfg), argv, dataclasses.asdict(cfg),
      hint=f"rerun the same command to resume from the last checkpoint in "
      f"{cfg.model_dir}/checkpoints")


def _make_strategy(cfg):
  """The tf.distribute strategy (first: a multi-worker strategy must exist
  before other TF calls) and whether this task is the chief."""
  strategy = distributed.make_strategy(
      cfg.strategy, devices=cfg.devices,
      num_cpu_devices=cfg.num_cpu_devices, communication=cfg.communication,
      timeout_s=cfg.collective_timeout)
  chief = distributed.is_chief(strategy)
  if cfg.strategy != "default":
    task_type, task_id = distributed.worker_task(strategy)
    print(f"strategy: {cfg.strategy}, {strategy.num_replicas_in_sync} "
          f"replicas, task {task_type or 'local'}:{task_id}"
          f"{' (chief)' if chief else ''}, global batch {cfg.batch_size}")
  return strategy, chief


def _training_stream(cfg):
  # Every random choice is seeded explicitly (weights, data order, UORO
  # signs); the TF global seed stays unset (the data pipeline's per-epoch
  # shuffle seeds are tensors, which a global seed does not accept).
  stream = train_inputs.training_stream(
      cfg.dataset, batch_size=cfg.batch_size, seed=cfg.seed,
      codec=cfg.codec, patch_size=cfg.patch_size or None, split=cfg.split,
      data_dir=cfg.data_dir, max_side=cfg.train_max_side or None,
      limit=cfg.train_limit or None, recompress_config=_recompress_config(cfg))
  print(f"training data: {stream.description}")
  return stream


def _build_algorithm(cfg, stream, strategy):
  """The decoder and its learning algorithm, variables in the strategy."""
  with strategy.scope():  # variables mirrored on every replica
    return run_decoder.build_algorithm(cfg, stream.patch_size,
                                       stream.setting_size)


def _validator(cfg):
  val = train_inputs.validation_images(
      cfg.val_images, codec=cfg.codec,
      quality=None if cfg.val_bpp else cfg.val_quality,
      bpp=cfg.val_bpp or None, max_images=cfg.val_max_images or None,
      max_side=cfg.val_max_side or None,
      settings=[float(v) for v in cfg.val_settings])
  validator = training.Validator(val, K=cfg.val_K or cfg.K)
  print(f"validation: {len(val)} images, codec PSNR "
        f"{validator.codec_psnr:.3f} dB")
  return validator


def _warm_start(cfg, decoder):
  """--init_from, when the model dir has no checkpoint yet."""
  if cfg.init_from and not checkpoints.checkpoints_on_disk(
      os.path.join(cfg.model_dir, "checkpoints")):
    source = run_decoder.init_source(cfg.init_from)
    copied, kept = decoder_lib.warm_start(decoder, source)
    print(f"warm start from {cfg.init_from}: {len(copied)} variables "
          f"copied{', kept at init: ' + ', '.join(kept) if kept else ''}")


def _train(cfg):
  strategy, chief = _make_strategy(cfg)
  if cfg.deterministic:
    tf.config.experimental.enable_op_determinism()
  stream = _training_stream(cfg)
  if cfg.setting_input and not stream.setting_size:
    print("error: --setting_input needs a dataset that carries the codec "
          "setting (--dataset=recompress:...)", file=sys.stderr)
    return 2
  decoder, algo = _build_algorithm(cfg, stream, strategy)
  validator = _validator(cfg) if chief else None  # only the chief validates
  steps = cfg.steps_per_epoch or max(1, stream.num_blocks // cfg.batch_size)
  trainer_config = config_lib.trainer_config(cfg, steps,
                                             dataclasses.asdict(cfg))
  _warm_start(cfg, decoder)
  if cfg.strategy == "default":
    trainer = training.Trainer(algo, stream.batches, validator,
                               trainer_config)
  else:
    trainer = distributed.DistributedTrainer(algo, stream.batches, validator,
                                             trainer_config, strategy)
  try:
    log = trainer.run()
  except (training.TrainingDivergedError, errors.ResourceLimitError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if log is not None and chief:
    _finish(cfg, trainer, log)
  return 0


def _finish(cfg, trainer, log):
  """The chief's end of a run: the serving export and the summary line."""
  if log.get("status") == "finished" and cfg.export:
    path = os.path.join(cfg.model_dir, "serving")
    with trainer.averaged():
      exports.export_run(trainer.model, log, path, source="final")
    print(f"exported the serving model (graph-only signatures) to {path}")
  best = log["best"] or {}
  print(f"finished: best validation PSNR {best.get('val_psnr')} dB at "
        f"epoch {best.get('epoch')}, convergence epoch "
        f"{log['convergence_epoch']}")


def run(argv=None):
  """Entry point of ``hbd-train``, ``python -m tf_hbd.training`` and
  ``scripts/train.py``: parses the flags (``--help`` lists them), exits."""
  quiet.run_app(main, __name__, argv, program="train.py")


if __name__ == "__main__":
  app.run(main)
