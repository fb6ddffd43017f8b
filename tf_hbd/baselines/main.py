"""Trains a neural baseline codec on gray images: E2E (Ballé et al. 2017) or
GOOG (Toderici et al. 2017).

Resumable: rerunning with the same --checkpoint_dir continues where it
stopped (steps and the training-time budget are kept in the checkpoint).

  hbd-train-baseline --family=e2e \
      --train_dir=$TF_HBD_DATA/train400 --checkpoint_dir=runs/e2e_l0.008 \
      --export_dir=runs/e2e_l0.008/saved --lmbda=0.008 --max_minutes=10
  hbd-train-baseline --family=goog \
      --train_dir=$TF_HBD_DATA/train400 --checkpoint_dir=runs/goog/ckpt \
      --export_dir=runs/goog/saved --max_minutes=20

(``python -m tf_hbd.baselines`` and ``python scripts/train_baseline.py ...``
in a checkout are the same program.)

--patch_size, --batch_size and --learning_rate default to the family's
values (`FAMILY_DEFAULTS`); the flags of one family are refused with the
other (exit code 2). The training itself is `tf_hbd.baselines.e2e.train` /
`tf_hbd.baselines.goog.train` (through `tf_hbd.baselines.training`).
"""

import sys

from absl import app
from absl import flags

from tf_hbd import errors
from tf_hbd import quiet

__all__ = ["FAMILY_DEFAULTS", "FAMILY_FLAGS", "main", "run"]

FAMILY_DEFAULTS = {
    "e2e": {"patch_size": 128, "batch_size": 8, "learning_rate": 3e-4},
    "goog": {"patch_size": 32, "batch_size": 32, "learning_rate": 1e-3},
}

_FAMILY = flags.DEFINE_enum("family", None, sorted(FAMILY_DEFAULTS),
                            "Which baseline to train.")
_TRAIN_DIR = flags.DEFINE_string("train_dir", None,
                                 "Folder (or glob) of training images.")
_CHECKPOINT_DIR = flags.DEFINE_string("checkpoint_dir", None,
                                      "Checkpoints, history; resumes.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None,
                                  "SavedModel written at the end.")
_PATCH_SIZE = flags.DEFINE_integer(
    "patch_size", None, "Side of the random training crops (GOOG: a "
    "multiple of 32; default e2e 128, goog 32).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Crops per step "
                                   "(default e2e 8, goog 32).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "Adam step size "
                                    "(default e2e 3e-4, goog 1e-3).")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 1_000_000,
                                  "Total steps (all restarts).")
_MAX_MINUTES = flags.DEFINE_float("max_minutes", None,
                                  "Total training minutes, or none.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of crops, initialization and "
                             "(GOOG) noise.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 50,
                                  "Steps between progress lines.")
_CHECKPOINT_EVERY_S = flags.DEFINE_float("checkpoint_every_s", 120,
                                         "Seconds between checkpoints.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", None,
                                   "Use only this many images.")
_SAMPLE_SPLIT = flags.DEFINE_string(
    "sample_split", None, "Also train on this split of the sample "
    "photographs (e.g. train); kodak / bsd68 folders are then refused.")
# E2E only.
_LMBDA = flags.DEFINE_float("lmbda", 0.01, "E2E: loss = bpp + lmbda * MSE "
                            "(0..255 scale).")
_NUM_FILTERS = flags.DEFINE_integer("num_filters", 64,
                                    "E2E: width of the transforms.")
_CLIPNORM = flags.DEFINE_float("clipnorm", 1.0, "E2E: global gradient-norm "
                               "clip (0: off).")
_INIT_FROM = flags.DEFINE_string("init_from", None, "E2E: warm start from "
                                 "this checkpoint dir.")
_COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype", "float32", ["float32", "bfloat16"],
    "E2E: compute dtype of the transforms (export is float32).")
# GOOG only.
_ENCODER_CONV = flags.DEFINE_integer("encoder_conv", 32, "GOOG: width of the "
                                     "encoder's convolution.")
_ENCODER_RNN = flags.DEFINE_list("encoder_rnn", ["48", "64", "64"],
                                 "GOOG: encoder LSTM widths.")
_DECODER_CONV = flags.DEFINE_integer("decoder_conv", 64, "GOOG: width of the "
                                     "decoder's 1x1 conv.")
_DECODER_RNN = flags.DEFINE_list("decoder_rnn", ["64", "64", "32", "16"],
                                 "GOOG: decoder LSTM widths (each a multiple "
                                 "of 4).")
_ITERATIONS = flags.DEFINE_integer("iterations", 16, "GOOG: iterations "
                                   "unrolled in training.")
flags.mark_flags_as_required(["family", "train_dir", "checkpoint_dir"])

FAMILY_FLAGS = {
    "e2e": (_LMBDA, _NUM_FILTERS, _CLIPNORM, _INIT_FROM, _COMPUTE_DTYPE),
    "goog": (_ENCODER_CONV, _ENCODER_RNN, _DECODER_CONV, _DECODER_RNN,
             _ITERATIONS),
}


def _common(family):
  """Keyword arguments both families' `train` take."""
  defaults = FAMILY_DEFAULTS[family]
  pick = lambda holder: (defaults[holder.name] if holder.value is None
                         else holder.value)
  return dict(
      train_dir=_TRAIN_DIR.value, checkpoint_dir=_CHECKPOINT_DIR.value,
      export_dir=_EXPORT_DIR.value, patch_size=pick(_PATCH_SIZE),
      batch_size=pick(_BATCH_SIZE), learning_rate=pick(_LEARNING_RATE),
      max_steps=_MAX_STEPS.value,
      max_seconds=(None if _MAX_MINUTES.value is None
                   else 60.0 * _MAX_MINUTES.value),
      seed=_SEED.value, log_every=_LOG_EVERY.value,
      checkpoint_every_s=_CHECKPOINT_EVERY_S.value,
      max_images=_MAX_IMAGES.value, sample_split=_SAMPLE_SPLIT.value,
      log=lambda line: print(line, flush=True))


def main(argv):
  """Trains the --family's codec from the flags; 0 when done."""
  del argv
  family = _FAMILY.value
  for other, holders in FAMILY_FLAGS.items():
    wrong = [f"--{h.name}" for h in holders
             if other != family and flags.FLAGS[h.name].present]
    if wrong:
      raise app.UsageError(f"{', '.join(wrong)} belong(s) to --family="
                           f"{other}, not --family={family}", exitcode=2)
  def train():
    print(f"done: {_train(family)}", flush=True)
    return 0

  # SIGTERM / Ctrl-C: the loop checkpoints first (`loop.Stopped`).
  return errors.exit_on_interrupt(train, "train_baseline",
                                  "rerun the same command to resume")


def _train(family):
  """Trains the --family's codec from the flags; the loop's result."""
  if family == "e2e":
    from tf_hbd.baselines import e2e  # pylint: disable=g-import-not-at-top
    return e2e.train(
        lmbda=_LMBDA.value, num_filters=_NUM_FILTERS.value,
        clipnorm=_CLIPNORM.value, init_from=_INIT_FROM.value,
        compute_dtype=_COMPUTE_DTYPE.value, **_common(family))
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  config = goog.GoogConfig(
      encoder_conv=_ENCODER_CONV.value,
      encoder_rnn=tuple(int(n) for n in _ENCODER_RNN.value),
      decoder_conv=_DECODER_CONV.value,
      decoder_rnn=tuple(int(n) for n in _DECODER_RNN.value))
  return goog.train(config=config, iterations=_ITERATIONS.value,
                    **_common(family))


def run(argv=None):
  """Entry point of ``hbd-train-baseline``, ``python -m tf_hbd.baselines``
  and ``scripts/train_baseline.py``: parses the flags (``--help`` lists
  them), exits."""
  quiet.run_app(main, __name__, argv, program="train_baseline")


if __name__ == "__main__":
  app.run(main)
