"""Ships trained campaign models into tf_hbd/baselines/pretrained/.

Each model given (a campaign snapshot, run or export, or a folder of them;
`tf_hbd.baselines.folders`) becomes tf_hbd/baselines/pretrained/<name>/: its
SavedModel and a MODEL.md (this command, data, steps, training hours,
learning curve, size, and for GOOG whether its bits are entropy coded).
Large weights are stored in float16 by default (`e2e.stored_twin`,
`goog.stored_twin`; --weights=float32 to keep them). A GOOG checkpoint gets
entropy-coder tables fitted on --fit_dir (the training images; kodak and
bsd68 are refused); without it, none (a warning line; raw bits).

  python scripts/ship_baselines.py --models=campaigns/baselines \
      --fit_dir=../shared/data/train400
  python scripts/ship_baselines.py --models=campaigns/baselines/goog \
      --fit_dir=../shared/data/train400 --replace

Without --replace a model name that is already shipped is refused and the
other shipped models stay; with --replace, the shipped models of the
families being shipped are replaced by the new set (the old ones removed).
Check the result with scripts/rd_baselines.py (the shipped models by
default) and the registry tests (tf_hbd/baselines/baselines_test.py).

Exit codes: 0 shipped, 2 refused (no model found, a name already shipped
without --replace, a held-out or empty --fit_dir).
"""

import shlex
import sys

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.baselines import ship

_MODELS = flags.DEFINE_list(
    "models", None, "[LABEL=]FOLDER of a campaign snapshot, run, export, or "
    "a folder of them.")
_DEST = flags.DEFINE_string("dest", baselines.PRETRAINED_DIR,
                            "The shipped models' folder.")
_WEIGHTS = flags.DEFINE_enum("weights", ship.DEFAULT_WEIGHTS,
                             ["float16", "float32"],
                             "How the models store their large parameters "
                             "(E2E and GOOG).")
_FIT_DIR = flags.DEFINE_string(
    "fit_dir", None, "Training images to fit GOOG's entropy-coder tables on "
    "(not kodak or bsd68); default: no tables (raw bits, a warning).")
_REPLACE = flags.DEFINE_bool(
    "replace", False, "Replace the shipped models of the families shipped.")
_VERBOSE = flags.DEFINE_bool("verbose", False,
                             "Show TensorFlow's own log lines.")
flags.mark_flag_as_required("models")


def main(argv):
  """0 shipped, 2 bad models or names, 130 on Ctrl-C
  (`tf_hbd.errors.exit_on_interrupt`; no half-written model is left)."""
  del argv
  return errors.exit_on_interrupt(_ship, "ship_baselines.py",
                                  "nothing half-written was left; rerun")


def _ship():
  quiet.quiet_tensorflow(_VERBOSE.value)
  command = shlex.join(["python", "scripts/ship_baselines.py"] +
                       [a for a in sys.argv[1:] if not a.startswith(
                           ("--dest", "--verbose"))])
  try:
    ship.ship(_MODELS.value, _DEST.value, _WEIGHTS.value, _REPLACE.value,
              command=command, log=lambda line: print(line, flush=True),
              fit_dir=_FIT_DIR.value)
  except errors.HbdError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  app.run(main)
