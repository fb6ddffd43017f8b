"""Trains the E2E baseline (Ballé et al. 2017) on gray images.

Resumable: rerunning with the same --checkpoint_dir continues where it
stopped (steps and the training-time budget are kept in the checkpoint).

  python scripts/train_e2e.py --train_dir=../shared/data/train400 \
      --checkpoint_dir=runs/e2e_l0.008 --export_dir=runs/e2e_l0.008/saved \
      --lmbda=0.008 --max_minutes=10
"""

import os
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "Folder (or glob) of training images.")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoints, history; resumes.")
flags.DEFINE_string("export_dir", None, "SavedModel written at the end.")
flags.DEFINE_float("lmbda", 0.01, "Loss = bpp + lmbda * MSE (0..255 scale).")
flags.DEFINE_integer("num_filters", 64, "Width of the transforms.")
flags.DEFINE_integer("patch_size", 128, "Side of the random training crops.")
flags.DEFINE_integer("batch_size", 8, "Crops per step.")
flags.DEFINE_float("learning_rate", 3e-4, "Adam step size.")
flags.DEFINE_float("clipnorm", 1.0, "Global gradient-norm clip (0: off).")
flags.DEFINE_integer("max_steps", 1_000_000, "Total steps (all restarts).")
flags.DEFINE_float("max_minutes", None, "Total training minutes, or none.")
flags.DEFINE_string("init_from", None, "Warm start from this checkpoint dir.")
flags.DEFINE_integer("seed", 0, "Seed of crops and initialization.")
flags.DEFINE_integer("log_every", 50, "Steps between progress lines.")
flags.DEFINE_float("checkpoint_every_s", 120, "Seconds between checkpoints.")
flags.DEFINE_integer("max_images", None, "Use only this many images.")
flags.DEFINE_string("sample_split", None,
                    "Also train on this split of the sample photographs "
                    "(e.g. train); kodak / bsd68 folders are then refused.")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"],
                  "Compute dtype of the transforms (export is float32).")
flags.mark_flags_as_required(["train_dir", "checkpoint_dir"])


def main(argv):
  del argv
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  from tf_hbd.baselines import e2e  # pylint: disable=g-import-not-at-top
  result = e2e.train(
      train_dir=FLAGS.train_dir, checkpoint_dir=FLAGS.checkpoint_dir,
      export_dir=FLAGS.export_dir, lmbda=FLAGS.lmbda,
      num_filters=FLAGS.num_filters, patch_size=FLAGS.patch_size,
      batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
      clipnorm=FLAGS.clipnorm,
      max_steps=FLAGS.max_steps,
      max_seconds=None if FLAGS.max_minutes is None else
      60.0 * FLAGS.max_minutes,
      init_from=FLAGS.init_from, seed=FLAGS.seed, log_every=FLAGS.log_every,
      checkpoint_every_s=FLAGS.checkpoint_every_s,
      max_images=FLAGS.max_images, sample_split=FLAGS.sample_split,
      compute_dtype=FLAGS.compute_dtype,
      log=lambda line: print(line, flush=True))
  print(f"done: {result}", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
