"""Compresses an image with a shipped neural codec (GOOG, E2E), or decodes.

  python scripts/neural_codec.py compress IN.png OUT.bin --codec=e2e --bpp=0.37
  python scripts/neural_codec.py compress IN.png OUT.bin --codec=goog \
      --iterations=3
  python scripts/neural_codec.py decompress IN.bin OUT.png
  python scripts/neural_codec.py list

Colour input is converted to 8-bit gray. Exit status 1 with a one-line message
for bad input (missing/corrupt image or bitstream, impossible option).
"""

import sys

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd import baselines
from tf_hbd import errors
from tf_hbd.baselines import files

_CODEC = flags.DEFINE_string("codec", "e2e",
                             "Family (e2e, goog) or shipped model name.")
_BPP = flags.DEFINE_float("bpp", None,
                          "Target bit rate (largest setting <= it).")
_ITERATIONS = flags.DEFINE_integer("iterations", None,
                                   "GOOG: number of iterations, 1..16.")

_USAGE = ("usage: neural_codec.py compress IN OUT [--codec=..] [--bpp=..|"
          "--iterations=..] | decompress IN OUT | list")

_VERBOSE = flags.DEFINE_bool("verbose", False,
                               "Show TensorFlow's own log lines.")


def main(argv):
  """compress / decompress / list; 0, 1 on a bad file, 2 on bad usage, 130
  on Ctrl-C (`tf_hbd.errors.exit_on_interrupt`)."""
  return errors.exit_on_interrupt(lambda: _command(argv), "neural_codec.py")


def _command(argv):
  args = list(argv[1:])
  if args == ["list"]:
    for name in baselines.available():
      print(name)
    return 0
  if len(args) != 3 or args[0] not in ("compress", "decompress"):
    print(_USAGE, file=sys.stderr)
    return 2
  command, src, dst = args
  try:
    if command == "compress":
      info = files.compress_file(src, dst, _CODEC.value, bpp=_BPP.value,
                                 iterations=_ITERATIONS.value)
      print(f"{dst}: {info['bytes']} bytes, {info['bpp']:.4f} bpp, model "
            f"{info['model']}, {info['shape'][1]}x{info['shape'][0]}, "
            f"PSNR {info['psnr']:.2f} dB")
    else:
      info = files.decompress_file(src, dst)
      print(f"{dst}: {info['shape'][1]}x{info['shape'][0]} from model "
            f"{info['model']}")
  except errors.HbdError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  app.run(main)
