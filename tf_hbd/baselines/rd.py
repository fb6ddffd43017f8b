"""Rate-distortion points of the neural baselines next to JPEG and JPEG 2000.

For every image and every neural setting (a GOOG iteration count, an E2E
model), the neural file is written and decoded for real; JPEG and JPEG 2000
are then encoded with `tf_hbd.codecs.legacy.encode` at that image's achieved neural
bit rate (highest quality whose bpp does not exceed it), so each row compares
the codecs at (almost) the same rate. The measuring is
`tf_hbd.evaluation.systems.evaluate` (metrics: `tf_hbd.evaluation.metrics.all_metrics`,
8-bit, full image); this module names the settings and lays out the tables.
Those matched rows are a table, not a curve (their rates are the neural
codecs'). The reference curves of JPEG and JPEG 2000 are `reference`: each
image encoded on a fixed grid of settings (`JPEG_QUALITIES`, `JP2_BPPS`)
spanning the neural rates, bpp from the real bytes. `at_rate` reads every
codec's curve at one rate per image and averages over images (how:
`INTERPOLATION`, `tf_hbd.evaluation.rd_curves`), and `bd_psnr` gives the
Bjontegaard deltas of the neural codecs against those reference curves.
Everything after the encoding reads the per-image records only, so the
summary can be recomputed from a stored records.json.
Used by ``scripts/rd_baselines.py``, for the shipped models or for models
that are not shipped (`tf_hbd.baselines.use`, `tf_hbd.baselines.folders`:
a training campaign's exports and snapshots); `compressai_docs` and
`report_markdown` lay out its output files.
"""

from typing import Callable, Optional, Sequence

import numpy as np

from tf_hbd import baselines
from tf_hbd.codecs import legacy as codecs
from tf_hbd.evaluation import rd_curves
from tf_hbd.evaluation import systems as evaluation

__all__ = ["settings", "systems", "evaluate", "summarize", "markdown",
           "side_by_side", "JPEG_QUALITIES", "JP2_BPPS", "reference",
           "curves", "at_rate", "bd_psnr", "BD_WINDOW", "at_rate_markdown",
           "INTERPOLATION", "compressai_docs", "report_markdown"]

# The reference grids: on gray Kodak JPEG quality 1 is ~0.07-0.15 bpp and
# 95 ~2-4 bpp; JPEG 2000 at 0.05 * 2^(k/3) bpp, 0.05-2.0 (one encode at
# ratio 8 / bpp, the real rate lands near it).
JPEG_QUALITIES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60,
                  70, 80, 85, 90, 95)
JP2_BPPS = tuple(round(0.05 * 2 ** (k / 3), 4) for k in range(17))
BD_WINDOW = (0.2, 0.6)

INTERPOLATION = (
    "per image, each codec's curve (E2E: its models; GOOG: its iteration "
    "counts; JPEG / JPEG 2000: the reference grid of settings, not the rows "
    "at the neural rates) is cut to its points rising in both rate and "
    "PSNR, read at the rate by monotone piecewise cubic (PCHIP) "
    "interpolation of PSNR in log bpp, and averaged over the images; n/a "
    "unless the rate lies within every image's measured rates (no "
    "extrapolation)")


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
              "iterations", "quality"):
      if k in sel[0]:
        row[k] = float(np.mean([r[k] for r in sel]))
    if sel[0].get("reference"):
      row["reference"] = True
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


def reference(files: Sequence[str],
              jpeg_qualities: Sequence[int] = JPEG_QUALITIES,
              jp2_bpps: Sequence[float] = JP2_BPPS,
              classical: Sequence[str] = codecs.CODECS,
              log: Callable[[str], None] = print) -> list:
  """Per-image records of the JPEG / JPEG 2000 reference curves.

  Each image is encoded at every JPEG quality of `jpeg_qualities` and at
  JPEG 2000 ratio 8 / bpp for each of `jp2_bpps` (one encode, no rate
  search; the real rate is recorded), by the same evaluator as the neural
  rows (`tf_hbd.evaluation.systems.evaluate`).

  Returns:
    list of dicts like `evaluate`'s, with ``setting`` ("jpeg q=10",
    "jp2 ratio=21.6"), ``codec``, ``quality`` and ``reference`` True.
  """
  grid = {"jpeg": [("q", q) for q in jpeg_qualities],
          "jp2": [("ratio", round(8.0 / b, 4)) for b in jp2_bpps]}
  imgs = evaluation.load_eval_images(list(files), name_by="path")
  records = []
  for codec in classical:
    system = evaluation.codec_system(codec)
    points = [evaluation.Point(quality=v) for _, v in grid[codec]]
    results = evaluation.evaluate(imgs, [system], points)[system.name]
    for i, r in enumerate(results):
      name, value = grid[codec][i // len(imgs)]
      records.append({"image": r.pop("image"),
                      "setting": f"{codec} {name}={value:g}", "codec": codec,
                      "reference": True, **r})
    log(f"{codec}: {len(grid[codec])} settings x {len(imgs)} images, "
        f"{min(r['bpp'] for r in records if r['codec'] == codec):.3f}-"
        f"{max(r['bpp'] for r in records if r['codec'] == codec):.3f} bpp")
  return records


def curves(records: Sequence[dict]) -> dict:
  """{codec: {image: [records of its curve on that image]}}.

  A neural codec's curve is its fixed settings (target rows left out); a
  classical codec's is its reference grid (`reference`), never its rows at
  the neural rates.
  """
  out = {}
  for r in records:
    if "@" in r["setting"]:
      continue
    if r["codec"] in codecs.CODECS and not r.get("reference"):
      continue
    out.setdefault(r["codec"], {}).setdefault(r["image"], []).append(r)
  return out


def _read(curve: dict, bpp: float, key: str, method: str):
  """Per-image values of `key` at `bpp`, the mean (None unless every image
  covers `bpp`) and how many images cover it."""
  per = {image: rd_curves.interpolate([r["bpp"] for r in pts],
                                      [r[key] for r in pts], bpp, method)
         for image, pts in curve.items()}
  have = [v for v in per.values() if v is not None]
  mean = float(np.mean(have)) if have and len(have) == len(per) else None
  return per, mean, len(have)


def _rising(pts: Sequence[dict]) -> bool:
  pts = sorted(pts, key=lambda r: r["bpp"])
  return all(b["psnr"] > a["psnr"] for a, b in zip(pts, pts[1:]))


def at_rate(records: Sequence[dict], bpp: float = 0.37,
            method: str = rd_curves.DEFAULT_METHOD) -> list:
  """PSNR / MS-SSIM of each codec at `bpp` at equal rate per image.

  Per image, each codec's curve (`curves`) is read at `bpp`
  (`tf_hbd.evaluation.rd_curves.interpolate`, `method`; every method is
  kept in ``by_method``), then averaged over the images (`INTERPOLATION`).

  Returns:
    list of dicts: ``codec``, ``psnr``, ``ms-ssim`` (None unless every
    image's curve covers `bpp`), ``images``, ``covered`` (images whose
    curve covers it), ``points`` (settings per image), ``monotone``
    (PSNR rose at every rate step on every image), ``rising_images``,
    ``method``, ``by_method`` {method: {psnr, vs_jpeg_db, vs_jp2_db}},
    ``per_image`` {image: PSNR}, and for neural codecs ``vs_jpeg_db``,
    ``vs_jp2_db`` and ``bd_psnr`` (`bd_psnr`).
  """
  by_codec = curves(records)
  out = {}
  for codec, curve in by_codec.items():
    per, psnr, covered = _read(curve, bpp, "psnr", method)
    res = {"codec": codec, "psnr": psnr,
           "ms-ssim": _read(curve, bpp, "ms-ssim", method)[1],
           "images": len(curve), "covered": covered,
           "points": max(len(p) for p in curve.values()),
           "rising_images": sum(_rising(p) for p in curve.values()),
           "method": method, "per_image": per,
           "by_method": {m: {"psnr": _read(curve, bpp, "psnr", m)[1]}
                         for m in rd_curves.METHODS}}
    res["monotone"] = res["rising_images"] == len(curve)
    out[codec] = res
  for codec, res in out.items():
    if codec in codecs.CODECS:
      continue
    for ref in codecs.CODECS:
      for m, entry in [(method, res)] + list(res["by_method"].items()):
        theirs = (out[ref]["by_method"][m]["psnr"] if ref in out else None)
        entry[f"vs_{ref}_db"] = (None if theirs is None or
                                 entry["psnr"] is None
                                 else entry["psnr"] - theirs)
    res["bd_psnr"] = bd_psnr(by_codec, codec)
  return list(out.values())


def bd_psnr(by_codec: dict, codec: str,
            windows: Sequence = (None, BD_WINDOW)) -> dict:
  """BD-PSNR of `codec` against JPEG and JPEG 2000, per image then averaged.

  Args:
    by_codec: `curves` output.
    codec: the neural codec.
    windows: None (the whole overlap of the two curves' rates) and / or
      (low, high) bpp windows.

  Returns:
    {reference: {"overlap" or "0.2-0.6": {"db": mean over images (None
    unless every image has a value), "images": images with a value}}}.
  """
  out = {}
  mine = by_codec[codec]
  for ref in codecs.CODECS:
    if ref not in by_codec:
      continue
    out[ref] = {}
    for window in windows:
      deltas = []
      for image, pts in mine.items():
        theirs = by_codec[ref].get(image, [])
        d = rd_curves.bd_psnr([r["bpp"] for r in theirs],
                              [r["psnr"] for r in theirs],
                              [r["bpp"] for r in pts],
                              [r["psnr"] for r in pts], window)
        if d is not None:
          deltas.append(d)
      key = "overlap" if window is None else f"{window[0]:g}-{window[1]:g}"
      out[ref][key] = {"db": (float(np.mean(deltas))
                              if len(deltas) == len(mine) else None),
                       "images": len(deltas)}
  return out


def at_rate_markdown(summary: Sequence[dict], bpp: float = 0.37) -> str:
  """`at_rate` as markdown: the figures, each interpolation method, and
  the BD-PSNRs."""
  def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)
  lines = [f"| codec | PSNR at {bpp:g} bpp | MS-SSIM | vs JPEG (dB) | "
           "vs JPEG 2000 (dB) | images covering it | PSNR rises with rate "
           "(images) |", "|---|---|---|---|---|---|---|"]
  for r in summary:
    lines.append(
        f"| {r['codec']} | {fmt(r['psnr'], '.2f')} | "
        f"{fmt(r['ms-ssim'], '.4f')} | {fmt(r.get('vs_jpeg_db'), '+.2f')} | "
        f"{fmt(r.get('vs_jp2_db'), '+.2f')} | {r['covered']} / "
        f"{r['images']} | {r['rising_images']} / {r['images']} |")
  lines += ["", f"The same at {bpp:g} bpp by each interpolation method "
            "(PSNR; vs JPEG / vs JPEG 2000 in dB):", "",
            "| codec |" + "".join(f" {m} |" for m in rd_curves.METHODS),
            "|---" * (1 + len(rd_curves.METHODS)) + "|"]
  for r in summary:
    cells = [f"{fmt(e['psnr'], '.2f')}" + (
        "" if "vs_jpeg_db" not in e else
        f" ({fmt(e['vs_jpeg_db'], '+.2f')} / {fmt(e['vs_jp2_db'], '+.2f')})")
             for e in r["by_method"].values()]
    lines.append(f"| {r['codec']} | " + " | ".join(cells) + " |")
  return "\n".join(lines + [""] + _bd_markdown(summary))


def _bd_markdown(summary: Sequence[dict]) -> list:
  rows = [(r["codec"], ref, key, v) for r in summary
          for ref, by_window in r.get("bd_psnr", {}).items()
          for key, v in by_window.items()]
  if not rows:
    return []
  lines = ["BD-PSNR (VCEG-M33: cubic fit of PSNR in log10 bpp, per image "
           "over the overlap of the two curves' rates, or that overlap cut "
           "to a window, each fit on a curve's points covering those rates "
           "and one beyond each end, at least four; mean over images):", "",
           "| codec | against | rates | BD-PSNR (dB) | images |",
           "|---|---|---|---|---|"]
  for codec, ref, key, v in rows:
    db = "n/a" if v["db"] is None else f"{v['db']:+.2f}"
    lines.append(f"| {codec} | {_TITLES.get(ref, ref)} | "
                 f"{'overlap' if key == 'overlap' else key + ' bpp'} | {db} "
                 f"| {v['images']} |")
  return lines


_TITLES = {"e2e": "E2E", "goog": "GOOG", "jpeg": "JPEG", "jp2": "JPEG 2000"}


def compressai_docs(rows: Sequence[dict], at: Sequence[dict],
                    bpp: float = 0.37, dataset: str = "") -> list:
  """One CompressAI-style JSON document per curve.

  Each neural family, each classical codec at that family's rates, and
  each classical codec's reference curve (`reference`) is a curve:
  ``{"name", "description", "dataset", "results": {"bpp", "psnr",
  "ssim", "ms-ssim", "setting", ...}, "at_bpp": {...}}``, its points
  being the fixed settings (target rows left out) sorted by bpp, means
  over images; neural curves add ``models`` (and GOOG's ``iterations``),
  reference curves ``quality``; ``at_bpp`` is the codec's `at_rate` entry
  at `bpp` (how: ``interpolation``, `INTERPOLATION`; per image in
  ``per_image``). `scripts/plot_rd.py` draws them.

  Args:
    rows: `summarize` output.
    at: `at_rate(records, bpp)`.
    bpp: the rate of `at`.
    dataset: recorded in each document.
  """
  fixed = [r for r in rows if "@" not in r["setting"]]
  family_of = {r["setting"]: r["codec"] for r in fixed
               if r["codec"] not in codecs.CODECS}
  curves_ = {}
  for r in fixed:
    family = "reference" if r.get("reference") else family_of.get(
        r["setting"])
    if family is not None:
      curves_.setdefault((r["codec"], family), []).append(r)
  at_of = {a["codec"]: dict(a, bpp=bpp, interpolation=INTERPOLATION)
           for a in at}
  docs = []
  for (codec, family), pts in curves_.items():
    pts = sorted(pts, key=lambda r: r["bpp"])
    results = {k: [r[k] for r in pts] for k in ("bpp", "psnr", "ssim",
                                                "ms-ssim")}
    results["setting"] = [r["setting"] for r in pts]
    title = _TITLES.get(codec, codec)
    if family == "reference":
      results["quality"] = [r["quality"] for r in pts]
      name, how = title, (f"; the reference curve: every image encoded at "
                          f"each {codec} setting of a fixed grid")
    elif codec == family:
      results["models"] = [r.get("models", [r["setting"]])[0] for r in pts]
      if "iterations" in pts[0]:
        results["iterations"] = [r["iterations"] for r in pts]
      name, how = title, ""
    else:
      name = f"{title} at {_TITLES[family]} rates"
      how = (f"; {codec} encoded at each image's {_TITLES[family]} rate "
             "(highest setting not above it)")
    docs.append({
        "name": name,
        "description": (f"{name}: real files, bpp = 8 * bytes / pixels "
                        "(header included); mean over images" + how),
        "dataset": dataset, "results": results,
        "at_bpp": at_of.get(codec)})
  return docs


def report_markdown(records: Sequence[dict], bpp: float = 0.37,
                    header: str = "") -> str:
  """The RD report from per-image records: `side_by_side`, the reference
  curves (means over images), `at_rate_markdown` and how it was
  interpolated (`INTERPOLATION`), under an optional header line."""
  rows = summarize(records)
  parts = [header] if header else []
  parts += [side_by_side(rows), ""]
  ref = [r for r in rows if r.get("reference")]
  if ref:
    parts += ["Reference curves (each image at each setting; means over "
              "images):", "", markdown(ref), ""]
  parts += [f"PSNR at {bpp:g} bpp ({INTERPOLATION}):", "",
            at_rate_markdown(at_rate(records, bpp), bpp), ""]
  return "\n".join(parts)
