"""Trains the GOOG baseline (Toderici et al. 2017) on gray images.

Resumable: rerunning with the same --checkpoint_dir continues where it
stopped (steps and the training-time budget are kept in the checkpoint).

  python scripts/train_goog.py --train_dir=../shared/data/train400 \
      --checkpoint_dir=runs/goog/ckpt --export_dir=runs/goog/saved \
      --max_minutes=20
"""

import os
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("train_dir", None, "Folder (or glob) of training images.")
flags.DEFINE_string("checkpoint_dir", None, "Checkpoints, history; resumes.")
flags.DEFINE_string("export_dir", None, "SavedModel written at the end.")
flags.DEFINE_integer("encoder_conv", 32, "Width of the encoder's convolution.")
flags.DEFINE_list("encoder_rnn", ["48", "64", "64"], "Encoder LSTM widths.")
flags.DEFINE_integer("decoder_conv", 64, "Width of the decoder's 1x1 conv.")
flags.DEFINE_list("decoder_rnn", ["64", "64", "32", "16"],
                  "Decoder LSTM widths (each a multiple of 4).")
flags.DEFINE_integer("patch_size", 32, "Side of the crops (multiple of 32).")
flags.DEFINE_integer("batch_size", 32, "Crops per step.")
flags.DEFINE_integer("iterations", 16, "Iterations unrolled in training.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam step size.")
flags.DEFINE_integer("max_steps", 1_000_000, "Total steps (all restarts).")
flags.DEFINE_float("max_minutes", None, "Total training minutes, or none.")
flags.DEFINE_integer("seed", 0, "Seed of crops, initialization, noise.")
flags.DEFINE_integer("log_every", 50, "Steps between progress lines.")
flags.DEFINE_float("checkpoint_every_s", 120, "Seconds between checkpoints.")
flags.DEFINE_integer("max_images", None, "Use only this many images.")
flags.DEFINE_string("sample_split", None,
                    "Also train on this split of the sample photographs "
                    "(e.g. train); kodak / bsd68 folders are then refused.")
flags.mark_flags_as_required(["train_dir", "checkpoint_dir"])


def main(argv):
  del argv
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
  config = goog.GoogConfig(
      encoder_conv=FLAGS.encoder_conv,
      encoder_rnn=tuple(int(n) for n in FLAGS.encoder_rnn),
      decoder_conv=FLAGS.decoder_conv,
      decoder_rnn=tuple(int(n) for n in FLAGS.decoder_rnn))
  result = goog.train(
      train_dir=FLAGS.train_dir, checkpoint_dir=FLAGS.checkpoint_dir,
      export_dir=FLAGS.export_dir, config=config,
      patch_size=FLAGS.patch_size, batch_size=FLAGS.batch_size,
      iterations=FLAGS.iterations, learning_rate=FLAGS.learning_rate,
      max_steps=FLAGS.max_steps,
      max_seconds=None if FLAGS.max_minutes is None else
      60.0 * FLAGS.max_minutes,
      seed=FLAGS.seed, log_every=FLAGS.log_every,
      checkpoint_every_s=FLAGS.checkpoint_every_s,
      max_images=FLAGS.max_images, sample_split=FLAGS.sample_split,
      log=lambda line: print(line, flush=True))
  print(f"done: {result}", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
