"""Trains the whole neural-baseline family (E2E lambdas, then GOOG) in order.

Unattended and resumable (`tf_hbd.baselines.campaign`): each model keeps
its checkpoints, learning curve and export under --root/<name>/; rerunning
the same command skips finished models and continues the others from their
checkpoints (after a kill -9 too); raising the budgets extends every model.

  python scripts/baseline_campaign.py --root=runs/baselines \
      --train_dir=../shared/data/train400 --val_dir=../shared/data/bsd68
  python scripts/baseline_campaign.py --root=runs/baselines --status
  python scripts/baseline_campaign.py --root=runs/baselines --curves

Exit codes: 0 done (or nothing to do), 2 bad arguments (e.g. a held-out
training folder, a warm start from a model without a checkpoint).
"""

import os
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("root", None, "Campaign folder (one subfolder per model).")
flags.DEFINE_string("train_dir", "../shared/data/train400",
                    "Training images (the sample photographs' train split "
                    "is added); kodak / bsd68 are refused.")
flags.DEFINE_string("val_dir", "../shared/data/bsd68",
                    "Validation images of the learning curves.")
flags.DEFINE_integer("val_images", 8, "Validation images used.")
flags.DEFINE_float("e2e_base_hours", 8.0,
                   "Training hours of the E2E base model (total).")
flags.DEFINE_float("e2e_hours", 3.0,
                   "Training hours of each warm-started E2E model (total).")
flags.DEFINE_float("goog_hours", 6.0, "Training hours of GOOG (total).")
flags.DEFINE_integer("num_filters", 128, "E2E width.")
flags.DEFINE_list("lambdas", None, "E2E lambdas (default: campaign's).")
flags.DEFINE_float("base_lambda", None, "E2E lambda trained from scratch.")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"],
                  "E2E transforms' compute dtype (bfloat16 measured slower "
                  "on CPU, see BUILD.md).")
flags.DEFINE_list("only", None, "Train only these models.")
flags.DEFINE_integer("eval_every", 2000, "Steps between validations.")
flags.DEFINE_float("checkpoint_every_s", 300, "Seconds between checkpoints.")
flags.DEFINE_integer("log_every", 200, "Steps between progress lines.")
flags.DEFINE_bool("status", False, "Only print each model's state.")
flags.DEFINE_bool("curves", False, "Only print the learning curves.")
flags.mark_flag_as_required("root")


def main(argv):
  del argv
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  from tf_hbd.baselines import campaign  # pylint: disable=g-import-not-at-top
  kwargs = {}
  if FLAGS.lambdas:
    kwargs["lambdas"] = [float(x) for x in FLAGS.lambdas]
  if FLAGS.base_lambda:
    kwargs["base_lambda"] = FLAGS.base_lambda
  try:
    plan = campaign.default_plan(
        e2e_base_minutes=60 * FLAGS.e2e_base_hours,
        e2e_minutes=60 * FLAGS.e2e_hours, goog_minutes=60 * FLAGS.goog_hours,
        num_filters=FLAGS.num_filters, compute_dtype=FLAGS.compute_dtype,
        **kwargs)
    if FLAGS.curves:
      for run in plan:
        print(campaign.curve_markdown(FLAGS.root, run) + "\n")
      return 0
    campaign.run_campaign(
        plan, FLAGS.root, FLAGS.train_dir, FLAGS.val_dir,
        val_images=FLAGS.val_images, only=FLAGS.only, dry_run=FLAGS.status,
        settings={"eval_every": FLAGS.eval_every,
                  "checkpoint_every_s": FLAGS.checkpoint_every_s,
                  "log_every": FLAGS.log_every},
        log=lambda line: print(line, flush=True))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  app.run(main)
