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
from tf_hbd.baselines import container

__all__ = ["settings", "evaluate", "summarize", "markdown"]


def settings(goog_iterations: Sequence[int] = (2, 3, 4),
             e2e_models: Optional[Sequence[str]] = None,
             targets: Sequence[float] = ()) -> list:
  """Neural settings [(label, model or family, GOOG iterations, target)].

  Fixed settings (every shipped GOOG model at each iteration count, each
  E2E model) have target None; for each target bpp, each family is run with
  `tf_hbd.baselines.encode_at_bpp` (largest setting not above the target,
  chosen per image).
  """
  out = []
  for name in baselines.available("goog"):
    out += [(f"{name} k={k}", name, int(k), None) for k in goog_iterations]
  for name in (baselines.available("e2e") if e2e_models is None else
               e2e_models):
    out.append((name, name, None, None))
  for target in targets:
    for family in baselines.FAMILIES:
      if baselines.available(family):
        out.append((f"{family} @{target:g}", family, None, float(target)))
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
    ("goog", "e2e", "jpeg", "jp2"), ``bpp``, ``psnr``, ``ssim``,
    ``ms-ssim``, and for neural rows ``model``, ``encode_s``, ``decode_s``
    (and GOOG's ``iterations``).
  """
  records = []
  for path in files:
    gray = images.load_image(path).gray
    goog_codes, classical_done = {}, {}
    for label, name, iterations, target in neural:
      t0 = time.time()
      if target is not None:
        _, data, _ = baselines.encode_at_bpp(name, gray, target)
        codec = baselines.load(baselines.model_of(data))
      elif iterations is None:
        codec = baselines.load(name)
        data = codec.compress(gray)
      else:
        codec = baselines.load(name)
        if name not in goog_codes:
          k_max = max(s[2] for s in neural if s[1] == name and s[2])
          goog_codes[name] = codec.codes(gray, k_max)
        data = codec.pack(gray.shape, goog_codes[name], iterations)
      t1 = time.time()
      decoded = codec.decompress(data, path)
      t2 = time.time()
      bpp = codec_base.bpp_of(data, gray.shape)
      row = {"image": path, "setting": label, "codec": codec.family,
             "model": codec.name, "bpp": bpp, **_score(gray, decoded),
             "encode_s": t1 - t0, "decode_s": t2 - t1}
      if iterations is not None or codec.family == "goog":
        row["iterations"] = container.unpack(data).params[0]
      records.append(row)
      for other in classical:
        key = (other, len(data))  # same rate as an earlier row: same result
        if key not in classical_done:
          dec, enc = codecs.roundtrip(gray, other, bpp=bpp)
          classical_done[key] = {"bpp": enc.bpp, **_score(gray, dec)}
        records.append({"image": path, "setting": label, "codec": other,
                        **classical_done[key]})
    log(f"{path}: " + ", ".join(
        f"{r['setting']}={r['bpp']:.3f}bpp/{r['psnr']:.2f}dB"
        for r in records if r["image"] == path and "encode_s" in r))
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
    for k in ("bpp", "psnr", "ssim", "ms-ssim", "encode_s", "decode_s",
              "iterations"):
      if k in sel[0]:
        row[k] = float(np.mean([r[k] for r in sel]))
    if "model" in sel[0]:
      row["models"] = sorted({r["model"] for r in sel})
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
