"""Checks or regenerates the golden PSNR / bpp figures (tf_hbd.evaluation.golden).

  python scripts/golden.py            # compare with tests/golden.json
  python scripts/golden.py --write    # regenerate it (after replacing a
                                      # shipped model or a codec on purpose)

Exit code 0 when all figures match (or were written), 1 otherwise.
"""

import json
import os
import sys

from tf_hbd import arguments  # the standard library only

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_FILE = os.path.join(_ROOT, "tests", "golden.json")


def main(argv=None):
  parser = arguments.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--write", action="store_true",
                      help="write the computed figures to --file")
  parser.add_argument("--file", default=GOLDEN_FILE)
  parser.add_argument("--verbose", action="store_true",
                      help="show TensorFlow's own log lines")
  args = parser.parse_args(argv)
  from tf_hbd import quiet  # pylint: disable=g-import-not-at-top
  quiet.quiet_tensorflow(args.verbose)
  from tf_hbd.evaluation import golden  # pylint: disable=g-import-not-at-top
  got = golden.compute()
  if args.write:
    with open(args.file, "w") as f:
      json.dump(got, f, indent=1, sort_keys=True)
      f.write("\n")
    print(f"wrote {len(got)} figures to {args.file}")
    return 0
  with open(args.file) as f:
    expected = json.load(f)
  problems = golden.compare(expected, got)
  for line in problems:
    print(line)
  print(f"{len(got)} figures, {len(problems)} outside tolerance")
  return 1 if problems else 0


if __name__ == "__main__":
  sys.exit(main())
