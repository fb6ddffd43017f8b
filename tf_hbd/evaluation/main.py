"""Evaluates codecs, neural baselines and trained decoders; writes the tables.

  hbd-evaluate --datasets kodak=$TF_HBD_DATA/kodak \
      --decoders runs/bptt,runs/sab --k_sweep 1,3,5,7,9,11 \
      --rd_bpps 0.2,0.3,0.4,0.5,0.6,0.8,1.0 --out_dir results/mine

(``python -m tf_hbd.evaluation`` and ``python scripts/evaluate.py ...`` in a
checkout are the same program.)

Known dataset names (kodak, cb8, cb16, cb16linear, tecnick, wikipedia, bsd68)
bring the paper's target rate and preprocessing
(`tf_hbd.evaluation.systems.BENCHMARKS`); any other folder is evaluated at
--bpp (default 0.37). The work is `tf_hbd.evaluation.study.run`.
"""

import sys

from tf_hbd import errors
from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())
# Ctrl-C while TensorFlow loads: one line, exit 130 (tf_hbd.errors).
_imported = errors.interrupt_exits_while_importing("evaluate")
try:  # released even when an import fails (the handler must not stay)
  # pylint: disable=g-import-not-at-top,wrong-import-position
  from absl import app
  from absl import flags

  from tf_hbd.evaluation import study
finally:
  _imported()

__all__ = ["main", "run"]

_DATASETS = flags.DEFINE_list(
    "datasets", None, "Datasets as NAME=FOLDER (or FOLDER); NAME may be a "
    "known benchmark (kodak, cb8, cb16, cb16linear, tecnick, wikipedia).")
_BPP = flags.DEFINE_float("bpp", 0.0, "Target bpp for Table 3 (0: the "
                          "benchmark's own, else 0.37).")
_SYSTEMS = flags.DEFINE_list(
    "systems", ["jpeg", "jp2", "goog", "e2e"], "Codec and neural-baseline "
    "rows (tf_hbd.evaluation.systems.SYSTEMS); --systems=jpeg,jp2 alone is "
    "the codec table.")
_DECODERS = flags.DEFINE_list("decoders", [], "Trained decoders: [LABEL=]DIR "
                              "(training model dir or serving export).")
_K_SWEEP = flags.DEFINE_list("k_sweep", [], "K values for Table 1, e.g. "
                             "1,3,5,7,9,11 (empty: skip).")
_RD_BPPS = flags.DEFINE_list("rd_bpps", [], "Rates of the RD curves, e.g. "
                             "0.2,0.3,0.4,0.5,0.6,0.8,1.0 (empty: skip).")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "At most N images per "
                                   "dataset (0: all).")
_MAX_SIDE = flags.DEFINE_integer("max_side", 0, "Downsample so the longer "
                                 "side is <= N (0: benchmark default).")
_OUT_DIR = flags.DEFINE_string("out_dir", "results/latest", "Output folder "
                               "(relative paths: to the working directory).")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show TensorFlow's own log "
                              "lines.")
flags.mark_flag_as_required("datasets")


def main(argv):
  """Runs the evaluation of the flags; 0, or 1 on a refused input, 130 on
  Ctrl-C (`tf_hbd.errors.exit_on_interrupt`)."""
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  return errors.exit_on_interrupt(
      _evaluate, "evaluate", "the files reported as written are complete; "
      "rerun the same command for the rest")


def _evaluate():
  """The evaluation of the flags; 0, or 1 on a refused input."""
  try:
    datasets = [study.parse_dataset(s, _BPP.value, _MAX_SIDE.value)
                for s in _DATASETS.value]
    artifacts = study.run(
        datasets, _OUT_DIR.value, systems=_SYSTEMS.value,
        decoders=_DECODERS.value, k_sweep=[int(k) for k in _K_SWEEP.value],
        rd_bpps=[float(b) for b in _RD_BPPS.value],
        max_images=_MAX_IMAGES.value or None)
  except (errors.HbdError, FileNotFoundError) as e:
    print(f"evaluate: error: {e}", file=sys.stderr)
    return 1
  for name, path in artifacts.items():
    print(f"wrote {name}: {path}")
  return 0


def run(argv=None):
  """Entry point of ``hbd-evaluate``, ``python -m tf_hbd.evaluation`` and
  ``scripts/evaluate.py``: parses the flags (``--help`` lists them), exits."""
  quiet.run_app(main, __name__, argv, program="evaluate")


if __name__ == "__main__":
  app.run(main)
