"""Do-no-harm check of the shipped decoders (or any exported decoder).

Every image of the stress set (`tf_hbd.data.stress_set`) and, where present, every
Kodak and BSD68 image is compressed at every setting (JPEG quality 5..95,
JPEG 2000 0.1..2 bpp), refined, and compared with its decoded input. Prints
the worst image per setting, the flat-image responses, the mean gain per
photo set, and every violation of the contract (`tf_hbd.evaluation.no_harm`).

  .venv/bin/python benchmarks/no_harm.py                    # both codecs
  .venv/bin/python benchmarks/no_harm.py --codec=jpeg --model=DIR \
      --out=runs/no_harm_jpeg.json

Exit code 0 when the contract holds everywhere, 1 otherwise.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top

from tf_hbd.data import pipelines as data_lib  # pylint: disable=g-import-not-at-top
from tf_hbd.evaluation import no_harm
from tf_hbd.inference import serving
from tf_hbd.data import stress_set

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "shared", "data")
FLAT_REPORT = (0, 1, 8, 128, 247, 255)


def _photos(folder, limit=None):
  return {f"{os.path.basename(folder)}/{im.name}": im.gray
          for im in data_lib.load_images(folder, limit=limit)}


def _report(codec, rows, sets):
  print(f"\n== {codec}: {len(rows)} image x setting pairs")
  fmt = lambda p: "exact" if p >= 999 else f"{p:.2f}"
  print("worst non-flat image per setting (PSNR refined - decoded):")
  for setting, r in sorted(no_harm.worst(rows).items()):
    print(f"  {setting:>5g}: {r.delta_db:+8.3f} dB  {r.image} "
          f"({fmt(r.psnr_decoded)} -> {fmt(r.psnr_refined)} dB, "
          f"{r.bpp:.3f} bpp)")
  print("flat images: max |refined - level| over settings (decoded: max "
        "|decoded - level|), and the worst flat image per setting:")
  for level in FLAT_REPORT:
    mine = [r for r in rows if r.image == f"flat-{level}"]
    if mine:
      print(f"  flat-{level}: max deviation "
            f"{max(r.flat_deviation for r in mine)} (decoded "
            f"{max(r.decoded_deviation for r in mine)}) over {len(mine)} "
            "settings")
  for setting in sorted({r.setting for r in rows}):
    flats = [r for r in rows if r.setting == setting and r.flat_value >= 0]
    if flats:
      r = max(flats, key=lambda r: r.flat_deviation - max(
          no_harm.FLAT_TOLERANCE, r.decoded_deviation))
      print(f"  {setting:>5g}: {r.image} refined off by up to "
            f"{r.flat_deviation} (decoded off by {r.decoded_deviation})")
  for name in sets:
    print(f"mean gain on {name}:")
    for setting in sorted({r.setting for r in rows}):
      d = [r.delta_db for r in rows
           if r.setting == setting and r.image.startswith(name + "/")]
      if d:
        print(f"  {setting:>5g}: {np.mean(d):+.3f} dB over {len(d)} images")
  bad = no_harm.failures(rows)
  print(f"violations: {len(bad)}")
  for r in bad[:40]:
    print(f"  {r.image} @ {r.setting:g}: {r.delta_db:+.3f} dB, flat "
          f"deviation {r.flat_deviation}")
  return bad


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--codec", choices=["jpeg", "jp2", "both"], default="both")
  p.add_argument("--model", default="", help="export dir (default: shipped)")
  p.add_argument("--photos", default="kodak,bsd68",
                 help="folders under ../shared/data to include (if present)")
  p.add_argument("--limit", type=int, default=0,
                 help="at most N photographs per folder (0: all)")
  p.add_argument("--settings", default="",
                 help="comma-separated settings (default: stress_set)")
  p.add_argument("--out", default="", help="write the rows as JSON")
  p.add_argument("--shifts", type=int, default=0,
                 help="grid offsets to average (hbd enhance --shifts; "
                 "0: the export's own)")
  args = p.parse_args(argv)
  images = stress_set.images()
  sets = []
  for name in [x for x in args.photos.split(",") if x]:
    folder = os.path.join(SHARED, name)
    if os.path.isdir(folder):
      images.update(_photos(folder, args.limit or None))
      sets.append(name)
    else:
      print(f"({folder} not found: {name} skipped)")
  codecs_ = ["jpeg", "jp2"] if args.codec == "both" else [args.codec]
  results, all_bad = {}, []
  for codec in codecs_:
    model = (serving.load(args.model) if args.model
             else serving.load_pretrained(codec))
    settings = ([float(s) for s in args.settings.split(",")] if args.settings
                else stress_set.SETTINGS[codec])
    refine = no_harm.served_refiner(model, codec, args.shifts or None)
    rows = no_harm.check(refine, codec, images, settings)
    all_bad += _report(codec, rows, sets)
    results[codec] = [dict(vars(r), delta_db=r.delta_db, ok=r.ok)
                      for r in rows]
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=1)
  return 1 if all_bad else 0


if __name__ == "__main__":
  sys.exit(main())
