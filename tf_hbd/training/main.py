"""Trains the HBD decoder with BPTT, SAB, RTRL or UORO: the training entry point.

  python -m tf_hbd.training --algo=bptt --model_dir=/tmp/hbd_bptt
  hbd-train --algo=uoro --units=64 --dataset=folder:../shared/data/train400 \
      --val_images=../shared/data/bsd68 --val_quality=20 --model_dir=/tmp/hbd_uoro

(``python scripts/train.py ...`` in a checkout is the same program.)

Progress lines, TensorBoard summaries (<model_dir>/tensorboard), the per-epoch
log (<model_dir>/log.json, metrics.csv), checkpoints (rerun the same command
to resume exactly) and the exported SavedModel (<model_dir>/export). See
BUILD.md, "Training algorithms".

Several GPUs or machines (BUILD.md, "Distributed training"): --strategy=
mirrored (one machine) or multi_worker (one process per machine, cluster in
TF_CONFIG; the same command on every worker, model_dir on shared storage);
--batch_size is then the global batch, split across the replicas.
"""

import os
import sys

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import tensorflow as tf

from tf_hbd.training import algorithms
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training import distributed
from tf_hbd import errors
from tf_hbd.evaluation import systems as evaluation
from tf_hbd.training import flag_checks
from tf_hbd.inference import serving
from tf_hbd.data import train_inputs
from tf_hbd.training import trainer as training

__all__ = ["main", "run"]

_ALGO = flags.DEFINE_enum("algo", "bptt", ["bptt", "sab", "rtrl", "uoro",
                                          "snap1"],
                          "Learning algorithm.")
_CELL = flags.DEFINE_enum("cell", "lstm", ["lstm", "gru", "delta", "elman",
                                           "mlp"], "State cell.")
_UNITS = flags.DEFINE_integer("units", 512, "State size n (paper: 512).")
_K = flags.DEFINE_integer("K", 4, "Refinement steps per episode (paper: 4).")
_SNE = flags.DEFINE_bool("sne", False, "Sibling neural estimator (SNE-RNN).")
_CENTER = flags.DEFINE_bool("center_inputs", True, "Feed q - 0.5 to the "
                            "transformation (optimisation aid; False: the "
                            "paper's raw q).")
_BOUNDARY = flags.DEFINE_enum(
    "boundary", "paper", ["paper", "replicate"], "Block boundary rule of the "
    "decoder and of recompress: data (paper: the paper's rule).")
_TIED = flags.DEFINE_bool("tied", True, "LSTM/GRU: one e shared by the gates "
                          "(paper); False: a transformation per gate.")
_SETTING_INPUT = flags.DEFINE_bool(
    "setting_input", False, "Tell the decoder the codec setting read from "
    "the bitstream (tf_hbd.codecs.codec_setting; needs recompress: data).")
_PRECISION = flags.DEFINE_enum(
    "precision", "float32", ["float32", "bfloat16"], "Matrix products in "
    "this dtype (bfloat16: mixed precision, float32 weights/state/loss).")
_CODEC = flags.DEFINE_enum("codec", "jpeg", ["jpeg", "jp2"],
                           "Codec of the training and validation data.")
_PATCH_SIZE = flags.DEFINE_integer(
    "patch_size", 0, "Patch side d for in-memory datasets (0: 8 for JPEG, "
    "64 for JPEG 2000).")
_DATASET = flags.DEFINE_string(
    "dataset", "sample", "'sample' (embedded photos), 'folder:<path>', or a "
    "prepared TFDS dataset name such as sample_patches/jpeg.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data directory.")
_SPLIT = flags.DEFINE_string("split", "train", "TFDS split to train on.")
_TRAIN_MAX_SIDE = flags.DEFINE_integer(
    "train_max_side", 0, "Downsample in-memory training images to this "
    "longer side (0: keep).")
_TRAIN_LIMIT = flags.DEFINE_integer(
    "train_limit", 0, "Use only the first N in-memory training images (0: "
    "all).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256,
                                   "Blocks per batch (paper: 256).")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "sgd", ["sgd", "momentum",
                                                    "adam"],
                               "Optimizer (paper: sgd).")
_LR = flags.DEFINE_float("lr", 2e-4, "Initial step size (paper: 2e-4).")
_MOMENTUM = flags.DEFINE_float("momentum", 0.9,
                               "Momentum of --optimizer=momentum.")
_LR_DECAY_POWER = flags.DEFINE_float(
    "lr_decay_power", 2.0, "Power of the polynomial step-size decay.")
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", "polynomial", ["polynomial", "cosine"], "Step-size "
    "schedule (paper: polynomial; cosine: warm-up then cosine decay).")
_WARMUP = flags.DEFINE_integer("warmup", 0, "Warm-up updates of the cosine "
                               "schedule.")
_EMA = flags.DEFINE_float("ema", 0.0, "Decay of the weight average used for "
                          "validation and export (0: off; e.g. 0.999).")
_EXPORT_BEST = flags.DEFINE_bool(
    "export_best", False, "Export the best validation epoch's model so far "
    "to <model_dir>/best.")
_CROP = flags.DEFINE_integer("crop", 176, "recompress: crop side (0: whole "
                             "images).")
_SYNTHETIC = flags.DEFINE_float("synthetic_fraction", 0.1, "recompress: "
                                "synthetic images per real crop.")
_TONE = flags.DEFINE_float("tone_fraction", 0.1, "recompress: share of crops "
                           "squeezed into a dark or bright range.")
_QUALITIES = flags.DEFINE_string(
    "jpeg_qualities", "", "recompress: JPEG quality mixture PROB:LOW-HIGH,... "
    "(empty: tf_hbd.data.recompress.QUALITY_MIXTURE).")
_JP2_BPP = flags.DEFINE_string(
    "jp2_bpp", "", "recompress: JPEG 2000 rate range LOW-HIGH in bpp, drawn "
    "log-uniform (empty: 0.1-2).")
_VAL_SETTINGS = flags.DEFINE_list(
    "val_settings", [], "Validate at several JPEG qualities / JP2 bpps "
    "(e.g. 10,20,30); overrides --val_quality/--val_bpp.")
_INIT_FROM = flags.DEFINE_string(
    "init_from", "", "Start from the weights of this decoder export (a "
    "run's best/ or export/, or a shipped serving model) when the model dir "
    "has no checkpoint yet.")
_LR_END_FRACTION = flags.DEFINE_float(
    "lr_end_fraction", 0.01, "Final step size as a fraction of --lr.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 13.0,
                                "Gradient global-norm clip (paper: 13).")
_ALPHA = flags.DEFINE_float("alpha", 0.235, "MSE weight of the loss (eq. 17).")
_LOSS_FORM = flags.DEFINE_enum("loss_form", "batch_mean",
                               ["batch_mean", "paper"],
                               "Loss normalisation (tf_hbd.model.losses).")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Training epochs (paper: 260+).")
_STEPS_PER_EPOCH = flags.DEFINE_integer(
    "steps_per_epoch", 0, "Batches per epoch (0: one pass over the set).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of weights, data order, signs.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "Checkpoints, logs and the export.")
_ACCUMULATE = flags.DEFINE_bool(
    "accumulate", False, "RTRL/UORO/SnAp-1: one update per batch from the K step "
    "gradients instead of one per step (online).")
_RTRL_MAX_GB = flags.DEFINE_float(
    "rtrl_max_gb", 4.0, "RTRL refuses runs whose estimated peak memory "
    "exceeds this many GiB.")
_UORO_PER_EXAMPLE = flags.DEFINE_bool(
    "uoro_per_example", False, "UORO: one estimate per example (lower "
    "variance, slower) instead of one for the whole batch.")
_UORO_FORM = flags.DEFINE_enum(
    "uoro_form", "published", ["published", "post_update"],
    "UORO gradient: 'published' (Tallec & Ollivier 2017, Algorithm 1: the "
    "previous estimate carried one exact step plus the exact immediate "
    "term) or 'post_update' (the rank-one estimate after the fresh signs; "
    "higher variance).")
_UORO_EPSILON = flags.DEFINE_float("uoro_epsilon", 1e-7,
                                   "UORO: epsilon of the rho ratios.")
_SAB_READOUT = flags.DEFINE_enum(
    "sab_readout", "state", ["state", "reference"],
    "SAB: the reconstruction reads s_k = h_k + summary_k ('state') or, as "
    "the SAB reference code, [s_k; summary_k] ('reference').")
_K_TOP = flags.DEFINE_integer("k_top", 2, "SAB: memories kept (paper code "
                              "default 10, for long sequences).")
_K_ATTN = flags.DEFINE_integer("k_attn", 1, "SAB: store a memory every "
                               "k_attn steps (paper code default 2).")
_K_TRUNC = flags.DEFINE_integer("k_trunc", 2, "SAB: truncation chunk of the "
                                "recurrent gradient (paper code default 10).")
_SAB_ATTN_UNITS = flags.DEFINE_integer(
    "sab_attn_units", 0, "SAB: hidden size of the score MLP (0: state size).")
_VAL_IMAGES = flags.DEFINE_string(
    "val_images", "", "Validation images (folder/glob); empty: the sample "
    "photographs' validation split.")
_VAL_QUALITY = flags.DEFINE_float(
    "val_quality", 20, "Codec quality of the validation images (JPEG "
    "quality; JP2 ratio).")
_VAL_BPP = flags.DEFINE_float(
    "val_bpp", 0, "Target bpp of the validation images instead of "
    "--val_quality (0: use the quality).")
_VAL_MAX_IMAGES = flags.DEFINE_integer("val_max_images", 0,
                                       "Validate on at most N images (0: all).")
_VAL_MAX_SIDE = flags.DEFINE_integer(
    "val_max_side", 0, "Downsample validation images to this longer side "
    "(0: full size).")
_VAL_K = flags.DEFINE_integer("val_K", 0, "Refinement steps at validation "
                              "(0: --K).")
_LOG_EVERY = flags.DEFINE_integer("log_every", 50,
                                  "Progress line every N batches.")
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every", 200, "Also checkpoint every N batches (0: epoch ends "
    "only).")
_MAX_STEPS = flags.DEFINE_integer(
    "max_steps", 0, "Stop (resumably) after N batches in total (0: none).")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", True, "Deterministic TF ops (exact resume).")
_EXPORT = flags.DEFINE_bool("export", True,
                            "Export the final SavedModel to <model_dir>/export.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", list(distributed.STRATEGIES),
    "tf.distribute strategy: default (one device), mirrored (the GPUs of "
    "this machine, or --devices), multi_worker (the cluster in TF_CONFIG).")
_DEVICES = flags.DEFINE_list(
    "devices", [], "mirrored: devices to use (empty: every GPU, else CPU).")
_NUM_CPU_DEVICES = flags.DEFINE_integer(
    "num_cpu_devices", 0, "Split the CPU into this many logical devices "
    "(mirrored then uses them; for testing without GPUs).")
_COMMUNICATION = flags.DEFINE_enum(
    "communication", "auto", list(distributed.COMMUNICATIONS),
    "multi_worker collectives: auto, ring (gRPC; CPUs) or nccl (GPUs).")
_COLLECTIVE_TIMEOUT = flags.DEFINE_float(
    "collective_timeout", 0, "multi_worker: abort a collective after this "
    "many seconds (0: no limit).")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show TensorFlow's own log "
                              "lines.")
flags.mark_flag_as_required("model_dir")


def _recompress_config():
  from tf_hbd.data import recompress  # pylint: disable=g-import-not-at-top
  config = {"crop": _CROP.value, "strategy": _BOUNDARY.value,
            "synthetic_fraction": _SYNTHETIC.value,
            "tone_fraction": _TONE.value}
  if _QUALITIES.value:
    config["quality_mixture"] = recompress.parse_mixture(_QUALITIES.value)
  if _JP2_BPP.value:
    config["bpp_range"] = recompress.parse_bpp_range(_JP2_BPP.value)
  return config


def main(argv):
  """Checks the flags before any data is built; one-line errors, exit codes
  (tf_hbd.training.flag_checks)."""
  quiet.quiet_tensorflow(_VERBOSE.value)
  values = {f.name: f.value for f in
            flags.FLAGS.get_key_flags_for_module(sys.modules[__name__])}
  return flag_checks.guarded_main(
      _train, argv, values, resume_hint=f"; rerun the same command to "
      f"resume from the last checkpoint in {_MODEL_DIR.value}/checkpoints")


def _train(argv):
  del argv
  values = {f.name: f.value for f in
            flags.FLAGS.get_key_flags_for_module(sys.modules[__name__])}
  # First: a multi-worker strategy must exist before other TF calls.
  strategy = distributed.make_strategy(
      _STRATEGY.value, devices=_DEVICES.value,
      num_cpu_devices=_NUM_CPU_DEVICES.value,
      communication=_COMMUNICATION.value,
      timeout_s=_COLLECTIVE_TIMEOUT.value)
  chief = distributed.is_chief(strategy)
  if _STRATEGY.value != "default":
    task_type, task_id = distributed.worker_task(strategy)
    print(f"strategy: {_STRATEGY.value}, {strategy.num_replicas_in_sync} "
          f"replicas, task {task_type or 'local'}:{task_id}"
          f"{' (chief)' if chief else ''}, global batch {_BATCH_SIZE.value}")
  if _DETERMINISTIC.value:
    tf.config.experimental.enable_op_determinism()
  # Every random choice is seeded explicitly (weights, data order, UORO
  # signs); the TF global seed stays unset (the data pipeline's per-epoch
  # shuffle seeds are tensors, which a global seed does not accept).
  stream = train_inputs.training_stream(
      _DATASET.value, batch_size=_BATCH_SIZE.value, seed=_SEED.value,
      codec=_CODEC.value, patch_size=_PATCH_SIZE.value or None,
      split=_SPLIT.value, data_dir=_DATA_DIR.value,
      max_side=_TRAIN_MAX_SIDE.value or None,
      limit=_TRAIN_LIMIT.value or None,
      recompress_config=_recompress_config())
  print(f"training data: {stream.description}")
  if _SETTING_INPUT.value and not stream.setting_size:
    print("error: --setting_input needs a dataset that carries the codec "
          "setting (--dataset=recompress:...)", file=sys.stderr)
    return 2
  options = {"tied": _TIED.value} if _CELL.value in ("lstm", "gru") else {}
  with strategy.scope():  # variables mirrored on every replica
    decoder = decoder_lib.build_decoder(
        _CELL.value, units=_UNITS.value, patch_size=stream.patch_size,
        K=_K.value, sne=_SNE.value, seed=_SEED.value,
        center_inputs=_CENTER.value, boundary=_BOUNDARY.value,
        cell_options=options,
        setting_size=stream.setting_size if _SETTING_INPUT.value else 0,
        matmul_dtype=(None if _PRECISION.value == "float32"
                      else _PRECISION.value))
    algo = algorithms.make_algorithm(
        _ALGO.value, decoder, K=_K.value, alpha=_ALPHA.value,
        loss_form=_LOSS_FORM.value,
        **algorithms.options_from_flags(_ALGO.value, values))
  validator = None
  if chief:  # only the chief validates
    val = train_inputs.validation_images(
        _VAL_IMAGES.value, codec=_CODEC.value,
        quality=None if _VAL_BPP.value else _VAL_QUALITY.value,
        bpp=_VAL_BPP.value or None, max_images=_VAL_MAX_IMAGES.value or None,
        max_side=_VAL_MAX_SIDE.value or None,
        settings=[float(v) for v in _VAL_SETTINGS.value])
    validator = training.Validator(val, K=_VAL_K.value or _K.value)
    print(f"validation: {len(val)} images, codec PSNR "
          f"{validator.codec_psnr:.3f} dB")
  steps = _STEPS_PER_EPOCH.value or max(1, stream.num_blocks
                                        // _BATCH_SIZE.value)
  config = training.TrainConfig(
      model_dir=_MODEL_DIR.value, epochs=_EPOCHS.value, steps_per_epoch=steps,
      batch_size=_BATCH_SIZE.value, optimizer=_OPTIMIZER.value, lr=_LR.value,
      momentum=_MOMENTUM.value, lr_decay_power=_LR_DECAY_POWER.value,
      lr_end_fraction=_LR_END_FRACTION.value, clip_norm=_CLIP_NORM.value,
      lr_schedule=_LR_SCHEDULE.value, warmup=_WARMUP.value, ema=_EMA.value,
      export_best=_EXPORT_BEST.value,
      log_every=_LOG_EVERY.value, checkpoint_every=_CHECKPOINT_EVERY.value,
      max_steps=_MAX_STEPS.value, export=_EXPORT.value,
      flags=values)
  if _INIT_FROM.value and not tf.train.latest_checkpoint(
      os.path.join(_MODEL_DIR.value, "checkpoints")):
    copied, kept = decoder_lib.warm_start(decoder, _INIT_FROM.value)
    print(f"warm start from {_INIT_FROM.value}: {len(copied)} variables "
          f"copied{', kept at init: ' + ', '.join(kept) if kept else ''}")
  if _STRATEGY.value == "default":
    trainer = training.Trainer(algo, stream.batches, validator, config)
  else:
    trainer = distributed.DistributedTrainer(algo, stream.batches, validator,
                                             config, strategy)
  try:
    log = trainer.run()
  except (training.TrainingDivergedError, errors.ResourceLimitError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  if (log is not None and log.get("status") == "finished" and _EXPORT.value
      and chief):
    path = os.path.join(_MODEL_DIR.value, "serving")
    with trainer.averaged():
      serving.export_serving(trainer.model, path, _CODEC.value, metadata={
          "label": evaluation.decoder_label(_CELL.value, _CODEC.value,
                                            _ALGO.value, _SNE.value),
          "algorithm": _ALGO.value, "sne": _SNE.value,
          "training": {"flags": {k: str(v) for k, v in values.items()},
                       "best": log.get("best"),
                       "epochs": len(log.get("epochs", []))}})
    print(f"exported the serving model (graph-only signatures) to {path}")
  if log is not None and chief:
    best = log["best"] or {}
    print(f"finished: best validation PSNR {best.get('val_psnr')} dB at "
          f"epoch {best.get('epoch')}, convergence epoch "
          f"{log['convergence_epoch']}")
  return 0


def run(argv=None):
  """Entry point of ``hbd-train``, ``python -m tf_hbd.training`` and
  ``scripts/train.py``: parses the flags (``--help`` lists them), exits."""
  for flag in flags.FLAGS.get_key_flags_for_module(__name__):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main, argv)


if __name__ == "__main__":
  app.run(main)
