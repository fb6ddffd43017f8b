"""Exports a trained GOOG model with entropy-coder tables fitted on images.

The model comes from a campaign snapshot or run (`tf_hbd.baselines.folders`,
which needs its checkpoint); the tables (`tf_hbd.baselines.goog_bits`) are
fitted on the codes of all 16 iterations of the images of --fit_dir (the
training images: never bsd68 or kodak) and stored in the SavedModel, whose
files are then entropy coded (`GoogCodec`).

Usage:
  python scripts/goog_tables.py --model=campaigns/baselines/goog \
      --fit_dir=/work/shared/data/train400 --out=/tmp/goog-ec/goog

Exit codes: 0 done, 2 bad input (a one-line message says what to do).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_hbd import errors  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import folders  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import training  # pylint: disable=g-import-not-at-top


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True,
                      help="GOOG campaign snapshot or run folder")
  parser.add_argument("--fit_dir", required=True,
                      help="training images to fit the tables on")
  parser.add_argument("--max_images", type=int, default=400)
  parser.add_argument("--weights", choices=goog.WEIGHT_DTYPES,
                      default="float32", help="how the kernels are stored "
                      "(goog.stored_twin)")
  parser.add_argument("--out", required=True,
                      help="the SavedModel folder to write (named by the "
                      "model name written into files)")
  args = parser.parse_args(argv)
  try:
    training.check_training_folder(args.fit_dir)
    found = folders.find(args.model)
    if len(found) != 1 or found[0].family != "goog":
      raise errors.HbdError(f"{args.model}: expected one GOOG model")
    model = folders.build_model(found[0])
    fit = training.load_validation_images(args.fit_dir, args.max_images)
  except (errors.HbdError, OSError, ValueError) as e:
    print(f"goog_tables: {e}", file=sys.stderr)
    return 2
  if os.path.exists(args.out):
    print(f"goog_tables: {args.out} exists; choose a new --out",
          file=sys.stderr)
    return 2
  goog.export(model, args.out, fit_images=fit, weights=args.weights,
              fit_source=f"{len(fit)} images of "
              f"{os.path.normpath(args.fit_dir)}")
  print(f"wrote {args.out} (tables fitted on {len(fit)} images of "
        f"{args.fit_dir})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
