"""Measure a decoder's gain over its codec for its model card.

  python scripts/model_card.py --model=tf_hbd/pretrained/hbd-lstm-jpeg \
      --kodak=../shared/data/kodak --bsd68=../shared/data/bsd68

JPEG models: Kodak (gray) at 0.37 bpp and BSD68 at JPEG quality 10/20/30.
JPEG 2000 models: Kodak at 0.37 bpp and BSD68 at 0.25/0.37/0.5 bpp.
Prints a Markdown table (mean bpp, codec PSNR, decoder PSNR, gain) and
writes it with per-image values as JSON (--out).
"""

import json
import time

from absl import app
from absl import flags
import numpy as np

from tf_hbd.codecs import legacy as codecs
from tf_hbd.evaluation import systems as evaluation
from tf_hbd.evaluation import metrics

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
flags.mark_flag_as_required("model")


def _measure(dec, imgs, setting, ensemble=False):
  rows = []
  t0 = time.time()
  for img in imgs:
    kind, value = setting
    enc = codecs.encode(img.gray, dec.codec, **{kind: value})
    decoded = codecs.decode(enc)
    refined = dec.refine(decoded, encoded=enc, ensemble=ensemble)
    rows.append({"image": img.name, "bpp": enc.bpp,
                 "codec_psnr": metrics.psnr(img.gray, decoded),
                 "psnr": metrics.psnr(img.gray, refined)})
  return rows, (time.time() - t0) / max(1, len(imgs))


def learning_curve(log_path):
  """Markdown rows: epoch, batches, blocks, training hours, validation gain."""
  with open(log_path) as f:
    log = json.load(f)
  lines = ["| epoch | batches | blocks (M) | training hours | validation PSNR"
           " | codec PSNR | gain (dB) |", "|---|---|---|---|---|---|---|"]
  for row in log.get("epochs", []):
    lines.append(
        f"| {row['epoch']} | {row['step']} | "
        f"{row['step'] * log['batch_size'] / 1e6:.2f} | "
        f"{row['time_s'] / 3600:.2f} | {row['val_psnr']:.3f} | "
        f"{row['codec_psnr']:.3f} | {row['val_gain_db']:+.3f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  if _LOG.value:
    print("Learning curve (" + _LOG.value + "):\n")
    print(learning_curve(_LOG.value) + "\n")
  dec = evaluation.load_trained_decoder(_MODEL.value)
  limit = _MAX.value or None
  sets = [("Kodak (gray)", _KODAK.value, ("bpp", 0.37))]
  if dec.codec == "jpeg":
    sets += [("BSD68", _BSD68.value, ("quality", q)) for q in (10, 20, 30)]
  else:
    sets += [("BSD68", _BSD68.value, ("bpp", b)) for b in (0.25, 0.37, 0.5)]
  cache = {}
  out = {"model": dec.path, "label": dec.label, "codec": dec.codec,
         "ensemble": _ENSEMBLE.value, "results": []}
  print(f"{dec.label} ({dec.path})\n")
  print("| set | setting | images | mean bpp | codec PSNR | decoder PSNR | "
        "gain (dB) | s/image |")
  print("|---|---|---|---|---|---|---|---|")
  for title, folder, setting in sets:
    if folder not in cache:
      cache[folder] = evaluation.load_eval_images(folder, limit=limit)
    rows, spi = _measure(dec, cache[folder], setting, _ENSEMBLE.value)
    mean = lambda k: float(np.mean([r[k] for r in rows]))
    res = {"set": title, "setting": f"{setting[0]}={setting[1]}",
           "images": len(rows), "bpp": mean("bpp"),
           "codec_psnr": mean("codec_psnr"), "psnr": mean("psnr"),
           "gain_db": mean("psnr") - mean("codec_psnr"),
           "seconds_per_image": spi, "per_image": rows}
    out["results"].append(res)
    print(f"| {title} | {res['setting']} | {len(rows)} | {res['bpp']:.4f} | "
          f"{res['codec_psnr']:.3f} | {res['psnr']:.3f} | "
          f"{res['gain_db']:+.3f} | {spi:.2f} |", flush=True)
  if _OUT.value:
    with open(_OUT.value, "w") as f:
      json.dump(out, f, indent=1)
  return 0


if __name__ == "__main__":
  app.run(main)
