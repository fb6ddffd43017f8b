"""A trained decoder's gain over its codec, as its model card reports it.

`card_sets(codec, kodak, bsd68)` names the measurements of a model card:
JPEG decoders on Kodak (gray) at 0.37 bpp and BSD68 at JPEG quality
10/20/30; JPEG 2000 decoders on Kodak at 0.37 bpp and BSD68 at 0.25/0.37/0.5
bpp. `gain(decoder, images, point)` measures one of them with
`tf_hbd.evaluation.systems.evaluate` (the codec and the decoder on the same
bitstream, PSNR only). Used by ``scripts/model_card.py``.
"""

import json
import time
from typing import List, Sequence

import numpy as np

from tf_hbd.evaluation import metrics
from tf_hbd.evaluation import systems as evaluation

__all__ = ["card_sets", "gain", "gain_markdown_row", "GAIN_HEADER",
           "learning_curve"]

GAIN_HEADER = ("| set | setting | images | mean bpp | codec PSNR | decoder "
               "PSNR | gain (dB) | s/image |\n"
               "|---|---|---|---|---|---|---|---|")


def card_sets(codec: str, kodak: str, bsd68: str) -> List[tuple]:
  """[(title, folder, `Point`)] of a model card for a decoder of `codec`."""
  sets = [("Kodak (gray)", kodak, evaluation.Point(bpp=0.37))]
  if codec == "jpeg":
    sets += [("BSD68", bsd68, evaluation.Point(quality=q))
             for q in (10, 20, 30)]
  else:
    sets += [("BSD68", bsd68, evaluation.Point(bpp=b))
             for b in (0.25, 0.37, 0.5)]
  return sets


def _psnr(reference, image):
  return {"psnr": metrics.psnr(reference, image)}


def gain(dec: evaluation.LoadedDecoder, imgs: Sequence, point, title: str,
         ensemble: bool = False) -> dict:
  """The decoder's and its codec's PSNR on `imgs` at `point`.

  Returns:
    {set, setting ("bpp=0.37", "quality=10"), images, bpp, codec_psnr, psnr,
    gain_db, seconds_per_image (codec, decoder and PSNR), per_image: [{image,
    bpp, codec_psnr, psnr}]}.
  """
  point = evaluation.as_point(point)
  t0 = time.time()
  res = evaluation.evaluate(
      imgs, [evaluation.codec_system(dec.codec, name="codec"),
             evaluation.trained_decoder_system(dec, label="decoder",
                                               ensemble=ensemble)],
      [point], measure=_psnr)
  spi = (time.time() - t0) / max(1, len(imgs))
  rows = [{"image": c["image"], "bpp": c["bpp"], "codec_psnr": c["psnr"],
           "psnr": d["psnr"]} for c, d in zip(res["codec"], res["decoder"])]
  mean = lambda k: float(np.mean([r[k] for r in rows]))
  (kind, value), = point.codec_kwargs().items()
  return {"set": title, "setting": f"{kind}={value}", "images": len(rows),
          "bpp": mean("bpp"), "codec_psnr": mean("codec_psnr"),
          "psnr": mean("psnr"), "gain_db": mean("psnr") - mean("codec_psnr"),
          "seconds_per_image": spi, "per_image": rows}


def gain_markdown_row(res: dict) -> str:
  """One row of the `GAIN_HEADER` table."""
  return (f"| {res['set']} | {res['setting']} | {res['images']} | "
          f"{res['bpp']:.4f} | {res['codec_psnr']:.3f} | {res['psnr']:.3f} | "
          f"{res['gain_db']:+.3f} | {res['seconds_per_image']:.2f} |")


def learning_curve(log_path: str) -> str:
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
