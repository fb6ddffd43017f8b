"""The study's tables, figures and claims, regenerated from run records.

Reads every ``record.json`` under ``<out_dir>/runs``
(`tf_hbd.workflows.study_runner`) and writes into `out_dir`, with 95 %
hierarchical bootstrap intervals (`tf_hbd.evaluation.stats`: seeds, then test
images) on every number:

* ``table3.md``: per tier and configuration, test bpp, PSNR, gain over the
  codec, SSIM, MS-SSIM, with the examples seen, updates made and training
  time per run; the codecs' own rows (intervals over images);
* ``comparisons.md``: every algorithm minus BPTT in its family, at equal
  examples (test set) and at equal wall time (validation at the last epoch
  whose cumulative training time is within the family's budget, the
  shortest training time of its algorithms; a configuration's clock is its
  fastest seed's, the one least slowed by other jobs), with the updates
  made and the training times;
* ``table1.md``: PSNR against K at inference, per configuration;
* ``convergence.md``: convergence epochs (resampled through the validation
  images too);
* ``figure1_<tier>.png``: validation gain per epoch, mean and interval band
  over seeds and validation images, one panel per codec;
* ``rd_<tier>.png`` and ``rd/<tier>/*.json``: mean PSNR / MS-SSIM against
  bpp per configuration and codec;
* ``claims.json`` / ``claims.md`` (`tf_hbd.evaluation.claims`) and
  ``README.md`` (what is there, what planned runs are missing, the verdicts
  one sentence each); optionally the same verdicts into a block of the
  top-level README (`readme_paragraph`, `splice_readme`).
"""

import collections
import json
import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_hbd.evaluation import claims
from tf_hbd.evaluation import stats

__all__ = ["write_reports", "fmt_ci", "verdict_sentences", "readme_paragraph",
           "readme_block", "splice_readme", "README_BEGIN", "README_END"]

_CODEC_TITLE = {"jpeg": "JPEG", "jp2": "JPEG 2000"}


def fmt_ci(iv: stats.Interval, digits: int = 3, signed: bool = False) -> str:
  f = f"{{:{'+' if signed else ''}.{digits}f}}"
  return (f"{f.format(iv.estimate)} [{f.format(iv.lo)}, "
          f"{f.format(iv.hi)}]")


def _by_tier(records):
  out = collections.OrderedDict()
  for (tier, config), recs in claims.groups(records).items():
    out.setdefault(tier, collections.OrderedDict())[config] = recs
  return out


def _table3(records, n_boot, seed):
  lines = ["# Table 3 with 95 % intervals (seeds x test images)", "",
           "Equal examples seen within a tier. Intervals: hierarchical "
           "bootstrap (seeds, then images), "
           f"{n_boot} replicates, RNG seed {seed}.", ""]
  for tier, configs in _by_tier(records).items():
    first = next(iter(configs.values()))[0]
    test = first["test"]
    lines += [f"## Tier `{tier}`: {test.get('dataset', '?')}, "
              f"{len(test['images'])} images, target {test.get('bpp')} bpp",
              "", "| configuration | seeds | bpp | PSNR (dB) | gain over "
              "codec (dB) | SSIM | MS-SSIM | examples | updates | "
              "training (s, fastest-slowest seed) |", "|---" * 10 + "|"]
    codecs = collections.OrderedDict()
    for config, recs in configs.items():
      codecs.setdefault(recs[0]["codec"], recs[0])
      m = {k: claims.test_matrix(recs, metric=k) for k in ("bpp", "psnr",
                                                           "ssim",
                                                           "ms-ssim")}
      cells = [fmt_ci(stats.mean_ci(m["psnr"], n_boot=n_boot, seed=seed)),
               fmt_ci(stats.mean_ci(claims.gain_matrix(recs), n_boot=n_boot,
                                    seed=seed), signed=True),
               fmt_ci(stats.mean_ci(m["ssim"], n_boot=n_boot, seed=seed), 4),
               fmt_ci(stats.mean_ci(m["ms-ssim"], n_boot=n_boot, seed=seed),
                      4)]
      tr = [r["training"] for r in recs]
      lines.append(
          f"| {config} | {len(recs)} | {np.mean(m['bpp']):.4f} | "
          + " | ".join(cells) + f" | {np.mean([t['examples'] for t in tr]):,.0f}"
          f" | {np.mean([t['updates'] for t in tr]):,.0f} | "
          f"{min(t['time_s'] for t in tr):,.0f}-"
          f"{max(t['time_s'] for t in tr):,.0f} |")
    for codec, r in codecs.items():
      m = {k: np.array([r["test"]["codec"][k]]) for k in ("bpp", "psnr",
                                                          "ssim", "ms-ssim")}
      lines.append(
          f"| {_CODEC_TITLE.get(codec, codec)} (codec) | - | "
          f"{m['bpp'].mean():.4f} | "
          f"{fmt_ci(stats.mean_ci(m['psnr'], n_boot=n_boot, seed=seed))} | "
          f"0 | {fmt_ci(stats.mean_ci(m['ssim'], n_boot=n_boot, seed=seed), 4)}"
          f" | {fmt_ci(stats.mean_ci(m['ms-ssim'], n_boot=n_boot, seed=seed), 4)}"
          " | - | - | - |")
    lines.append("")
  return "\n".join(lines) + "\n"


def _clock(recs):
  """The group's cumulative training seconds per epoch: its fastest seed's
  (the seeds' times differ mostly by what else ran on the machine)."""
  fastest = min(recs, key=lambda r: r["training"]["time_s"])
  return [e["time_s"] for e in fastest["epochs"]]


def _val_at_budget(recs, budget):
  """((seeds, images) validation PSNR, epoch) at the group's last epoch
  whose `_clock` fits `budget`; (None, None) if none does."""
  fits = [i for i, t in enumerate(_clock(recs)) if t <= budget * (1 + 1e-9)]
  if not fits or any(len(r["epochs"]) <= fits[-1] for r in recs):
    return None, None
  rows = []
  for r in recs:
    e = r["epochs"][fits[-1]]
    per = e.get("val_per_image")
    rows.append([per[k] for k in sorted(per)] if per else [e["val_psnr"]])
  if len({len(v) for v in rows}) != 1:
    return None, None
  return np.array(rows), fits[-1] + 1


def _comparison_row(algo, recs, base, budget, b_val, n_boot, seed):
  upd = np.mean([r["training"]["updates"] for r in recs])
  secs = [r["training"]["time_s"] for r in recs]
  eq = (fmt_ci(stats.diff_ci(claims.test_matrix(recs),
                             claims.test_matrix(base), n_boot=n_boot,
                             seed=seed), signed=True)
        if algo != "bptt" else "0")
  val, epoch = _val_at_budget(recs, budget)
  if b_val is None:
    wall, epoch = "BPTT has no validation within the budget", epoch or 0
  elif val is None:
    wall, epoch = "no validation within the budget", "0"
  elif algo == "bptt":
    wall = "0"
  elif val.shape[1] != b_val.shape[1]:
    wall = "images differ"
  else:
    wall = fmt_ci(stats.diff_ci(val, b_val, n_boot=n_boot, seed=seed),
                  signed=True)
  return (f"| {algo} | {len(recs)} | {upd:,.0f} | {min(secs):,.0f}-"
          f"{max(secs):,.0f} | {eq} | {epoch} | {wall} |")


def _comparisons(records, n_boot, seed):
  lines = ["# Algorithms against BPTT, with 95 % intervals", "",
           "Equal examples: test PSNR after the planned budget (every "
           "algorithm sees the same blocks). Equal wall time: validation "
           "PSNR at the last epoch whose cumulative training time fits the "
           "family's budget, the shortest training time of its "
           "algorithms. A configuration's clock is its fastest seed's: the "
           "seeds' times differ mostly by what else ran on the machine "
           "(the training-time column shows the spread).", ""]
  for key, algos in claims.families(records).items():
    if "bptt" not in algos or len(algos) < 2:
      continue
    base = algos["bptt"]
    budget = min(_clock(recs)[-1] for recs in algos.values())
    lines += [f"## {claims.family_name(key)} (wall-time budget "
              f"{budget:,.0f} s)", "",
              "| algorithm | seeds | updates per run | training (s, "
              "fastest-slowest seed) | test PSNR - BPTT, equal examples "
              "(dB) | epoch at budget | val PSNR - BPTT, equal wall time "
              "(dB) |", "|---|---|---|---|---|---|---|"]
    b_val, _ = _val_at_budget(base, budget)
    for algo, recs in algos.items():
      lines.append(_comparison_row(algo, recs, base, budget, b_val, n_boot,
                                   seed))
    lines.append("")
  return "\n".join(lines) + "\n"


def _table1(records, n_boot, seed):
  lines = ["# Table 1: test PSNR (dB) against K at inference, 95 % "
           "intervals", ""]
  for tier, configs in _by_tier(records).items():
    ks = sorted({int(k) for recs in configs.values()
                 for k in recs[0]["test"]["k_sweep"]})
    lines += [f"## Tier `{tier}`", "",
              "| configuration (trained K) | " + " | ".join(
                  f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for config, recs in configs.items():
      cells = []
      for k in ks:
        if str(k) in recs[0]["test"]["k_sweep"]:
          cells.append(fmt_ci(stats.mean_ci(claims.ksweep_matrix(recs, k),
                                            n_boot=n_boot, seed=seed)))
        else:
          cells.append("-")
      lines.append(f"| {config} ({recs[0]['K']}) | " + " | ".join(cells)
                   + " |")
    lines.append("")
  return "\n".join(lines) + "\n"


def _convergence(records, n_boot, seed):
  lines = ["# Convergence epochs, 95 % intervals (seeds x validation "
           "images)", "",
           "Convergence epoch: the first epoch whose validation PSNR is "
           "within the trainer's tolerance (0.05 dB) of the run's best; "
           "equal to the number of epochs when a run is still improving.",
           "Best validation gain: the highest over epochs of the gain "
           "averaged over seeds and images (what (d) compares with the "
           "tolerance, `claims.best_val_gain`).",
           "", "| tier/configuration | seeds | epochs | convergence epoch | "
           "best validation gain (dB) |", "|---|---|---|---|---|"]
  for (tier, config), recs in claims.groups(records).items():
    try:
      curves = claims.val_curves(recs)
    except ValueError as e:
      lines.append(f"| {tier}/{config} | {len(recs)} | - | {e} | - |")
      continue
    tol = float(recs[0]["training"].get("convergence_tol_db") or 0.05)
    iv = stats.statistic_ci(
        [curves], lambda g: claims.convergence_epochs(g[0].mean(axis=1),
                                                      tol).mean(),
        n_boot=n_boot, seed=seed)
    best = claims.best_val_gain(recs)
    quiet = ("" if best > tol else
             " (never more than the tolerance above the codec: not compared "
             "in (d))")
    lines.append(f"| {tier}/{config} | {len(recs)} | {curves.shape[2]} | "
                 f"{fmt_ci(iv, 2)} | {best:+.3f}{quiet} |")
  return "\n".join(lines) + "\n"


def _figure1(records, out_dir, n_boot, seed):
  from tf_hbd.evaluation import plots  # pylint: disable=g-import-not-at-top
  paths = {}
  for tier, configs in _by_tier(records).items():
    panels = collections.OrderedDict()
    for config, recs in configs.items():
      try:
        curves = claims.val_curves(recs, gain=True)
      except ValueError:
        continue
      pts = []
      for e in range(curves.shape[2]):
        iv = stats.mean_ci(curves[:, :, e], n_boot=n_boot, seed=seed)
        pts.append((e + 1, iv.estimate, iv.lo, iv.hi))
      title = _CODEC_TITLE.get(recs[0]["codec"], recs[0]["codec"])
      panels.setdefault(title, collections.OrderedDict())[config] = pts
    if panels:
      path = os.path.join(out_dir, f"figure1_{tier}.png")
      plots.plot_bands(panels, path, title=f"Figure 1 ({tier}): mean, "
                       "95 % band (seeds x images)")
      paths[f"figure1_{tier}"] = path
  return paths


def _rd(records, out_dir):
  from tf_hbd.evaluation import plots  # pylint: disable=g-import-not-at-top
  paths = {}
  for tier, configs in _by_tier(records).items():
    files, codecs = [], collections.OrderedDict()
    rd_dir = os.path.join(out_dir, "rd", tier)
    os.makedirs(rd_dir, exist_ok=True)

    def write(name, series, rd_dir=rd_dir, files=files):
      res = {"bpp": [], "psnr": [], "ms-ssim": []}
      for rate in sorted(series, key=float):
        for k in res:
          res[k].append(float(np.mean(series[rate][k])))
      path = os.path.join(rd_dir, name.replace(" ", "_") + ".json")
      with open(path, "w") as f:
        json.dump({"name": name, "results": res}, f, indent=1)
      files.append(path)

    for config, recs in configs.items():
      recs = [r for r in recs if r["test"].get("rd")]  # `Tier.rd_seeds`
      if not recs:
        continue
      rates = recs[0]["test"]["rd"]
      codecs.setdefault(recs[0]["codec"], rates)
      write(config, {rate: {k: [v for r in recs for v in
                                r["test"]["rd"][rate]["decoder"][k]]
                            for k in ("bpp", "psnr", "ms-ssim")}
                     for rate in rates})
    for codec, rates in codecs.items():
      write(_CODEC_TITLE.get(codec, codec),
            {rate: rates[rate]["codec"] for rate in rates})
    if files:
      path = os.path.join(out_dir, f"rd_{tier}.png")
      plots.plot_rd(files, path, title=f"tier {tier}: rate-distortion "
                    "(mean over seeds and images)")
      paths[f"rd_{tier}"] = path
  return paths


_SENTENCE = {"a": ("Every decoder beats its codec at equal bpp",
                   "smallest decoder gain"),
             "b": ("SAB is at least as good as BPTT", "SAB minus BPTT"),
             "c": ("PSNR grows with K, at inference and at training",
                   "weaker of the two parts"),
             "d": ("RTRL (exact, and SnAp-1 at size) converges first",
                   "smallest lead of RTRL")}

README_BEGIN = "<!-- study-verdicts:begin (scripts/study.py --readme) -->"
README_END = "<!-- study-verdicts:end -->"


def verdict_sentences(doc: dict) -> List[str]:
  """One sentence per claim of a claims document (`tf_hbd.evaluation.
  claims`): the claim, its verdict, its effect and interval."""
  out = []
  for k, c in doc["claims"].items():
    claim, label = _SENTENCE[k]
    unit = "epochs" if k == "d" else "dB"
    which = re.search(r"smallest: (.+?) [+-]\d", c["detail"])
    if k == "c":
      which = re.search(r"effect shown: (\w+)", c["detail"])
    eff = ("" if c["effect_db"] is None else
           f" ({label}{', ' + which.group(1) if which else ''}: "
           f"{c['effect_db']:+.3f} {unit}, 95 % interval "
           f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}])")
    out.append(f"({k}) {claim}: **{c['verdict']}**{eff}.")
  return out


def readme_paragraph(doc: dict, link: str, note: str = "") -> str:
  """The top-level README's paragraph on the study: where it is, how large,
  the verdicts one sentence each (`link`: to the study's README)."""
  head = (f"The seeded study of issue 14 ([`{os.path.dirname(link) or '.'}/`]"
          f"({link}): {doc['runs']} run records, at least "
          f"{doc['seeds_min']} seeds per configuration; regenerated from "
          "the records by `python scripts/study.py --report_only`) decides "
          "the paper's claims with 95 % bootstrap intervals over seeds and "
          "images.")
  if note:
    head += f" It is a {note}, so no claim is decided yet."
  return head + "\n\n" + "\n".join(f"* {x}"
                                   for x in verdict_sentences(doc))


def readme_block(text: str) -> Optional[Tuple[int, int]]:
  """(start, end) of the text between `README_BEGIN` and the first
  `README_END` after it, or None if `text` has no such pair."""
  i = text.find(README_BEGIN)
  if i < 0:
    return None
  j = text.find(README_END, i + len(README_BEGIN))
  return None if j < 0 else (i + len(README_BEGIN), j)


def splice_readme(path: str, paragraph: str) -> bool:
  """Replaces the text between `README_BEGIN` and `README_END` in `path`
  with `paragraph`; False (file untouched) if the markers are not there
  (`readme_block`)."""
  with open(path) as f:
    text = f.read()
  block = readme_block(text)
  if block is None:
    return False
  text = text[:block[0]] + "\n" + paragraph + "\n" + text[block[1]:]
  with open(path + ".tmp", "w") as f:
    f.write(text)
  os.replace(path + ".tmp", path)
  return True


def _n(x):
  return "?" if x is None else f"{x:,}"


def _tier_lines(records):
  """One line per tier: its settings and the recorded wall time."""
  out = []
  for tier, configs in _by_tier(records).items():
    recs = [r for rs in configs.values() for r in rs]
    tr = recs[0]["training"]
    units = sorted({r["units"] for r in recs})
    train_h = sum(r["training"]["time_s"] for r in recs) / 3600
    eval_h = sum(r.get("eval_time_s") or 0.0 for r in recs) / 3600
    out.append(
        f"* tier `{tier}`: {len(recs)} runs of {len(configs)} "
        f"configurations, {'/'.join(map(str, units))} units, "
        f"{_n(tr.get('batches'))} batches of {_n(tr.get('batch_size'))} "
        f"in {len(recs[0]['epochs'])} epochs "
        f"({_n(tr.get('examples'))} examples) per run; recorded wall time "
        f"{train_h:.2f} h training + {eval_h:.2f} h evaluation (a shared "
        "machine: other jobs ran too)")
  return out


def _readme(doc, artifacts, out_dir, note="", records=()):
  lines = ["# The study (issue 14): results regenerated from the run "
           "records", "",
           f"{doc['runs']} run records under `runs/`, at least "
           f"{doc['seeds_min']} seeds per configuration. Regenerate with "
           "`python scripts/study.py --report_only`.", ""]
  if note:
    lines += [f"**This is a {note}.** No claim is decided until every "
              "planned run is recorded (each claim's detail in "
              "`claims.md` gives the verdict of the recorded runs alone).",
              ""]
  lines += _tier_lines(records)
  lines += ["", "Verdicts (decision rule and per-comparison details: "
            "[`claims.md`](claims.md)):", ""]
  lines += [f"* {x}" for x in verdict_sentences(doc)]
  lines += ["", "Files:", ""]
  for name, path in sorted(artifacts.items()):
    lines.append(f"* {name}: [`{os.path.relpath(path, out_dir)}`]"
                 f"({os.path.relpath(path, out_dir)})")
  path = os.path.join(out_dir, "README.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def write_reports(out_dir: str, n_boot: int = stats.DEFAULT_BOOT,
                  seed: int = 0, planned: Optional[Sequence[str]] = None,
                  readme: str = "", stale: Sequence[str] = ()
                  ) -> Dict[str, str]:
  """Writes every table, figure and the claims from ``<out_dir>/runs``.

  Args:
    out_dir: the study's results folder (records in ``runs/``).
    n_boot, seed: bootstrap replicates and RNG seed.
    planned: the study's run ids (``tier/config-seedN``): runs missing from
      them are named, and nothing is decided (`claims.decide_claims`).
    readme: a README whose `README_BEGIN` / `README_END` block gets
      `readme_paragraph` ("" : none).
    stale: run ids whose records were made with other flags than the plan's
      (`study_runner.record_mismatch`): left out of every table and claim,
      so a planned one counts as missing.

  Returns:
    {artifact: path}.

  Raises:
    ValueError: `readme` has no such block.
  """
  records = [r for r in claims.load_records(os.path.join(out_dir, "runs"))
             if r["run"] not in set(stale)]
  os.makedirs(out_dir, exist_ok=True)
  artifacts = {}
  if records:
    for name, fn in (("table3", _table3), ("comparisons", _comparisons),
                     ("table1", _table1), ("convergence", _convergence)):
      path = os.path.join(out_dir, name + ".md")
      with open(path, "w") as f:
        f.write(fn(records, n_boot, seed))
      artifacts[name] = path
    artifacts.update(_figure1(records, out_dir, n_boot, seed))
    artifacts.update(_rd(records, out_dir))
  doc = claims.decide_claims(records, n_boot=n_boot, seed=seed,
                             planned=planned)
  note = claims.coverage(records, planned)[1]
  artifacts["claims_json"], artifacts["claims_md"] = claims.write_claims(
      doc, out_dir, note)
  artifacts["readme"] = _readme(doc, artifacts, out_dir, note, records)
  if readme:
    link = os.path.relpath(artifacts["readme"],
                           os.path.dirname(os.path.abspath(readme)) or ".")
    if not splice_readme(readme, readme_paragraph(doc, link, note)):
      raise ValueError(f"{readme}: no '{README_BEGIN}' ... '{README_END}' "
                       "block; add the two lines where the study's "
                       "paragraph belongs")
    artifacts["top_readme"] = readme
  return artifacts
