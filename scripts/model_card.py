"""Measure a decoder's gain over its codec for its model card.

  python scripts/model_card.py --model=tf_hbd/pretrained/hbd-lstm-jpeg \
      --kodak=../shared/data/kodak --bsd68=../shared/data/bsd68

JPEG models: Kodak (gray) at 0.37 bpp and BSD68 at JPEG quality 10/20/30.
JPEG 2000 models: Kodak at 0.37 bpp and BSD68 at 0.25/0.37/0.5 bpp
(`tf_hbd.evaluation.cards`). Prints a Markdown table (mean bpp, codec PSNR,
decoder PSNR, gain) and writes it with per-image values as JSON (--out).
TensorFlow's own log lines are off unless --verbose.
"""

import json

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd.evaluation import cards
from tf_hbd.evaluation import systems as evaluation

_MODEL = flags.DEFINE_string("model", None, "Serving export or model dir.")
_KODAK = flags.DEFINE_string("kodak", "../shared/data/kodak", "Kodak folder.")
_BSD68 = flags.DEFINE_string("bsd68", "../shared/data/bsd68", "BSD68 folder.")
_OUT = flags.DEFINE_string("out", "", "JSON output (optional).")
_MAX = flags.DEFINE_integer("max_images", 0, "At most N images per set.")
_LOG = flags.DEFINE_string(
    "log", "", "Also print the learning curve (validation gain against "
    "training hours) from this training log.json.")
_ENSEMBLE = flags.DEFINE_bool("ensemble", False, "Also measure the "
                              "geometric self-ensemble (8x the time).")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show TensorFlow's own log "
                              "lines.")
flags.mark_flag_as_required("model")


def main(argv):
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  if _LOG.value:
    print("Learning curve (" + _LOG.value + "):\n")
    print(cards.learning_curve(_LOG.value) + "\n")
  dec = evaluation.load_trained_decoder(_MODEL.value)
  loaded = {}
  out = {"model": dec.path, "label": dec.label, "codec": dec.codec,
         "ensemble": _ENSEMBLE.value, "results": []}
  print(f"{dec.label} ({dec.path})\n")
  print(cards.GAIN_HEADER)
  for title, folder, point in cards.card_sets(dec.codec, _KODAK.value,
                                              _BSD68.value):
    if folder not in loaded:
      loaded[folder] = evaluation.load_eval_images(folder,
                                                   limit=_MAX.value or None)
    res = cards.gain(dec, loaded[folder], point, title, _ENSEMBLE.value)
    out["results"].append(res)
    print(cards.gain_markdown_row(res), flush=True)
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(out, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
