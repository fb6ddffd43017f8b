"""Rate-distortion table of GOOG and E2E next to JPEG / JPEG 2000 at the
same bit rate (each image's achieved neural bpp), on gray images.

Prints three tables: every setting (each E2E model, each GOOG iteration
count, the encode_at_bpp rows) with bpp / PSNR / MS-SSIM next to JPEG and
JPEG 2000 at its rate; PSNR at --at_bpp of each codec's curve against JPEG
and JPEG 2000; and the long per-codec table (`tf_hbd.baselines.rd`, measured
by `tf_hbd.evaluation.systems.evaluate`).

  python scripts/rd_baselines.py --images=../shared/data/kodak \
      --targets=0.37 --out=runs/rd_baselines.json
"""

import json

from absl import app
from absl import flags

from tf_hbd import errors
from tf_hbd.baselines import rd
from tf_hbd.codecs import images

_IMAGES = flags.DEFINE_string("images", None, "Folder or glob of images.")
_GOOG_ITERATIONS = flags.DEFINE_list(
    "goog_iterations", [str(k) for k in range(1, 17)],
    "GOOG iteration counts (1/8 bpp each).")
_E2E_MODELS = flags.DEFINE_list("e2e_models", None,
                                "E2E models (default: all shipped).")
_TARGETS = flags.DEFINE_list(
    "targets", ["0.37"], "Target bpp for encode_at_bpp rows (per image "
    "choice).")
_CLASSICAL = flags.DEFINE_list("classical", ["jpeg", "jp2"],
                               "Codecs at the same bpp.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", None,
                                   "Only the first this-many images.")
_AT_BPP = flags.DEFINE_float("at_bpp", 0.37,
                             "Rate of the interpolated comparison.")
_OUT = flags.DEFINE_string("out", None,
                           "JSON file of per-image records + summary.")
flags.mark_flag_as_required("images")


def main(argv):
  """Prints (and with --out writes) the RD comparison; 0, 130 on Ctrl-C
  (`tf_hbd.errors.exit_on_interrupt`)."""
  del argv
  return errors.exit_on_interrupt(_compare, "rd_baselines.py")


def _compare():
  files = images.list_images(_IMAGES.value)[:_MAX_IMAGES.value]
  neural = rd.settings([int(k) for k in _GOOG_ITERATIONS.value],
                       _E2E_MODELS.value, [float(t) for t in _TARGETS.value])
  records = rd.evaluate(files, neural, _CLASSICAL.value,
                        log=lambda line: print(line, flush=True))
  rows = rd.summarize(records)
  print(f"\n{len(files)} images from {_IMAGES.value} (gray)\n")
  print(rd.side_by_side(rows))
  at = rd.at_rate(rows, _AT_BPP.value)
  print(f"\nInterpolated at {_AT_BPP.value:g} bpp:\n")
  print(rd.at_rate_markdown(at, _AT_BPP.value))
  print("\nAll rows:\n")
  print(rd.markdown(rows))
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump({"images": _IMAGES.value, "summary": rows, "at_rate": at,
                 "records": records}, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
