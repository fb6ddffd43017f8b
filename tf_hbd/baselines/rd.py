"""Rate-distortion points of the neural baselines next to JPEG and JPEG 2000.

For every image and every neural setting (a GOOG iteration count, an E2E
model), the neural file is written and decoded for real; JPEG and JPEG 2000
are then encoded with `tf_hbd.codecs.legacy.encode` at that image's achieved neural
bit rate (highest quality whose bpp does not exceed it), so each row compares
the codecs at (almost) the same rate. Metrics: `tf_hbd.evaluation.metrics.all_metrics`
(8-bit, full image). Used by ``scripts/rd_baselines.py``.
"""

import time
from typing import Callable, Optional, Sequence

import numpy as np

from tf_hbd import baselines
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import images
from tf_hbd.evaluation import metrics
from tf_hbd.baselines import codec_base
from tf_hbd.baselines import container

__all__ = ["settings", "evaluate", "summarize", "markdown", "side_by_side",
           "at_rate", "at_rate_markdown"]


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


def side_by_side(rows: Sequence[dict]) -> str:
  """One line per neural setting with JPEG and JPEG 2000 at its rate.

  Columns: setting, bpp, PSNR, MS-SSIM of the neural codec, then bpp / PSNR
  / MS-SSIM of each classical codec encoded at each image's neural rate
  (the closing-note table of issue 13).
  """
  by_setting = {}
  for r in rows:
    by_setting.setdefault(r["setting"], {})[r["codec"]] = r
  classical = [c for c in ("jpeg", "jp2")
               if any(c in v for v in by_setting.values())]
  head = "| setting | bpp | PSNR (dB) | MS-SSIM |" + "".join(
      f" {c.upper()} bpp / PSNR / MS-SSIM |" for c in classical)
  lines = [head, "|---" * (4 + len(classical)) + "|"]
  for setting, codecs_ in by_setting.items():
    mine = [v for k, v in codecs_.items() if k not in ("jpeg", "jp2")]
    if not mine:
      continue
    m = mine[0]
    line = (f"| {setting} | {m['bpp']:.4f} | {m['psnr']:.2f} | "
            f"{m['ms-ssim']:.4f} |")
    for c in classical:
      o = codecs_.get(c)
      line += (f" {o['bpp']:.4f} / {o['psnr']:.2f} / {o['ms-ssim']:.4f} |"
               if o else " - |")
    lines.append(line)
  return "\n".join(lines)


def at_rate(rows: Sequence[dict], bpp: float = 0.37) -> list:
  """PSNR / MS-SSIM of each codec at `bpp`, interpolated along its curve.

  For each neural family, the curve is its fixed settings (every E2E model,
  every GOOG iteration count; target rows are left out), sorted by rate,
  kept only while PSNR increases (a dominated point is not a setting anyone
  would use); JPEG and JPEG 2000 use all their rows. Linear interpolation in
  bpp; None outside the measured range.

  Returns:
    list of dicts: ``codec``, ``psnr``, ``ms-ssim``, ``points`` (settings on
    the curve), ``monotone`` (whether PSNR increased at every rate step of
    all its settings), and for neural codecs ``vs_jpeg_db`` and
    ``vs_jp2_db``.
  """
  fixed = [r for r in rows if "@" not in r["setting"]]
  curves = {}
  for r in fixed:
    curves.setdefault(r["codec"], []).append(r)
  out = {}
  for codec, pts in curves.items():
    pts = sorted(pts, key=lambda r: r["bpp"])
    monotone = all(b["psnr"] > a["psnr"] for a, b in zip(pts, pts[1:]))
    hull = []
    for r in pts:
      if not hull or r["psnr"] > hull[-1]["psnr"]:
        hull.append(r)
    xs = [r["bpp"] for r in hull]
    res = {"codec": codec, "points": len(hull), "monotone": monotone}
    for k in ("psnr", "ms-ssim"):
      res[k] = (float(np.interp(bpp, xs, [r[k] for r in hull]))
                if xs and xs[0] <= bpp <= xs[-1] else None)
    out[codec] = res
  for codec, res in out.items():
    if codec in ("jpeg", "jp2"):
      continue
    for ref in ("jpeg", "jp2"):
      theirs = out.get(ref, {}).get("psnr")
      res[f"vs_{ref}_db"] = (None if theirs is None or res["psnr"] is None
                             else res["psnr"] - theirs)
  return list(out.values())


def at_rate_markdown(summary: Sequence[dict], bpp: float = 0.37) -> str:
  """`at_rate` as a markdown table."""
  def fmt(v, spec):
    return "-" if v is None else format(v, spec)
  lines = [f"| codec | PSNR at {bpp:g} bpp | MS-SSIM | vs JPEG (dB) | "
           "vs JPEG 2000 (dB) | PSNR rises with rate |",
           "|---|---|---|---|---|---|"]
  for r in summary:
    lines.append(
        f"| {r['codec']} | {fmt(r['psnr'], '.2f')} | "
        f"{fmt(r['ms-ssim'], '.4f')} | {fmt(r.get('vs_jpeg_db'), '+.2f')} | "
        f"{fmt(r.get('vs_jp2_db'), '+.2f')} | "
        f"{'yes' if r['monotone'] else 'no'} |")
  return "\n".join(lines)
