"""Rate-distortion points of the neural baselines next to JPEG and JPEG 2000.

For every image and every neural setting (a GOOG iteration count, an E2E
model), the neural file is written and decoded for real; JPEG and JPEG 2000
are then encoded with `tf_hbd.codecs.encode` at that image's achieved neural
bit rate (highest quality whose bpp does not exceed it), so each row compares
the codecs at (almost) the same rate. Metrics: `tf_hbd.metrics.all_metrics`
(8-bit, full image). Used by ``scripts/rd_baselines.py``.
"""

import time
from typing import Callable, Optional, Sequence

import numpy as np

from tf_hbd import baselines
from tf_hbd import codecs
from tf_hbd import images
from tf_hbd import metrics
from tf_hbd.baselines import codec_base

__all__ = ["settings", "evaluate", "summarize", "markdown"]


def settings(goog_iterations: Sequence[int] = (2, 3, 4),
             e2e_models: Optional[Sequence[str]] = None) -> list:
  """[(label, model name, GOOG iterations or None)] of the shipped models."""
  out = []
  for name in baselines.available("goog"):
    out += [(f"{name} k={k}", name, int(k)) for k in goog_iterations]
  for name in (baselines.available("e2e") if e2e_models is None else
               e2e_models):
    out.append((name, name, None))
  return out


def _score(reference, decoded):
  m = metrics.all_metrics(reference, decoded)
  return {"psnr": m["psnr"], "ssim": m["ssim"], "ms-ssim": m["ms-ssim"]}


def evaluate(files: Sequence[str], neural: Sequence[tuple],
             classical: Sequence[str] = codecs.CODECS,
             log: Callable[[str], None] = print) -> list:
  """Per-image records of every neural setting and the classical codecs.

  Args:
    files: image files (converted to gray).
    neural: settings as returned by `settings`.
    classical: codecs encoded at each neural file's bpp.
    log: progress lines.

  Returns:
    list of dicts: ``image``, ``setting`` (the neural label), ``codec``
    (the model name, or "jpeg"/"jp2"), ``bpp``, ``psnr``, ``ssim``,
    ``ms-ssim``, and for neural rows ``encode_s``/``decode_s``.
  """
  records = []
  for path in files:
    gray = images.load_image(path).gray
    goog_codes = {}
    for label, name, iterations in neural:
      codec = baselines.load(name)
      t0 = time.time()
      if iterations is None:
        data = codec.compress(gray)
      else:
        k_max = max(k for _, n, k in neural if n == name)
        if name not in goog_codes:
          goog_codes[name] = codec.codes(gray, k_max)
        data = codec.pack(gray.shape, goog_codes[name], iterations)
      t1 = time.time()
      decoded = codec.decompress(data, path)
      t2 = time.time()
      bpp = codec_base.bpp_of(data, gray.shape)
      row = {"image": path, "setting": label, "codec": name, "bpp": bpp,
             **_score(gray, decoded), "encode_s": t1 - t0,
             "decode_s": t2 - t1}
      records.append(row)
      for other in classical:
        dec, enc = codecs.roundtrip(gray, other, bpp=bpp)
        records.append({"image": path, "setting": label, "codec": other,
                        "bpp": enc.bpp, **_score(gray, dec)})
    log(f"{path}: " + ", ".join(
        f"{r['setting']}={r['bpp']:.3f}bpp/{r['psnr']:.2f}dB"
        for r in records if r["image"] == path and r["codec"] not in
        classical))
  return records


def summarize(records: Sequence[dict]) -> list:
  """Means over images per (setting, codec), in first-seen order."""
  keys = []
  for r in records:
    if (r["setting"], r["codec"]) not in keys:
      keys.append((r["setting"], r["codec"]))
  rows = []
  for setting, codec in keys:
    sel = [r for r in records if r["setting"] == setting and
           r["codec"] == codec]
    row = {"setting": setting, "codec": codec, "images": len(sel)}
    for k in ("bpp", "psnr", "ssim", "ms-ssim", "encode_s", "decode_s"):
      if k in sel[0]:
        row[k] = float(np.mean([r[k] for r in sel]))
    rows.append(row)
  return rows


def markdown(rows: Sequence[dict]) -> str:
  """The summary as a markdown table."""
  lines = ["| setting | codec | bpp | PSNR (dB) | SSIM | MS-SSIM |",
           "|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(f"| {r['setting']} | {r['codec']} | {r['bpp']:.4f} | "
                 f"{r['psnr']:.3f} | {r['ssim']:.4f} | {r['ms-ssim']:.4f} |")
  return "\n".join(lines)
