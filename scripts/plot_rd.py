"""Redraw a rate-distortion figure from result JSON files.

  python scripts/plot_rd.py results/cpu/rd/kodak/*.json --out=results/cpu/rd_kodak.png
"""

from absl import app
from absl import flags

from tf_hbd.evaluation import plots

_OUT = flags.DEFINE_string("out", "rd.png", "Output PNG.")
_TITLE = flags.DEFINE_string("title", "", "Figure title.")
_METRICS = flags.DEFINE_list("metrics", ["psnr", "ms-ssim"], "Panels.")


def main(argv):
  files = argv[1:]
  if not files:
    raise app.UsageError("give result JSON files")
  print("wrote", plots.plot_rd(files, _OUT.value, _METRICS.value,
                               _TITLE.value))
  return 0


if __name__ == "__main__":
  app.run(main)
