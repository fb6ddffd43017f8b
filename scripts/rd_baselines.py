"""Rate-distortion table of GOOG and E2E next to JPEG / JPEG 2000 at the
same bit rate (each image's achieved neural bpp), on gray images.

Prints three tables: every setting (each E2E model, each GOOG iteration
count, the encode_at_bpp rows) with bpp / PSNR / MS-SSIM next to JPEG and
JPEG 2000 at its rate; PSNR at --at_bpp of each codec's curve against JPEG
and JPEG 2000; and the long per-codec table.

  python scripts/rd_baselines.py --images=../shared/data/kodak \
      --targets=0.37 --out=runs/rd_baselines.json
"""

import json
import os
import sys

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("images", None, "Folder or glob of images.")
flags.DEFINE_list("goog_iterations", [str(k) for k in range(1, 17)],
                  "GOOG iteration counts (1/8 bpp each).")
flags.DEFINE_list("e2e_models", None, "E2E models (default: all shipped).")
flags.DEFINE_list("targets", ["0.37"],
                  "Target bpp for encode_at_bpp rows (per image choice).")
flags.DEFINE_list("classical", ["jpeg", "jp2"], "Codecs at the same bpp.")
flags.DEFINE_integer("max_images", None, "Only the first this-many images.")
flags.DEFINE_float("at_bpp", 0.37, "Rate of the interpolated comparison.")
flags.DEFINE_string("out", None, "JSON file of per-image records + summary.")
flags.mark_flag_as_required("images")


def main(argv):
  del argv
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import images
  from tf_hbd.baselines import rd
  # pylint: enable=g-import-not-at-top
  files = images.list_images(FLAGS.images)[:FLAGS.max_images]
  neural = rd.settings([int(k) for k in FLAGS.goog_iterations],
                       FLAGS.e2e_models, [float(t) for t in FLAGS.targets])
  records = rd.evaluate(files, neural, FLAGS.classical,
                        log=lambda line: print(line, flush=True))
  rows = rd.summarize(records)
  print(f"\n{len(files)} images from {FLAGS.images} (gray)\n")
  print(rd.side_by_side(rows))
  at = rd.at_rate(rows, FLAGS.at_bpp)
  print(f"\nInterpolated at {FLAGS.at_bpp:g} bpp:\n")
  print(rd.at_rate_markdown(at, FLAGS.at_bpp))
  print("\nAll rows:\n")
  print(rd.markdown(rows))
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump({"images": FLAGS.images, "summary": rows, "at_rate": at,
                 "records": records}, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
