"""Redraw Figure 1 (validation PSNR per epoch) and the convergence table.

  python scripts/plot_curves.py --model_dirs=runs/reproduce/cpu/* --out_dir=results/cpu

Reads each training run's log.json; no model is loaded.
"""

from absl import app
from absl import flags

from tf_hbd.evaluation import study

_DIRS = flags.DEFINE_list("model_dirs", None, "Training model dirs, "
                          "[LABEL=]DIR.")
_OUT = flags.DEFINE_string("out_dir", "results/latest", "Output folder.")
flags.mark_flag_as_required("model_dirs")


def main(argv):
  dirs = list(_DIRS.value) + list(argv[1:])  # shell globs expand to argv
  for name, path in study.write_figure1(study.load_logs(dirs),
                                        _OUT.value).items():
    print(f"wrote {name}: {path}")
  return 0


if __name__ == "__main__":
  app.run(main)
