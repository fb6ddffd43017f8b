"""The paper's four claims decided from the study's run records.

Records are the ``record.json`` files of `tf_hbd.workflows.study_runner`
(one per tier, configuration and seed). A *group* is every seed of one (tier,
configuration); a *family* is the groups of one tier that differ only by
the learning algorithm (same cell, codec, K, units).

Claims (issue 14):

* (a) every decoder beats its codec at equal bpp (a decoder adds no bits:
  its rate is its codec's) -- per group, decoder PSNR minus codec PSNR on
  the test images;
* (b) SAB >= BPTT -- SAB minus BPTT PSNR in every family holding both,
  pooled (the mean of the families' differences);
* (c) PSNR grows with K -- at inference (PSNR at the largest K of the sweep
  minus at the smallest, pooled over every group) and at training (the
  configuration trained with the largest K minus the one with the smallest,
  same cell, codec and algorithm);
* (d) RTRL converges first -- exact RTRL in the exact tier and SnAp-1
  (approximate RTRL) in the size tier: every other algorithm's convergence
  epoch minus RTRL's, per family (convergence epoch: the first validation
  epoch within the trainer's tolerance, 0.05 dB, of the run's best; the
  interval resamples seeds and validation images and recomputes it). Only
  groups whose best validation gain over the codec exceeds that tolerance
  are compared (below it the whole curve is within the tolerance of its
  best, so the "convergence" epoch times nothing: a decoder that does not
  learn would converge first); the pairs left out are named in the detail.
  Confirming needs a comparison with exact RTRL and one with SnAp-1.

Decision rule. Intervals are 95 % hierarchical bootstrap intervals
(`tf_hbd.evaluation.stats`, seeds then images, paired by image, RNG seed
fixed). A claim about one effect is *confirmed* if its interval lies above 0
in the claimed direction, *refuted* if it lies below 0, *inconclusive*
otherwise. A claim about every member of a set (a, d, and the two parts of
c) is confirmed only if every member is confirmed (intersection-union test:
no multiplicity correction needed), refuted if some member's Bonferroni
interval (level 1 - 0.05 / m for m members) lies below 0, inconclusive
otherwise; its effect is the member with the smallest estimate. Claim (c)
is confirmed if both parts are, refuted if either is; its effect is the
part with the lower interval bound. Groups with fewer than `MIN_SEEDS`
seeds are not decided (they keep a claim from being confirmed). For (d)
``effect_db`` and ``ci95`` are in epochs, not dB. Given the planned run
ids (`decide_claims(..., planned=)`), a study with planned runs missing
decides nothing: every claim is inconclusive, its detail keeps the verdict
of the recorded runs alone (a refutation too can turn: the missing runs
widen the Bonferroni intervals and move the means) and says what is
missing (`coverage`).

`decide_claims(records)` returns the JSON document
``{"claims": {"a": {"verdict", "effect_db", "ci95", "detail"}, ...},
"runs": N, "seeds_min": S}``; `write_claims` writes it as ``claims.json``
and ``claims.md``.
"""

import collections
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_hbd.evaluation import stats

__all__ = ["MIN_SEEDS", "CONFIRMED", "REFUTED", "INCONCLUSIVE", "RULE",
           "load_records", "groups", "families", "family_name",
           "test_matrix",
           "val_curves", "convergence_epochs", "best_val_gain", "verdict",
           "coverage", "decide_all", "decide_claims", "write_claims"]

MIN_SEEDS = 2
CONFIRMED, REFUTED, INCONCLUSIVE = "confirmed", "refuted", "inconclusive"
LEVEL = 0.95
RULE = (
    "95 % hierarchical bootstrap intervals (seeds, then images, paired by "
    "image; fixed RNG seed). One effect: confirmed if the interval lies "
    "above 0 in the claimed direction, refuted if below 0, else "
    "inconclusive. Every-member claims (a, d, both parts of c): confirmed "
    "if every member is confirmed, refuted if some member's Bonferroni "
    "interval (1 - 0.05/m) lies below 0, else inconclusive; the effect "
    "shown is the member with the smallest estimate. (c) = both parts. "
    f"Configurations with fewer than {MIN_SEEDS} seeds are not decided. "
    "(d) is measured in epochs, compares only algorithms whose best "
    "validation gain over the codec exceeds the convergence tolerance "
    "(a flat curve \"converges\" at once), and needs exact RTRL and "
    "SnAp-1 both to confirm. While planned runs are missing nothing is "
    "decided (inconclusive; the detail gives the recorded runs' verdict).")
RTRL_LIKE = ("rtrl", "snap1")


def load_records(runs_dir: str) -> List[dict]:
  """Every ``record.json`` under `runs_dir` (sorted by run id)."""
  out = []
  for root, _, files in os.walk(runs_dir):
    if "record.json" in files:
      path = os.path.join(root, "record.json")
      try:
        with open(path) as f:
          out.append(json.load(f))
      except ValueError as e:
        raise ValueError(f"{path}: not a JSON record ({e}); delete it and "
                         "rerun the study to redo that run") from None
  return sorted(out, key=lambda r: (r["run"]))


# Flags that may differ between the seeds of one configuration (the seed,
# and data paths, which move with the machine).
_FREE_FLAGS = ("seed", "dataset", "val_images", "data_dir")


def groups(records: Sequence[dict]) -> Dict[Tuple[str, str], List[dict]]:
  """{(tier, config): records sorted by seed}.

  Raises:
    ValueError: the seeds of one configuration were trained with other
      settings (a tier changed after some runs were recorded).
  """
  out = collections.OrderedDict()
  for r in sorted(records, key=lambda r: (r["tier"], r["config"], r["seed"])):
    out.setdefault((r["tier"], r["config"]), []).append(r)
  for (tier, config), recs in out.items():
    fls = [{k: v for k, v in (r.get("flags") or {}).items()
            if k not in _FREE_FLAGS} for r in recs]
    for r, fl in zip(recs[1:], fls[1:]):
      if fl != fls[0]:
        diff = sorted(k for k in set(fl) | set(fls[0])
                      if fl.get(k) != fls[0].get(k))
        raise ValueError(
            f"{tier}/{config}: {r['run']} was trained with other flags than "
            f"{recs[0]['run']} ({', '.join(diff)}); delete the outdated "
            "records (and their model dirs) and rerun the study")
  return out


def _cell(r):
  return "sne" if r.get("sne") else r.get("cell", "lstm")


def families(records: Sequence[dict]) -> Dict[tuple, Dict[str, List[dict]]]:
  """{(tier, cell, codec, K, units): {algorithm: records}}."""
  out = collections.OrderedDict()
  for (_, _), recs in groups(records).items():
    r = recs[0]
    key = (r["tier"], _cell(r), r["codec"], r["K"], r["units"])
    out.setdefault(key, {})[r["algorithm"]] = recs
  return out


def family_name(key) -> str:
  """``tier/cell-codec K=k, n units`` of a `families` key."""
  tier, cell, codec, k, units = key
  return f"{tier}/{cell}-{codec} K={k}, {units} units"


def _label(recs):
  r = recs[0]
  return f"{r['tier']}/{r['config']}"


def _images(recs):
  names = recs[0]["test"]["images"]
  for r in recs[1:]:
    if r["test"]["images"] != names:
      raise ValueError(f"{r['run']}: other test images than {recs[0]['run']}")
  return names


def test_matrix(recs: Sequence[dict], system: str = "decoder",
                metric: str = "psnr") -> np.ndarray:
  """(seeds, images) of a test metric (``system``: decoder or codec)."""
  _images(recs)
  return np.array([r["test"][system][metric] for r in recs], np.float64)


def gain_matrix(recs):
  return test_matrix(recs) - test_matrix(recs, "codec")


def ksweep_matrix(recs, k):
  return np.array([r["test"]["k_sweep"][str(k)] for r in recs], np.float64)


def val_curves(recs: Sequence[dict], gain: bool = False) -> np.ndarray:
  """(seeds, images, epochs) validation PSNR per image per epoch.

  Args:
    recs: the records of one group.
    gain: subtract the codec's PSNR of each image (per image when the log
      has it, else the mean).

  Logs without per-image values give one "image" (the mean).
  """
  per_image = all(e.get("val_per_image") for r in recs for e in r["epochs"])
  lengths = {len(r["epochs"]) for r in recs}
  if len(lengths) != 1 or 0 in lengths:
    raise ValueError(f"{_label(recs)}: runs have {sorted(lengths)} epochs")
  out = []
  for r in recs:
    eps = r["epochs"]
    if per_image:
      names = sorted(eps[0]["val_per_image"])
      codec = eps[0].get("codec_per_image") or {}
      out.append([[e["val_per_image"][n]
                   - (codec.get(n, e["codec_psnr"]) if gain else 0.0)
                   for e in eps] for n in names])
    else:
      out.append([[e["val_psnr"] - (e["codec_psnr"] if gain else 0.0)
                   for e in eps]])
  return np.array(out, np.float64)


def convergence_epochs(curves: np.ndarray, tol_db: float = 0.05
                       ) -> np.ndarray:
  """First (1-based) epoch within `tol_db` of the best, along the last axis
  (the trainer's `convergence_epoch`, vectorised)."""
  c = np.asarray(curves, np.float64)
  ok = c >= c.max(axis=-1, keepdims=True) - tol_db
  return (np.argmax(ok, axis=-1) + 1).astype(np.float64)


def _tol(recs):
  return float(recs[0]["training"].get("convergence_tol_db") or 0.05)


def verdict(iv: Optional[stats.Interval],
            refute: Optional[stats.Interval] = None) -> str:
  """confirmed / refuted / inconclusive for a claimed positive effect."""
  if iv is None:
    return INCONCLUSIVE
  if iv.above(0.0):
    return CONFIRMED
  if (refute or iv).below(0.0):
    return REFUTED
  return INCONCLUSIVE


def _claim(verdict_, iv, detail):
  return {"verdict": verdict_,
          "effect_db": None if iv is None else round(iv.estimate, 6),
          "ci95": None if iv is None else [round(iv.lo, 6), round(iv.hi, 6)],
          "detail": detail}


def _fmt(iv, unit="dB"):
  return f"{iv.estimate:+.3f} {unit} [{iv.lo:+.3f}, {iv.hi:+.3f}]"


def _every(members, compute, n_boot, seed, unit="dB"):
  """Intersection-union decision over members [(name, data)]: compute(data,
  level) -> Interval."""
  if not members:
    return INCONCLUSIVE, None, "no comparisons in the records", []
  m = len(members)
  rows = []
  for name, data in members:
    iv = compute(data, LEVEL)
    bonf = compute(data, 1.0 - (1.0 - LEVEL) / m) if m > 1 else iv
    rows.append((name, iv, bonf))
  verdicts = [verdict(iv, bonf) for _, iv, bonf in rows]
  if all(v == CONFIRMED for v in verdicts):
    v = CONFIRMED
  elif any(bonf.below(0.0) for _, _, bonf in rows):
    v = REFUTED
  else:
    v = INCONCLUSIVE
  worst = min(rows, key=lambda row: row[1].estimate)
  n_pos = sum(x == CONFIRMED for x in verdicts)
  n_neg = sum(bonf.below(0.0) for _, _, bonf in rows)
  detail = (f"{m} comparisons: {n_pos} above 0, {n_neg} below 0 "
            f"(Bonferroni); smallest: {worst[0]} {_fmt(worst[1], unit)}")
  del n_boot, seed
  return v, worst[1], detail, rows


def _enough(recs, min_seeds):
  return len(recs) >= min_seeds


def claim_a(records, n_boot, seed, min_seeds):
  gs = groups(records)
  members = [(_label(r), gain_matrix(r)) for r in gs.values()
             if _enough(r, min_seeds)]
  few = [_label(r) for r in gs.values() if not _enough(r, min_seeds)]
  v, iv, detail, rows = _every(
      members, lambda g, lv: stats.mean_ci(g, lv, n_boot, seed), n_boot,
      seed)
  if few:
    v = REFUTED if v == REFUTED else INCONCLUSIVE
    detail += f"; {len(few)} configurations with < {min_seeds} seeds"
  return _claim(v, iv, "gain over the codec at the same bitstream (equal "
                "bpp), test set; " + detail), rows


def _pairs(records, a, b, min_seeds):
  out = []
  for key, algos in families(records).items():
    if a in algos and b in algos and _enough(algos[a], min_seeds) and \
        _enough(algos[b], min_seeds):
      out.append((family_name(key), algos[a], algos[b]))
  return out


def claim_b(records, n_boot, seed, min_seeds):
  pairs = _pairs(records, "sab", "bptt", min_seeds)
  if not pairs:
    return _claim(INCONCLUSIVE, None, "no family with SAB and BPTT at "
                  f">= {min_seeds} seeds"), []
  gs, ws = [], []
  rows = []
  for name, sab, bptt in pairs:
    _images(sab + bptt)
    gs += [test_matrix(sab), test_matrix(bptt)]
    ws += [1.0 / len(pairs), -1.0 / len(pairs)]
    rows.append((name, stats.diff_ci(test_matrix(sab), test_matrix(bptt),
                                     LEVEL, n_boot, seed)))
  iv = stats.contrast_ci(gs, ws, LEVEL, n_boot, seed)
  per = "; ".join(f"{n} {_fmt(i)}" for n, i in rows)
  return _claim(verdict(iv), iv, f"SAB - BPTT test PSNR at equal examples, "
                f"mean over {len(pairs)} families: {per}"), rows


def _c_inference(records, n_boot, seed, min_seeds):
  """Claim (c) at inference: the part tuple, or None."""
  decided = [recs for recs in groups(records).values()
             if len(recs[0]["test"]["k_sweep"]) >= 2
             and _enough(recs, min_seeds)]
  if not decided:
    return None
  w = [1.0 / len(decided)] * len(decided)
  inf_groups = []
  for recs in decided:
    ks = sorted(int(k) for k in recs[0]["test"]["k_sweep"])
    inf_groups.append(ksweep_matrix(recs, ks[-1])
                      - ksweep_matrix(recs, ks[0]))
  iv = stats.contrast_ci(inf_groups, w, LEVEL, n_boot, seed)
  common = sorted(set.intersection(*[{int(k) for k in recs[0]["test"][
      "k_sweep"]} for recs in decided]))
  steps = ", ".join(
      f"K={a}->{b} " + _fmt(stats.contrast_ci(
          [ksweep_matrix(r, b) - ksweep_matrix(r, a) for r in decided], w,
          LEVEL, n_boot, seed)) for a, b in zip(common, common[1:]))
  return ("inference", iv, verdict(iv),
          f"K varied at inference (largest minus smallest K of the sweep, "
          f"mean of {len(decided)} configurations): {_fmt(iv)} -> "
          f"{verdict(iv)} (step by step, not decided on: {steps})")


def claim_c(records, n_boot, seed, min_seeds):
  inf = _c_inference(records, n_boot, seed, min_seeds)
  parts = [inf] if inf else []
  # training: same tier/cell/codec/algorithm, largest minus smallest K
  by_k = collections.OrderedDict()
  for recs in groups(records).values():
    r = recs[0]
    if _enough(recs, min_seeds):
      by_k.setdefault((r["tier"], _cell(r), r["codec"], r["algorithm"],
                       r["units"]), {})[r["K"]] = recs
  members = [(f"{key[0]}/{key[1]}-{key[2]}-{key[3]}, K={min(d)} -> "
               f"K={max(d)}",
              (d[max(d)], d[min(d)])) for key, d in by_k.items()
             if len(d) >= 2]
  if members:
    v, iv, detail, _ = _every(
        members, lambda p, lv: stats.diff_ci(test_matrix(p[0]),
                                             test_matrix(p[1]), lv, n_boot,
                                             seed), n_boot, seed)
    means = "; ".join(
        f"{key[0]}/{key[1]}-{key[2]}-{key[3]} test PSNR "
        + " / ".join(f"{test_matrix(d[k]).mean():.3f}" for k in sorted(d))
        + " dB at K = " + " / ".join(str(k) for k in sorted(d))
        for key, d in by_k.items() if len(d) >= 2)
    parts.append(("training", iv, v, "K at training (largest minus "
                  f"smallest trained K): {detail} ({means}) -> {v}"))
  if not parts:
    return _claim(INCONCLUSIVE, None, "no K sweep or K variants in the "
                  "records"), []
  verdicts = [p[2] for p in parts]
  if len(parts) == 2 and all(x == CONFIRMED for x in verdicts):
    v = CONFIRMED
  elif REFUTED in verdicts:
    v = REFUTED
  else:
    v = INCONCLUSIVE
  weakest = min(parts, key=lambda p: p[1].lo)
  missing = "" if len(parts) == 2 else (
      "; the other part has no records (needs both to confirm)")
  return _claim(v, weakest[1], "; ".join(p[3] for p in parts)
                + f"; effect shown: {weakest[0]}" + missing), parts


def _conv_stat(tol_other, tol_rtrl):
  def stat(gs):
    other = convergence_epochs(gs[0].mean(axis=1), tol_other).mean()
    rtrl = convergence_epochs(gs[1].mean(axis=1), tol_rtrl).mean()
    return float(other - rtrl)
  return stat


def best_val_gain(recs: Sequence[dict]) -> float:
  """The group's best validation gain over the codec (dB): the maximum over
  epochs of the gain averaged over seeds and images."""
  return float(val_curves(recs, gain=True).mean(axis=(0, 1)).max())


def _learns(recs):
  """True if the group's best validation gain exceeds the convergence
  tolerance: below it the whole curve lies within the tolerance of its best,
  and the convergence epoch times nothing (a decoder that never gets clear
  of its codec "converges" at once)."""
  try:
    return best_val_gain(recs) > _tol(recs)
  except ValueError:
    return False


def _d_members(records, min_seeds):
  """{reference: [(name, (other, ref))]} and the pairs left out (why)."""
  members = {a: [] for a in RTRL_LIKE}
  left_out = []
  for key, algos in families(records).items():
    ref = next((a for a in RTRL_LIKE if a in algos), None)
    if ref is None or not _enough(algos[ref], min_seeds):
      continue
    for algo, recs in algos.items():
      if algo in RTRL_LIKE or not _enough(recs, min_seeds):
        continue
      name = f"{family_name(key)}: {algo} - {ref}"
      quiet = [a for a, g in ((ref, algos[ref]), (algo, recs))
               if not _learns(g)]
      if quiet:
        left_out.append(f"{name} ({', '.join(quiet)} never more than "
                        f"{_tol(recs):.2f} dB above the codec)")
      else:
        members[ref].append((name, (recs, algos[ref])))
  return members, left_out


def claim_d(records, n_boot, seed, min_seeds):
  members, left_out = _d_members(records, min_seeds)

  def compute(pair, level):
    other, ref = pair
    a, b = val_curves(other), val_curves(ref)
    if a.shape[1:] != b.shape[1:]:
      a, b = a.mean(axis=1, keepdims=True), b.mean(axis=1, keepdims=True)
    return stats.statistic_ci([a, b], _conv_stat(_tol(other), _tol(ref)),
                              level, n_boot, seed)

  v, iv, detail, rows = _every(members["rtrl"] + members["snap1"], compute,
                               n_boot, seed, "epochs")
  absent = [_REF_NAME[a] for a in RTRL_LIKE if not members[a]]
  if absent and v == CONFIRMED:
    v = INCONCLUSIVE
  detail += "".join(f"; no comparison with {a} (needs both to confirm)"
                    for a in absent)
  if left_out:
    detail += (f"; {len(left_out)} left out, no convergence to time: "
               + "; ".join(left_out))
  return _claim(v, iv, "convergence epoch of each other algorithm minus "
                "RTRL's (exact tier: exact RTRL; size tier: SnAp-1), same "
                "family, algorithms that gain more than the tolerance on "
                "validation; effect_db and ci95 in epochs; " + detail), rows


_REF_NAME = {"rtrl": "exact RTRL (exact tier)",
             "snap1": "SnAp-1 (size tier)"}


def _split_run(run_id):
  tier, rest = run_id.split("/", 1)
  config, seed = rest.rsplit("-seed", 1)
  return tier, config, seed


def coverage(records: Sequence[dict], planned: Optional[Sequence[str]]
             ) -> Tuple[List[str], str]:
  """(planned run ids without a record, one sentence saying what is missing
  per tier; empty if nothing is). `planned`: run ids
  (``tier/config-seedN``), None: the records are the plan."""
  have = {r["run"] for r in records}
  missing = [p for p in (planned or ()) if p not in have]
  if not missing:
    return [], ""
  parts = []
  for tier in dict.fromkeys(_split_run(p)[0] for p in planned):
    want = [p for p in planned if _split_run(p)[0] == tier]
    gone = [p for p in missing if _split_run(p)[0] == tier]
    if not gone:
      continue
    if len(gone) == len(want):
      parts.append(f"tier {tier}: no records (0 of {len(want)} runs)")
      continue
    seeds = collections.OrderedDict()
    for p in gone:
      seeds.setdefault(_split_run(p)[2], []).append(_split_run(p)[1])
    what = ", ".join(f"seed {k}: " + (", ".join(v) if len(v) <= 3 else
                                      f"{len(v)} configurations")
                     for k, v in seeds.items())
    parts.append(f"tier {tier}: {len(want) - len(gone)} of {len(want)} runs "
                 f"({what} missing)")
  return missing, ("partial study, " + str(len(missing)) + " of "
                   + str(len(planned)) + " planned runs not recorded: "
                   + "; ".join(parts))


def _partial(out, note):
  """No claim is decided while planned runs are missing: a verdict of the
  recorded runs alone is kept in the detail."""
  for c in out.values():
    if c["verdict"] != INCONCLUSIVE:
      c["detail"] += f"; {c['verdict']} on the recorded runs alone"
      c["verdict"] = INCONCLUSIVE
    c["detail"] += "; " + note


def decide_all(records: Sequence[dict], n_boot: int = stats.DEFAULT_BOOT,
               seed: int = 0, min_seeds: int = MIN_SEEDS,
               planned: Optional[Sequence[str]] = None):
  """(claims document, {claim: per-comparison rows}) of `records`;
  `planned` (run ids): with some of them missing nothing is decided
  (`_partial`) and every detail says what is missing."""
  out, rows = {}, {}
  for name, fn in (("a", claim_a), ("b", claim_b), ("c", claim_c),
                   ("d", claim_d)):
    out[name], rows[name] = fn(records, n_boot, seed, min_seeds)
  note = coverage(records, planned)[1]
  if note:
    _partial(out, note)
  gs = groups(records)
  doc = {"claims": out, "runs": len(records),
         "seeds_min": min((len(v) for v in gs.values()), default=0)}
  return doc, rows


def decide_claims(records: Sequence[dict], n_boot: int = stats.DEFAULT_BOOT,
                  seed: int = 0, min_seeds: int = MIN_SEEDS,
                  planned: Optional[Sequence[str]] = None) -> dict:
  """The claims document (see the module docstring)."""
  return decide_all(records, n_boot, seed, min_seeds, planned)[0]


_TITLES = {"a": "every decoder beats its codec at equal bpp",
           "b": "SAB >= BPTT",
           "c": "PSNR grows with K (at inference and at training)",
           "d": "RTRL (exact, and approximate at size) converges first"}


def write_claims(doc: dict, out_dir: str, note: str = ""
                 ) -> Tuple[str, str]:
  """Writes ``claims.json`` and ``claims.md`` (`note`: a line on what is
  missing, `coverage`); returns their paths."""
  os.makedirs(out_dir, exist_ok=True)
  js = os.path.join(out_dir, "claims.json")
  with open(js + ".tmp", "w") as f:
    json.dump(doc, f, indent=1)
  os.replace(js + ".tmp", js)
  lines = ["# The paper's claims, decided", "",
           f"{doc['runs']} run records, at least {doc['seeds_min']} seeds "
           "per configuration.", ""] + ([f"**This is a {note}.**", ""]
                                        if note else []) + [
               f"Decision rule: {RULE}", "",
           "| claim | verdict | effect | 95 % interval |", "|---|---|---|---|"]
  for k, c in doc["claims"].items():
    unit = "epochs" if k == "d" else "dB"
    eff = "-" if c["effect_db"] is None else f"{c['effect_db']:+.3f} {unit}"
    ci = "-" if c["ci95"] is None else (f"[{c['ci95'][0]:+.3f}, "
                                        f"{c['ci95'][1]:+.3f}]")
    lines.append(f"| ({k}) {_TITLES[k]} | **{c['verdict']}** | {eff} | {ci} |")
  lines.append("")
  for k, c in doc["claims"].items():
    lines += [f"* ({k}) {c['detail']}"]
  md = os.path.join(out_dir, "claims.md")
  with open(md, "w") as f:
    f.write("\n".join(lines) + "\n")
  return js, md
