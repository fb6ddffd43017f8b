"""Parameter counts of every state cell at 512 units, for d = 8 and d = 64.

Prints a markdown table (the decoder's default options: position input and
residual on, no embedding bias; the residual adds no parameters). Columns:
embed = W_1..W_9 (+ position table), cell = Theta_s, readout = U, c.

Usage: .venv/bin/python benchmarks/param_counts.py [--units 512]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tf_hbd.model import decoder  # pylint: disable=g-import-not-at-top

VARIANTS = [
    ("lstm", {}, False), ("lstm (untied)", {"tied": False}, False),
    ("gru", {}, False), ("gru (untied)", {"tied": False}, False),
    ("delta", {}, False), ("elman", {}, False), ("mlp", {}, False),
    ("sne-lstm", {}, True),
]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--units", type=int, default=512)
  args = parser.parse_args(argv)
  print("| cell | d | embed | cell | readout | total |")
  print("|---|---|---|---|---|---|")
  for d in (8, 64):
    for label, options, sne in VARIANTS:
      cell = label.split(" ")[0].replace("sne-", "")
      model = decoder.build_decoder(cell=cell, units=args.units, patch_size=d,
                                    cell_options=options, sne=sne, seed=None)
      c = decoder.param_counts(model)
      print(f"| {label} | {d} | {c['embed']:,} | {c['cell']:,} | "
            f"{c['readout']:,} | {c['total']:,} |")
      del model
  return 0


if __name__ == "__main__":
  sys.exit(main())
