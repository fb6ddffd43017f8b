"""Trains the whole neural-baseline family (E2E lambdas, then GOOG) in order.

Unattended and resumable (`tf_hbd.baselines.campaign`): each model keeps
its checkpoints, learning curve and export under --root/<name>/; rerunning
the same command skips finished models and continues the others from their
checkpoints (after a kill -9 too); raising the budgets extends every model.

  python scripts/baseline_campaign.py --root=runs/baselines \
      --train_dir=../shared/data/train400 --val_dir=../shared/data/bsd68
  python scripts/baseline_campaign.py --root=runs/baselines --status
  python scripts/baseline_campaign.py --root=runs/baselines --curves

Sessions on machines that are not kept: --snapshot=DIR (no training; the
campaign may be running) writes DIR/<name>/ for every model with a
checkpoint: its weights, step and training time from the newest intact
checkpoint (no optimizer state), its learning curve and a MODEL.md, to
commit; give it the campaign's own flags (they choose the models and go into
MODEL.md). The next session, on a new --root, adds --warm_start=DIR: models
without a checkpoint continue from their snapshot (steps and hours go on, so
budgets stay totals; a fresh optimizer whose rate is ramped up over its
first 1,000 updates).

  python scripts/baseline_campaign.py --root=runs/baselines \
      --snapshot=campaigns/baselines            # hourly; then git commit
  python scripts/baseline_campaign.py --root=runs/baselines \
      --warm_start=campaigns/baselines           # next session

GOOG's training loss: --goog_loss_norm=l2 (mean squared residual instead of
Toderici et al.'s mean |residual|) and --goog_loss_weights=4,4,4,1
(iterations 1-3 weigh 4x each later one; default all alike); see
docs/CAMPAIGNS.md "Next for GOOG" for the pilot behind them.

Quiet by default (TensorFlow's log lines off); --verbose shows them.

Exit codes: 0 done (or nothing to do), 2 bad arguments (e.g. a held-out
training folder, a warm start from a model without a checkpoint, a
snapshot folder inside --root), 130 interrupted (Ctrl-C or SIGTERM: the
model in training saves a checkpoint at its step first; one line,
`tf_hbd.errors.exit_on_interrupt`).
"""

import shlex
import sys

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd import errors
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
_GOOG_DECAY_FROM = flags.DEFINE_float(
    "goog_decay_from", None, "GOOG's rate decays (a cosine to 5 %) after "
    "this fraction of its budget; default: a constant rate.",
    lower_bound=0.0, upper_bound=1.0)
_GOOG_LEARNING_RATE = flags.DEFINE_float(
    "goog_learning_rate", 5e-4, "GOOG's Adam rate (a fresh optimizer ramps "
    "up to it over 1,000 updates).", lower_bound=0.0)
_GOOG_ITERATIONS = flags.DEFINE_integer(
    "goog_iterations", 16, "GOOG iterations unrolled in each training step "
    "(the model codes up to 16 whatever this is).", lower_bound=1,
    upper_bound=16)
_GOOG_LOSS_NORM = flags.DEFINE_enum(
    "goog_loss_norm", "l1", ["l1", "l2"], "GOOG's loss per iteration: mean "
    "|residual| (Toderici et al.) or mean squared residual (what PSNR "
    "measures).")
_GOOG_LOSS_WEIGHTS = flags.DEFINE_string(
    "goog_loss_weights", None, "GOOG's loss weights per iteration, "
    "comma-separated, the last repeated (e.g. 4,4,4,1: iterations 1-3 "
    "weigh 4x each later one); default: all alike.")
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
_SNAPSHOT = flags.DEFINE_string(
    "snapshot", None, "Only write DIR/<name>/ (weights, step, hours, curve, "
    "MODEL.md) for every model with a checkpoint; never writes under --root.")
_WARM_START = flags.DEFINE_string(
    "warm_start", None, "Snapshot folder of an earlier session: models "
    "without a checkpoint under --root continue from DIR/<name>/.")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show TensorFlow's own log lines.")
flags.mark_flag_as_required("root")

_NOT_IN_COMMAND = ("snapshot", "verbose", "status", "curves")


def campaign_command(args) -> str:
  """The training command that command-line `args` (without the program)
  stand for, for MODEL.md: the same flags without --snapshot, --verbose,
  --status, --curves."""
  kept, skip = [], False
  for arg in args:
    name = arg.lstrip("-").split("=", 1)[0]
    if skip:
      skip = False
    elif name in _NOT_IN_COMMAND or name[2:] in _NOT_IN_COMMAND[1:]:
      skip = name == "snapshot" and "=" not in arg  # --snapshot DIR
    else:
      kept.append(arg)
  return shlex.join(["python", "scripts/baseline_campaign.py", *kept])


def main(argv):
  """Runs (or reports) the campaign of the flags; 0, 2 on a bad flag value,
  130 on Ctrl-C / SIGTERM (the model in training checkpoints first)."""
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  return errors.exit_on_interrupt(_campaign, "baseline_campaign",
                                  "rerun the same command to resume")


def _goog_settings() -> dict:
  """The GOOG loss settings of the flags (`campaign.run_campaign`); only
  those that differ from the defaults, so older MODEL.md lines stay.

  Raises:
    ValueError: bad --goog_loss_weights.
  """
  out = {}
  if _GOOG_ITERATIONS.value != 16:
    out["goog_iterations"] = _GOOG_ITERATIONS.value
  if _GOOG_LOSS_NORM.value != "l1":
    out["goog_loss_norm"] = _GOOG_LOSS_NORM.value
  if _GOOG_LOSS_WEIGHTS.value:
    from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
    goog.iteration_weights(_GOOG_LOSS_WEIGHTS.value, _GOOG_ITERATIONS.value)
    out["goog_loss_weights"] = _GOOG_LOSS_WEIGHTS.value
  return out


def _campaign():
  """The campaign of the flags; 0, or 2 on a bad flag value."""
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
        goog_decay_from=_GOOG_DECAY_FROM.value,
        goog_learning_rate=_GOOG_LEARNING_RATE.value, **kwargs)
    if _CURVES.value:
      for run in plan:
        print(campaign.curve_markdown(_ROOT.value, run) + "\n")
      return 0
    settings = {"eval_every": _EVAL_EVERY.value,
                "checkpoint_every_s": _CHECKPOINT_EVERY_S.value,
                "log_every": _LOG_EVERY.value, **_goog_settings()}
    log = lambda line: print(line, flush=True)
    if _SNAPSHOT.value:
      campaign.snapshot(
          plan, _ROOT.value, _SNAPSHOT.value,
          command=campaign_command(sys.argv[1:]),
          train_dir=_TRAIN_DIR.value, val_dir=_VAL_DIR.value,
          val_images=_VAL_IMAGES.value, settings=settings, only=_ONLY.value,
          log=log)
      return 0
    campaign.run_campaign(
        plan, _ROOT.value, _TRAIN_DIR.value, _VAL_DIR.value,
        val_images=_VAL_IMAGES.value, only=_ONLY.value, dry_run=_STATUS.value,
        settings=settings, warm_start=_WARM_START.value, log=log)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  app.run(main)
