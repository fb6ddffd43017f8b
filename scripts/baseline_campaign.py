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

import sys

from absl import app
from absl import flags

from tf_hbd.baselines import campaign

_ROOT = flags.DEFINE_string("root", None,
                            "Campaign folder (one subfolder per model).")
_TRAIN_DIR = flags.DEFINE_string(
    "train_dir", "../shared/data/train400", "Training images (the sample "
    "photographs' train split is added); kodak / bsd68 are refused.")
_VAL_DIR = flags.DEFINE_string("val_dir", "../shared/data/bsd68",
                               "Validation images of the learning curves.")
_VAL_IMAGES = flags.DEFINE_integer("val_images", 8, "Validation images used.")
_E2E_BASE_HOURS = flags.DEFINE_float(
    "e2e_base_hours", 8.0, "Training hours of the E2E base model (total).")
_E2E_HOURS = flags.DEFINE_float(
    "e2e_hours", 3.0,
    "Training hours of each warm-started E2E model (total).")
_GOOG_HOURS = flags.DEFINE_float("goog_hours", 6.0,
                                 "Training hours of GOOG (total).")
_NUM_FILTERS = flags.DEFINE_integer("num_filters", 128, "E2E width.")
_LAMBDAS = flags.DEFINE_list("lambdas", None,
                             "E2E lambdas (default: campaign's).")
_BASE_LAMBDA = flags.DEFINE_float("base_lambda", None,
                                  "E2E lambda trained from scratch.")
_COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype", "float32", ["float32", "bfloat16"],
    "E2E transforms' compute dtype (bfloat16 measured slower on CPU, see "
    "BUILD.md).")
_ONLY = flags.DEFINE_list("only", None, "Train only these models.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 2000,
                                   "Steps between validations.")
_CHECKPOINT_EVERY_S = flags.DEFINE_float("checkpoint_every_s", 300,
                                         "Seconds between checkpoints.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 200,
                                  "Steps between progress lines.")
_STATUS = flags.DEFINE_bool("status", False, "Only print each model's state.")
_CURVES = flags.DEFINE_bool("curves", False,
                            "Only print the learning curves.")
flags.mark_flag_as_required("root")


def main(argv):
  del argv
  kwargs = {}
  if _LAMBDAS.value:
    kwargs["lambdas"] = [float(x) for x in _LAMBDAS.value]
  if _BASE_LAMBDA.value:
    kwargs["base_lambda"] = _BASE_LAMBDA.value
  try:
    plan = campaign.default_plan(
        e2e_base_minutes=60 * _E2E_BASE_HOURS.value,
        e2e_minutes=60 * _E2E_HOURS.value, goog_minutes=60 * _GOOG_HOURS.value,
        num_filters=_NUM_FILTERS.value, compute_dtype=_COMPUTE_DTYPE.value,
        **kwargs)
    if _CURVES.value:
      for run in plan:
        print(campaign.curve_markdown(_ROOT.value, run) + "\n")
      return 0
    campaign.run_campaign(
        plan, _ROOT.value, _TRAIN_DIR.value, _VAL_DIR.value,
        val_images=_VAL_IMAGES.value, only=_ONLY.value, dry_run=_STATUS.value,
        settings={"eval_every": _EVAL_EVERY.value,
                  "checkpoint_every_s": _CHECKPOINT_EVERY_S.value,
                  "log_every": _LOG_EVERY.value},
        log=lambda line: print(line, flush=True))
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  app.run(main)
