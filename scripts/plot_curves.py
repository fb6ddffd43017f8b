"""Redraw Figure 1 (validation PSNR per epoch) and the convergence table;
or the baselines' compute-scaling curves.

  python scripts/plot_curves.py --model_dirs=runs/reproduce/cpu/* --out_dir=results/cpu

Reads each training run's log.json; no model is loaded.

  python scripts/plot_curves.py --baselines=campaigns/baselines --out_dir=DIR

Reads the learning curve (curve.jsonl) of each campaign model found in the
folders given (a snapshot, a campaign run, or a folder of them;
`tf_hbd.baselines.folders`) and writes DIR/baseline_scaling.md (one table per
model: validation bpp, PSNR, MS-SSIM and the gain over JPEG at equal rate
against steps and hours) and DIR/baseline_scaling_hours.png /
DIR/baseline_scaling_steps.png (`tf_hbd.baselines.scaling`), for BUILD.md.
"""

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd.evaluation import study

_DIRS = flags.DEFINE_list("model_dirs", None, "Training model dirs, "
                          "[LABEL=]DIR.")
_BASELINES = flags.DEFINE_list(
    "baselines", None, "Campaign model folders ([LABEL=]DIR): their "
    "scaling curves instead of Figure 1.")
_OUT = flags.DEFINE_string("out_dir", "results/latest", "Output folder.")

_VERBOSE = flags.DEFINE_bool("verbose", False,
                               "Show TensorFlow's own log lines.")


def main(argv):
  if _BASELINES.value:
    # pylint: disable=g-import-not-at-top
    from tf_hbd.baselines import folders
    from tf_hbd.baselines import scaling
    # pylint: enable=g-import-not-at-top
    curves = scaling.load_curves(folders.find_all(_BASELINES.value))
    if not curves:
      raise app.UsageError("no curve.jsonl in the --baselines folders")
    for name, path in scaling.write_scaling(curves, _OUT.value).items():
      print(f"wrote {name}: {path}")
    print(scaling.scaling_markdown(curves))
    return 0
  dirs = list(_DIRS.value or []) + list(argv[1:])  # shell globs expand here
  if not dirs:
    raise app.UsageError("give --model_dirs (or --baselines)")
  for name, path in study.write_figure1(study.load_logs(dirs),
                                        _OUT.value).items():
    print(f"wrote {name}: {path}")
  return 0


if __name__ == "__main__":
  app.run(main)
