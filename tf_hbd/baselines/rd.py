"""Rate-distortion points of the neural baselines next to JPEG and JPEG 2000.

For every image and every neural setting (a GOOG iteration count, an E2E
model), the neural file is written and decoded for real; JPEG and JPEG 2000
are then encoded with `tf_hbd.codecs.legacy.encode` at that image's achieved neural
bit rate (highest quality whose bpp does not exceed it), so each row compares
the codecs at (almost) the same rate. The measuring is
`tf_hbd.evaluation.systems.evaluate` (metrics: `tf_hbd.evaluation.metrics.all_metrics`,
8-bit, full image); this module names the settings and lays out the tables.
Used by ``scripts/rd_baselines.py``, for the shipped models or for models
that are not shipped (`tf_hbd.baselines.use`, `tf_hbd.baselines.folders`:
a training campaign's exports and snapshots); `compressai_docs` and
`report_markdown` lay out its output files.
"""

from typing import Callable, Optional, Sequence

import numpy as np

from tf_hbd import baselines
from tf_hbd.codecs import legacy as codecs
from tf_hbd.evaluation import systems as evaluation

__all__ = ["settings", "systems", "evaluate", "summarize", "markdown",
           "side_by_side", "at_rate", "at_rate_markdown", "INTERPOLATION",
           "compressai_docs", "report_markdown"]

INTERPOLATION = (
    "linear in bpp between the two neighbouring points of the codec's "
    "curve: the mean (bpp, PSNR) of each fixed setting (each E2E model, each "
    "GOOG iteration count; for JPEG / JPEG 2000 each row at a neural rate), "
    "sorted by bpp and kept only while PSNR increases; none outside the "
    "measured range")


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


def systems(neural: Sequence[tuple],
            classical: Sequence[str] = codecs.CODECS) -> list:
  """The `tf_hbd.evaluation.systems` of `evaluate`, in order.

  Returns:
    [(system, setting label, codec or None)]: each neural setting (codec
    None: its family is found per image) followed by every classical codec
    at that setting's rate on each image.
  """
  k_max = {}
  for _, name, iterations, _ in neural:
    if iterations:
      k_max[name] = max(k_max.get(name, 0), int(iterations))
  out = []
  for label, name, iterations, target in neural:
    mine = evaluation.neural_system(name, iterations=iterations, target=target,
                                    label=label, codes_for=k_max.get(name),
                                    details=True)
    out.append((mine, label, None))
    for other in classical:
      out.append((evaluation.at_rate_of(other, label, f"{label} / {other}"),
                  label, other))
  return out


def evaluate(files: Sequence[str], neural: Sequence[tuple],
             classical: Sequence[str] = codecs.CODECS,
             log: Callable[[str], None] = print) -> list:
  """Per-image records of every neural setting and the classical codecs.

  One `tf_hbd.evaluation.systems.evaluate` over `systems` (the neural
  settings at their own rates, the codecs at each one's rate per image).

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
  plan = systems(neural, classical)
  labels = {s.name for s, _, codec in plan if codec is None}

  def log_image(path, _, rows):
    log(f"{path}: " + ", ".join(
        f"{name}={r['bpp']:.3f}bpp/{r['psnr']:.2f}dB"
        for name, r in rows.items() if name in labels))

  imgs = evaluation.load_eval_images(list(files), name_by="path")
  results = evaluation.evaluate(imgs, [s for s, _, _ in plan], [None],
                                on_image=log_image)
  records = []
  for i in range(len(imgs)):
    for s, label, codec in plan:
      r = dict(results[s.name][i])
      head = {"image": r.pop("image"), "setting": label,
              "codec": r.pop("codec", codec)}
      if "model" in r:
        head["model"] = r.pop("model")
      records.append({**head, **r})
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


_TITLES = {"e2e": "E2E", "goog": "GOOG", "jpeg": "JPEG", "jp2": "JPEG 2000"}


def compressai_docs(rows: Sequence[dict], at: Sequence[dict],
                    bpp: float = 0.37, dataset: str = "") -> list:
  """One CompressAI-style JSON document per curve.

  Each neural family, and each classical codec at that family's rates, is a
  curve: ``{"name", "description", "dataset", "results": {"bpp", "psnr",
  "ssim", "ms-ssim", "setting", ...}, "at_bpp": {...}}``, its points being
  the fixed settings (target rows left out) sorted by bpp; neural curves
  add ``models`` (and GOOG's ``iterations``); ``at_bpp`` is the codec's
  `at_rate` entry at `bpp` (how: `INTERPOLATION`). `scripts/plot_rd.py`
  draws them.

  Args:
    rows: `summarize` output.
    at: `at_rate(rows, bpp)`.
    bpp: the rate of `at`.
    dataset: recorded in each document.
  """
  fixed = [r for r in rows if "@" not in r["setting"]]
  family_of = {r["setting"]: r["codec"] for r in fixed
               if r["codec"] not in ("jpeg", "jp2")}
  curves = {}
  for r in fixed:
    family = family_of.get(r["setting"])
    if family is None:
      continue
    key = (r["codec"], family)
    curves.setdefault(key, []).append(r)
  at_of = {a["codec"]: dict(a, bpp=bpp, interpolation=INTERPOLATION)
           for a in at}
  docs = []
  for (codec, family), pts in curves.items():
    pts = sorted(pts, key=lambda r: r["bpp"])
    neural = codec == family
    results = {k: [r[k] for r in pts] for k in ("bpp", "psnr", "ssim",
                                                "ms-ssim")}
    results["setting"] = [r["setting"] for r in pts]
    if neural:
      results["models"] = [r.get("models", [r["setting"]])[0] for r in pts]
      if "iterations" in pts[0]:
        results["iterations"] = [r["iterations"] for r in pts]
    name = (_TITLES.get(codec, codec) if neural else
            f"{_TITLES.get(codec, codec)} at {_TITLES[family]} rates")
    docs.append({
        "name": name,
        "description": (f"{name}: real files, bpp = 8 * bytes / pixels "
                        "(header included); mean over images" +
                        ("" if neural else f"; {codec} encoded at each "
                         f"image's {_TITLES[family]} rate (highest setting "
                         "not above it)")),
        "dataset": dataset, "results": results,
        "at_bpp": at_of.get(codec)})
  return docs


def report_markdown(rows: Sequence[dict], bpp: float = 0.37,
                    header: str = "") -> str:
  """The RD report: `side_by_side`, `at_rate_markdown` and how it was
  interpolated (`INTERPOLATION`), under an optional header line."""
  parts = [header] if header else []
  parts += [side_by_side(rows), "",
            f"PSNR at {bpp:g} bpp, interpolated on each codec's curve "
            f"({INTERPOLATION}):", "",
            at_rate_markdown(at_rate(rows, bpp), bpp), ""]
  return "\n".join(parts)
