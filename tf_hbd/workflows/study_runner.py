"""The study of issue 14: many seeded runs that accumulate into decided claims.

A *study* is a set of tiers (`Tier`); a tier is a list of configurations
(`RunSpec`: training flags on top of the tier's) each trained with several
seeds. Every finished run leaves a small JSON record (no weights) under
``<out_dir>/runs/<tier>/<config>-seed<N>/``:

* ``record.json``: the configuration and flags, the seed, the training
  summary (batches, examples seen, updates made, step time), the per-epoch
  validation rows of the training log (with per-image PSNRs) and the final
  metrics on the test set: the codec's and the decoder's per-image bpp /
  PSNR / SSIM / MS-SSIM at the tier's rate, per-image PSNR at every K of the
  K sweep, and per-image rate-distortion points;
* ``train.log``: the last lines of the training output.

`run_study` walks the plan in order: a run whose record exists is skipped; a
run without one is trained in ``<work_dir>/<tier>/<config>-seed<N>`` (the
trainer resumes from that directory's newest checkpoint, so an interrupted
run loses at most ``--checkpoint_every`` batches), evaluated, and its record
written atomically. The evaluation (`evaluate_decoder`) computes only the
metrics the record keeps, and the codec's own rows (the same for every run
of a codec) go through a `tf_hbd.evaluation.metric_cache.MetricCache`
shared by the runs (``--metric_cache``, outside the repository by default),
as do the codec round trips the codec and decoder rows start from (JPEG 2000's
rate search: seconds per image and rate), through a
`tf_hbd.evaluation.codec_cache.RoundTripCache` (``--codec_cache``): the
numbers are the same with or without them. The trained K and the K sweep
come from one refinement pass per image (`tf_hbd.evaluation.step_sweep`:
the same pixels as a refinement at each K). The tables, figures and claims
are then regenerated from whatever records exist
(`tf_hbd.evaluation.study_report`, `tf_hbd.evaluation.claims`), so the study
can be spread over days.

Before training, the CPU hours of the runs still to do are estimated
(`estimate_parts`) from a measured step time per (tier, algorithm, cell):
the real training program on the real data for two short epochs, the steady
second epoch's step time (data pipeline included) timed by the trainer
itself; plus the run's start-up, validation every epoch, decoder load and
test evaluation (refinement at every K and rate, and the metrics the record
keeps) from measured per-megapixel costs (`measure_eval_costs`), with the
codec's rows (round trips, metrics) counted once per study as the caches
make them. A record (or a model dir) of other flags than the run's is
neither counted nor overwritten (`record_mismatch`). The measurements are
cached in ``<out_dir>/step_times.json``.

Entry points: ``python scripts/study.py`` and
``python scripts/reproduce.py --scale=study`` (same flags).
"""

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from tf_hbd import arguments
from tf_hbd import errors
from tf_hbd import quiet  # first: TF's log lines off (scripts/study.py --help)

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from tf_hbd.data import roots
from tf_hbd.training import config as config_lib
from tf_hbd.workflows import children

__all__ = ["RunSpec", "Tier", "Run", "STUDIES", "plan", "run_config",
           "run_flags",
           "record_path", "record_mismatch", "train_run", "evaluate_run",
           "evaluate_decoder",
           "make_record",
           "measure_step_time", "measure_key", "measure_dir",
           "measure_eval_costs", "estimate_parts", "estimate_hours",
           "EVAL_KEY", "validation_mpixels",
           "run_study", "main", "ONLINE_ALGORITHMS", "EXACT_TIER_UNITS",
           "EXACT_TIER_BATCH", "size_tier", "exact_tier"]

# Algorithms that apply one update per refinement step unless --accumulate.
ONLINE_ALGORITHMS = ("rtrl", "uoro", "snap1")
RECORD = "record.json"
TRAIN_LOG = "train.log"
LOG_TAIL_LINES = 200


# Settings every run's flags (and so its record) list, even at their
# defaults: what a run is.
_RUN_FIELDS = ("algo", "codec", "sne", "seed")


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """One configuration of a tier.

  Attributes:
    name: directory-safe name, e.g. ``lstm-jpeg-bptt`` or ``sne-jp2-sab``.
    changes: (`RunConfig` field, value) pairs changing the tier's settings.
  """
  name: str
  changes: Tuple[Tuple[str, object], ...]

  @property
  def flags(self) -> Tuple[Tuple[str, str], ...]:
    """`changes` as flag text (`tf_hbd.training.config.flag_text`)."""
    return tuple((k, config_lib.flag_text(v)) for k, v in self.changes)


@dataclasses.dataclass(frozen=True, eq=False)
class Tier:
  """A tier of the study: shared settings, configurations, seeds, evaluation.

  Attributes:
    name: directory name (``size``, ``exact``...).
    description: one line for the reports.
    train: the settings of ``python -m tf_hbd.training`` shared by every
      run, a `tf_hbd.training.config.RunConfig` ("{data}" in its paths
      stands for the data root, "{codec}" for the run's codec).
    pinned: fields of `train` listed in every run's flags (and record) even
      where they equal the defaults (besides algo, codec, sne and seed).
    configs: the configurations.
    seeds: seeds 0 .. seeds-1 per configuration.
    test: the test set as ``NAME=FOLDER``.
    test_bpp: Table 3's rate on it.
    test_max_images, test_max_side: evaluation limits (None: all / as is).
    k_sweep: K values evaluated at inference (Table 1, claim c).
    rd_bpps: rates of the RD curves.
    rd_seeds: RD points only for seeds below this (the RD plot, no claim;
      None: every seed).
  """
  name: str
  description: str
  train: config_lib.RunConfig
  pinned: Tuple[str, ...]
  configs: Tuple[RunSpec, ...]
  seeds: int
  test: str
  test_bpp: float
  test_max_images: Optional[int]
  test_max_side: Optional[int]
  k_sweep: Tuple[int, ...]
  rd_bpps: Tuple[float, ...]
  rd_seeds: Optional[int] = None

  @property
  def train_flags(self) -> Tuple[Tuple[str, str], ...]:
    """`train` as sorted (flag, text) pairs: what differs from the defaults
    and the `pinned` fields."""
    return tuple(sorted(config_lib.to_flags(self.train,
                                            keep=self.pinned).items()))


def _tier_settings(settings: Dict[str, object]) -> Dict[str, object]:
  """A tier's `train` (`settings` over the defaults) and `pinned` (their
  names: a record lists every setting its tier names)."""
  return {"train": config_lib.override(config_lib.RunConfig(), **settings),
          "pinned": tuple(sorted(settings))}


@dataclasses.dataclass(frozen=True)
class Run:
  """One (tier, configuration, seed)."""
  tier: Tier
  spec: RunSpec
  seed: int

  @property
  def run_id(self) -> str:
    return f"{self.tier.name}/{self.spec.name}-seed{self.seed}"

  @property
  def rd(self) -> bool:
    """Whether this run's evaluation has the RD points."""
    return self.tier.rd_seeds is None or self.seed < self.tier.rd_seeds


def _grid(algorithms, cells, codecs, extra=None, k_values=()):
  """RunSpecs for every (cell, codec, algorithm); K variants of BPTT."""
  out = []
  for cell in cells:
    for codec in codecs:
      for algo in algorithms:
        fl = {"algo": algo, "codec": codec, "sne": cell == "sne"}
        fl.update((extra or {}).get(algo, {}))
        out.append(RunSpec(f"{cell}-{codec}-{algo}", tuple(sorted(fl.items()))))
  for k in k_values:  # claim (c): K at training, LSTM-JPEG-BPTT
    fl = {"algo": "bptt", "codec": "jpeg", "sne": False, "K": k}
    out.append(RunSpec(f"lstm-jpeg-bptt-K{k}", tuple(sorted(fl.items()))))
  return tuple(out)


# The decoder-quality recipe (BUILD.md, "The decoder-quality recipe") with
# photographs only: fresh compression of train400 crops every epoch, the
# codec setting as input, replicate boundary, Adam + cosine, weight average,
# MSE loss; validation on 16 BSD68 images at the test rate.
_RECIPE = {
    "dataset": "recompress:{data}/train400", "synthetic_fraction": 0.0,
    "tone_fraction": 0.0, "jp2_bpp": "0.15-1", "patch_size": 8,
    "cell": "lstm", "tied": True, "boundary": "replicate",
    "setting_input": True, "optimizer": "adam", "lr": 1e-3,
    "lr_schedule": "cosine", "warmup": 100, "lr_end_fraction": 0.02,
    "ema": 0.99, "alpha": 1.0, "K": 4, "batch_size": 256,
    "val_images": "{data}/bsd68", "val_bpp": 0.37, "val_max_images": 16,
    "log_every": 500, "checkpoint_every": 500,
}

# Exact tier: the largest LSTM at which exact RTRL's peak-memory estimate
# fits its 4 GiB guard at batch 256, float32
# (`tf_hbd.training.algorithms.rtrl.largest_units`; checked by the test).
EXACT_TIER_BATCH = 256
EXACT_TIER_UNITS = 38

_CODEC_NAMES = {"jpeg": "JPEG", "jp2": "JPEG 2000"}


def _codec_list(codecs):
  return " and ".join(_CODEC_NAMES[c] for c in codecs)


def size_tier(units: int, epochs: int, steps_per_epoch: int,
              precision: str = "bfloat16", checkpoint_every: int = 500,
              why: str = "", sne_codecs: Sequence[str] = ("jpeg", "jp2"),
              rd_seeds: Optional[int] = None) -> Tier:
  """The size tier at `units`: BPTT, SAB, UORO and SnAp-1 (approximate
  RTRL), the LSTM cell with JPEG and JPEG 2000 and the SNE cell with
  `sne_codecs`, 3 seeds, LSTM-JPEG-BPTT at K = 2 and 8 too; `epochs` x
  `steps_per_epoch` batches of 256 per run; RD points for seeds below
  `rd_seeds` (None: all)."""
  batches = epochs * steps_per_epoch
  algos = ("bptt", "sab", "uoro", "snap1")
  rd = "" if rd_seeds is None else f"; RD rates for seed 0-{rd_seeds - 1}"
  return Tier(
      name="size",
      description=f"size tier: LSTM-{units}{why} trained with BPTT, SAB, "
      "UORO and SnAp-1 (approximate RTRL), LSTM cells with JPEG and JPEG "
      f"2000, SNE cells with {_codec_list(sne_codecs)}, 3 seeds; "
      f"{precision} products; {epochs} epochs of {steps_per_epoch:,} "
      f"batches of 256 blocks ({batches * 256:,} examples) per run; BPTT at "
      f"K = 2 and 8 too{rd}",
      **_tier_settings({
          **_RECIPE, "units": units, "precision": precision,
          "epochs": epochs, "steps_per_epoch": steps_per_epoch,
          "checkpoint_every": checkpoint_every}),
      configs=(_grid(algos, ("lstm",), ("jpeg", "jp2"))
               + _grid(algos, ("sne",), tuple(sne_codecs), k_values=(2, 8))),
      seeds=3, test="kodak={data}/kodak", test_bpp=0.37,
      test_max_images=None, test_max_side=None, k_sweep=(1, 2, 4, 6, 8),
      rd_bpps=(0.25, 0.5, 1.0), rd_seeds=rd_seeds)


def exact_tier(epochs: int, steps_per_epoch: int,
               checkpoint_every: int = 50,
               codecs: Sequence[str] = ("jpeg", "jp2"),
               rd_seeds: Optional[int] = None) -> Tier:
  """The exact tier: LSTM-`EXACT_TIER_UNITS` at batch `EXACT_TIER_BATCH`,
  float32, BPTT, SAB, UORO and exact RTRL, `codecs`, 3 seeds; RD points
  for seeds below `rd_seeds` (None: all)."""
  batches = epochs * steps_per_epoch
  rd = "" if rd_seeds is None else f"; RD rates for seed 0-{rd_seeds - 1}"
  return Tier(
      name="exact",
      description=f"exact tier: LSTM-{EXACT_TIER_UNITS} (the largest at "
      "which exact RTRL fits its 4 GiB memory guard at batch "
      f"{EXACT_TIER_BATCH}, float32) trained with BPTT, SAB, UORO and exact "
      f"RTRL, {_codec_list(codecs)}, 3 seeds; {epochs} epochs of "
      f"{steps_per_epoch:,} batches of {EXACT_TIER_BATCH} blocks "
      f"({batches * EXACT_TIER_BATCH:,} examples) per run{rd}",
      **_tier_settings({
          **_RECIPE, "units": EXACT_TIER_UNITS,
          "batch_size": EXACT_TIER_BATCH, "precision": "float32",
          "epochs": epochs, "steps_per_epoch": steps_per_epoch,
          "checkpoint_every": checkpoint_every}),
      configs=_grid(("bptt", "sab", "uoro", "rtrl"), ("lstm",),
                    tuple(codecs)),
      seeds=3, test="kodak={data}/kodak", test_bpp=0.37,
      test_max_images=None, test_max_side=None, k_sweep=(1, 2, 4, 6, 8),
      rd_bpps=(0.25, 0.5, 1.0), rd_seeds=rd_seeds)


# The first setting (issue 14 as first registered): the paper's LSTM-512,
# 12,000 batches per run; about 142 CPU hours here under load (25-35 h
# idle), kept as STUDIES["study512"].
_SIZE512 = size_tier(512, 8, 1500, why=" (the paper's size)")
_EXACT512 = exact_tier(6, 250)

# The second setting: LSTM-128 in float32 (bfloat16 products are slower
# than float32 at 128 units here), 10 epochs of 1,000 batches, every cell
# with both codecs; exact RTRL 8 epochs of 50 batches, both codecs. About
# 68 h of training and refinement under load before the evaluation's
# metrics were counted; kept as STUDIES["study10k"] (its first record, the
# pilot, in results/study10k).
_SIZE10K = size_tier(128, 10, 1000, precision="float32",
                     why=" (the largest that fits a 10-15 CPU-hour study "
                     "here)")
_EXACT10K = exact_tier(8, 50)

# The study that fits this machine with its evaluation (BUILD.md, "The
# study (issue 14)": what each cut keeps of the claims, measured step times
# and evaluation costs, CPU hours): LSTM-128 float32, 8 epochs of 400
# batches; SNE with JPEG only; exact tier with JPEG only, 8 epochs of 250
# batches (at 50, as first planned, its BPTT decoder did not learn: +0.004
# dB on validation; at 250, +0.373 dB); RD rates for seed 0 only.
_SIZE = size_tier(128, 8, 400, precision="float32", checkpoint_every=400,
                  why=" (the largest that fits the study here)",
                  sne_codecs=("jpeg",), rd_seeds=1)
_EXACT = exact_tier(8, 250, codecs=("jpeg",), rd_seeds=1)

# CI scale (tests): embedded sample photographs, 4-unit decoders, a few steps.
_TINY_SETTINGS = {
    "dataset": "sample", "units": 4, "K": 2, "batch_size": 16,
    "epochs": 2, "steps_per_epoch": 3, "train_limit": 2,
    "train_max_side": 64, "val_max_images": 2, "val_max_side": 48,
    "optimizer": "adam", "lr": 1e-3, "log_every": 0,
    "checkpoint_every": 1, "patch_size": 8,
}
_TINY = Tier(
    name="tiny", description="tiny tier (tests): sample photographs, "
    "LSTM-4, 2 epochs x 3 batches of 16", **_tier_settings(_TINY_SETTINGS),
    configs=_grid(("bptt", "sab"), ("lstm",), ("jpeg",)), seeds=2,
    test="sample_test=sample:test", test_bpp=0.6, test_max_images=2,
    test_max_side=64, k_sweep=(1, 2), rd_bpps=(0.8,))

STUDIES = {"study": (_SIZE, _EXACT), "study10k": (_SIZE10K, _EXACT10K),
           "study512": (_SIZE512, _EXACT512), "tiny": (_TINY,)}


def plan(tiers: Sequence[Tier]) -> List[Run]:
  """Every run of `tiers`, seed-major (all configurations at seed 0 first,
  so a partial study has comparable seeds of everything)."""
  out = []
  for tier in tiers:
    for seed in range(tier.seeds):
      out += [Run(tier, spec, seed) for spec in tier.configs]
  return out


def run_config(run: Run) -> config_lib.RunConfig:
  """The settings of `run`: the tier's, changed by its configuration's, its
  seed ("{data}" and "{codec}" left in)."""
  return config_lib.override(run.tier.train, **dict(run.spec.changes),
                             seed=run.seed)


def run_flags(run: Run, data_root: Optional[str]) -> Dict[str, str]:
  """The training flags of `run`, derived from `run_config` (what differs
  from the defaults, the tier's pinned fields, algo, codec, sne, seed)."""
  cfg = run_config(run)
  keep = set(run.tier.pinned) | set(dict(run.spec.changes)) | set(_RUN_FIELDS)
  fl = config_lib.to_flags(cfg, keep=tuple(keep))
  return {k: roots.fill(v, data_root).replace("{codec}", cfg.codec)
          for k, v in fl.items()}


def record_path(out_dir: str, run: Run) -> str:
  return os.path.join(out_dir, "runs", run.run_id, RECORD)


# Flags that move with the machine (data paths), not part of a setting.
_DATA_FLAGS = ("dataset", "val_images", "data_dir")
# The budget a model dir was trained to (`_one_run` will not resume or
# evaluate a model dir trained for another).
_BUDGET_FLAGS = ("epochs", "steps_per_epoch", "batch_size", "units", "K")


def record_mismatch(out_dir: str, run: Run, data_root: str) -> List[str]:
  """The flags in which `run`'s existing record differs from `run_flags`
  (data paths aside): [] if it matches or there is none. A record of
  another setting (e.g. of a study renamed since) is not counted."""
  path = record_path(out_dir, run)
  if not os.path.isfile(path):
    return []
  try:
    with open(path) as f:
      got = json.load(f).get("flags") or {}
  except (OSError, ValueError):
    return ["(unreadable record)"]
  want = run_flags(run, data_root)
  return sorted(k for k in set(want) | set(got)
                if k not in _DATA_FLAGS and want.get(k) != got.get(k))


def _to_do(runs, out_dir, data_root):
  """(runs without a record or with a record of other flags, {run_id:
  differing flags} of the latter)."""
  stale = {r.run_id: d for r in runs
           for d in [record_mismatch(out_dir, r, data_root)] if d}
  return ([r for r in runs if r.run_id in stale
           or not os.path.isfile(record_path(out_dir, r))], stale)


def _budget_mismatch(log, flags_) -> List[str]:
  """The `_BUDGET_FLAGS` in which a model dir's training log differs from
  the run's flags."""
  got = (log or {}).get("flags") or {}
  return [k for k in _BUDGET_FLAGS if k in got and k in flags_
          and str(got[k]).lower() != str(flags_[k]).lower()]


def _log_status(model_dir):
  path = os.path.join(model_dir, "log.json")
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _train_in_process(args: List[str], log_file: str) -> int:
  """``python -m tf_hbd.training`` in this process (tests: no TF start-up
  per run). Flags are reset before and after."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import main as train_main  # pylint: disable=g-import-not-at-top
  fl = flags.FLAGS
  was_parsed = fl.is_parsed()
  fl.unparse_flags()
  buf = io.StringIO()
  try:
    fl(["tf_hbd.training"] + args)
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
      code = train_main.main(["tf_hbd.training"])
  finally:
    fl.unparse_flags()
    if was_parsed:
      fl.mark_as_parsed()
    with open(log_file, "a") as f:
      f.write(buf.getvalue())
  return int(code or 0)


def train_run(flags_: Dict[str, str], model_dir: str, log_file: str,
              in_process: bool = False) -> int:
  """Trains (or resumes, or finds finished) one run; returns the exit code."""
  log = _log_status(model_dir)
  if (log and log.get("status") == "finished"
      and os.path.isdir(os.path.join(model_dir, "serving"))):
    return 0
  os.makedirs(model_dir, exist_ok=True)
  args = [f"--model_dir={model_dir}"] + [f"--{k}={v}" for k, v in
                                         sorted(flags_.items())]
  if in_process:
    return _train_in_process(args, log_file)
  with open(log_file, "a") as log_f:  # Ctrl-C: the run checkpoints first
    return children.run([sys.executable, "-m", "tf_hbd.training"] + args,
                        log=log_f)


def _per_image(rows, keys=("bpp", "psnr", "ssim", "ms-ssim")):
  return {k: [float(r[k]) for r in rows] for k in keys}


class _TestSet:
  """The test images of a tier, loaded once."""

  def __init__(self):
    self._cache = {}

  def get(self, tier: Tier, data_root: str):
    from tf_hbd.evaluation import study  # pylint: disable=g-import-not-at-top
    from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
    key = (tier.test, data_root, tier.test_max_side, tier.test_max_images)
    if key not in self._cache:
      spec = study.parse_dataset(roots.fill(tier.test, data_root),
                                 bpp=tier.test_bpp,
                                 max_side=tier.test_max_side)
      imgs = systems.load_eval_images(spec.path, spec.max_side,
                                      tier.test_max_images)
      self._cache[key] = (spec, imgs)
    return self._cache[key]


def evaluate_run(model_dir: str, tier: Tier, spec, imgs,
                 metric_cache=None, codec_cache=None, rd: bool = True) -> dict:
  """The record's ``test`` section of the decoder in `model_dir`, loaded
  once (`evaluate_decoder`)."""
  from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
  return evaluate_decoder(systems.load_trained_decoder(model_dir), tier,
                          spec, imgs, metric_cache=metric_cache,
                          codec_cache=codec_cache, rd=rd)


def evaluate_decoder(dec, tier: Tier, spec, imgs, metric_cache=None,
                     every_metric: Optional[Callable] = None,
                     codec_cache=None, rd: bool = True) -> dict:
  """The record's ``test`` section: per-image metrics of codec and decoder
  at the tier's rate, the K sweep and the RD points.

  Only the metrics the record keeps are computed: all three at the tier's
  rate, PSNR at the other K of the sweep, PSNR and MS-SSIM at the RD rates
  (`tf_hbd.evaluation.metrics.subset`: the same values `all_metrics`
  gives).

  The trained K and the K sweep at the tier's rate come from one refinement
  pass of the sweep's largest K per image (`tf_hbd.evaluation.step_sweep`:
  checked against the decoder's own refinement on the first image, the same
  pixels), the RD points from the decoder at its trained K.

  Args:
    dec: a `tf_hbd.evaluation.systems.LoadedDecoder`.
    tier, spec, imgs: the tier, its test set and images (`_TestSet`).
    metric_cache: a `tf_hbd.evaluation.metric_cache.MetricCache` for the
      codec's own rows, which every run of the study with this codec
      shares (the decoder's rows are new in every run and not cached).
    every_metric: a measure giving all three metrics (e.g.
      `metrics.tf_metrics`) to score every row with, no cache, as before the
      subsets (``benchmarks/study_eval_profile.py``); the same record.
    codec_cache: a `tf_hbd.evaluation.codec_cache.RoundTripCache` for the
      codec round trips (every run of the study with this codec codes the
      same images at the same rates); None: coded here.
    rd: False: no RD points (``rd`` empty; `Tier.rd_seeds`).
  """
  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics
  from tf_hbd.evaluation import step_sweep
  from tf_hbd.evaluation import systems

  def measure(names, shared=False):
    if every_metric is not None:
      return every_metric
    if shared and metric_cache is not None:
      return metric_cache.subset(*names)
    return metrics.subset(*names)

  # one codec round trip per image and rate (on disk: per study)
  cache = systems.CodecCache(disk=codec_cache)
  codec = systems.codec_system(dec.codec)
  codec.name = "codec"
  # the trained K and the K sweep at the test rate: one pass per image
  sweep = step_sweep.StepSweep(dec, tier.k_sweep)

  def codec_and_decoder(bpp, names, decoder):
    rows = systems.evaluate(imgs, [codec], [bpp], cache=cache,
                            measure=measure(names, shared=True))
    rows.update(systems.evaluate(imgs, [decoder], [bpp], cache=cache,
                                 measure=measure(names)))
    return rows

  res = codec_and_decoder(tier.test_bpp, metrics.METRIC_NAMES,
                          sweep.system(dec.K, "decoder"))
  out = {"dataset": spec.name, "bpp": tier.test_bpp,
         "images": [im.name for im in imgs], "trained_K": dec.K,
         "codec": _per_image(res["codec"]),
         "decoder": _per_image(res["decoder"]), "k_sweep": {}, "rd": {}}
  ks = [sweep.system(k, f"K={k}") for k in tier.k_sweep if k != dec.K]
  kres = systems.evaluate(imgs, ks, [tier.test_bpp], cache=cache,
                          measure=measure(("psnr",))) if ks else {}
  for k in tier.k_sweep:
    rows = res["decoder"] if k == dec.K else kres[f"K={k}"]
    out["k_sweep"][str(k)] = [float(r["psnr"]) for r in rows]
  rd_keys = ("bpp", "psnr", "ms-ssim")
  decoder = systems.trained_decoder_system(dec, label="decoder")
  for bpp in tier.rd_bpps if rd else ():
    rows = codec_and_decoder(bpp, rd_keys[1:], decoder)
    out["rd"][repr(float(bpp))] = {
        name: _per_image(r, rd_keys) for name, r in rows.items()}
  return out


def _updates_per_batch(log, flags_):
  if log.get("updates_per_batch"):
    return int(log["updates_per_batch"])
  online = (flags_.get("algo") in ONLINE_ALGORITHMS
            and str(flags_.get("accumulate", "false")).lower() != "true")
  return int(flags_.get("K", 4)) if online else 1


def make_record(run: Run, flags_: Dict[str, str], log: dict, test: dict,
                eval_time_s: float) -> dict:
  """The small JSON record of a finished run (see the module docstring)."""
  epochs = log.get("epochs", [])
  batches = epochs[-1]["step"] if epochs else 0
  per_batch = _updates_per_batch(log, flags_)
  batch_size = int(log.get("batch_size", flags_.get("batch_size", 0)))
  time_s = float(epochs[-1]["time_s"]) if epochs else 0.0
  return {
      "schema": 1,
      "run": run.run_id, "tier": run.tier.name, "config": run.spec.name,
      "seed": run.seed,
      "algorithm": flags_["algo"], "cell": flags_.get("cell", "lstm"),
      "sne": flags_.get("sne", "false") == "true",
      "codec": flags_["codec"], "K": int(flags_.get("K", 4)),
      "units": int(flags_.get("units", 0)),
      "flags": dict(sorted(flags_.items())),
      "status": log.get("status"),
      "training": {
          "batches": batches, "batch_size": batch_size,
          "examples": batches * batch_size,
          "updates_per_batch": per_batch, "updates": batches * per_batch,
          "time_s": time_s,
          "step_s": time_s / batches if batches else None,
          "algorithm_config": log.get("algorithm_config"),
          "convergence_tol_db": log.get("convergence_tol_db"),
          "convergence_epoch": log.get("convergence_epoch"),
          "best": log.get("best"),
      },
      "epochs": epochs,
      "test": test,
      "eval_time_s": eval_time_s,
  }


def _write_json(path, doc):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(doc, f, indent=1, sort_keys=False)
  os.replace(tmp, path)


def _tail(path, n):
  if not os.path.isfile(path):
    return ""
  with open(path, errors="replace") as f:
    return "".join(f.readlines()[-n:])


# ---- the CPU-hours estimate -------------------------------------------------

def measure_key(run: Run) -> str:
  cfg = run_config(run)
  return (f"{run.tier.name}:{cfg.algo}:sne={config_lib.flag_text(cfg.sne)}:"
          f"units={cfg.units}:batch={cfg.batch_size}")


EVAL_KEY = "eval"


def measure_step_time(run: Run, data_root: str, work_dir: str,
                      steps: int = 5, in_process: bool = False) -> dict:
  """Times `run`'s configuration: the real trainer, 2 epochs of `steps`.

  Returns:
    {"step_s": the second epoch's step time per batch (trainer-timed,
    data pipeline included), "overhead_s": the rest of the trainer's wall
    time (start-up, data set-up, tracing, validation, export: once per
    run), "load_s": loading the exported decoder, "refine_s_per_mpixel":
    whole-image refinement time per megapixel of it, "how", "measured",
    "load_average": the machine's 1-minute load average after it}.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
  fl = run_flags(run, data_root)
  fl.update({"epochs": "2", "steps_per_epoch": str(steps), "seed": "0",
             "val_max_images": "1", "log_every": "0",
             "checkpoint_every": "0", "K": "4"})
  model_dir = measure_dir(run, work_dir)
  log_file = model_dir + ".log"
  t0 = time.perf_counter()
  code = train_run(fl, model_dir, log_file, in_process=in_process)
  wall = time.perf_counter() - t0
  log = _log_status(model_dir)
  if code != 0 or not log or len(log.get("epochs", [])) < 2:
    raise RuntimeError(f"measuring {measure_key(run)} failed (exit {code}); "
                       f"see {log_file}")
  step_s = float(log["epochs"][1]["epoch_time_s"]) / steps
  t0 = time.perf_counter()
  dec = systems.load_trained_decoder(model_dir)
  load_s = time.perf_counter() - t0
  yy, xx = np.mgrid[0:256, 0:256]
  img = np.clip(128 + 60 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
                + (xx + yy) / 8.0, 0, 255).astype(np.uint8)
  decoded, enc = legacy.roundtrip(img, dec.codec, bpp=1.0)
  dec.refine(decoded, encoded=enc)  # trace
  t0 = time.perf_counter()
  dec.refine(decoded, encoded=enc)
  refine = (time.perf_counter() - t0) / (256 * 256 / 1e6)
  return {"step_s": step_s, "overhead_s": wall - 2 * steps * step_s,
          "load_s": load_s, "refine_s_per_mpixel": refine,
          "how": f"2 epochs x {steps} batches of the run's own flags; "
                 "second epoch's trainer-timed step time; refinement of "
                 "one 256 x 256 image after a warm-up call",
          "measured": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
          "load_average": round(os.getloadavg()[0], 2)}


def measure_dir(run: Run, work_dir: str) -> str:
  """The model dir `measure_step_time` trains `run`'s key in."""
  return os.path.join(work_dir, "measure", measure_key(run).replace(
      ":", "_").replace("=", "-"))


def _timed(fn, repeats):
  """(median wall seconds, median CPU seconds of this process, first
  call's wall seconds, last result) of `repeats` calls after a first."""
  import statistics  # pylint: disable=g-import-not-at-top
  t0 = time.perf_counter()
  out = fn()
  first = time.perf_counter() - t0
  walls, cpus = [], []
  for _ in range(repeats):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    walls.append(time.perf_counter() - t0)
    cpus.append(time.process_time() - c0)
  return statistics.median(walls), statistics.median(cpus), first, out


def measure_eval_costs(dec, imgs, bpp: float, repeats: int = 2,
                       sweep_k: int = 8) -> dict:
  """Per-megapixel costs of the parts of a run's evaluation, on `imgs`.

  Times (after a first call each) the codec round trips with their rate
  search (JPEG, JPEG 2000: once per study with the codec cache), a round
  trip read from a `tf_hbd.evaluation.codec_cache.RoundTripCache` (every
  run), `dec`'s refinement at its K, its pass of `sweep_k` steps keeping
  every step (``refine_steps``: the K sweep, `tf_hbd.evaluation.step_sweep`;
  when `dec` has one), and the metrics the evaluation computes: PSNR, SSIM
  with MS-SSIM (one pass), MS-SSIM alone.

  Returns:
    {"s_per_mpixel": {part: wall seconds per megapixel},
    "cpu_s_per_mpixel": the same in this process's CPU seconds,
    "warmup_s": the first refinement's extra wall time per image shape,
    "images", "how", "measured", "load_average"}.
  """
  import collections  # pylint: disable=g-import-not-at-top
  import tempfile  # pylint: disable=g-import-not-at-top
  from tf_hbd.codecs import legacy  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import codec_cache  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  wall, cpu = collections.defaultdict(float), collections.defaultdict(float)
  warmup = {}

  def add(name, fn):
    w, c, first, out = _timed(fn, repeats)
    wall[name] += w
    cpu[name] += c
    return first - w, out

  with tempfile.TemporaryDirectory() as d:
    cache = codec_cache.RoundTripCache(d)
    for im in imgs:
      img = im.gray
      for codec in ("jpeg", "jp2"):
        add(f"roundtrip:{codec}",
            lambda c=codec: legacy.roundtrip(img, c, bpp=bpp))
      _, (decoded, enc) = add("cached_roundtrip", lambda: cache.roundtrip(
          img, dec.codec, bpp=bpp))
      extra, out = add("refine", lambda: dec.refine(decoded, encoded=enc))
      warmup.setdefault(img.shape, extra)
      if dec.refine_steps is not None:
        add("refine_steps", lambda: dec.refine_steps(decoded, sweep_k,
                                                      encoded=enc))
      add("psnr", lambda: metrics.psnr(img, out))
      add("ssim_and_ms_ssim", lambda: metrics.ssim_and_ms_ssim(img, out))
      add("ms_ssim", lambda: metrics.ms_ssim(img, out))
  mp = sum(im.gray.size for im in imgs) / 1e6
  return {"s_per_mpixel": {k: v / mp for k, v in wall.items()},
          "cpu_s_per_mpixel": {k: v / mp for k, v in cpu.items()},
          "warmup_s": max(0.0, sum(warmup.values()) / len(warmup)),
          "images": [im.name for im in imgs],
          "how": f"median of {repeats} calls after a first, per image, "
                 f"at {bpp} bpp, {dec.codec} decoder ({dec.label}); "
                 f"refine_steps: one pass of K={sweep_k} keeping every step",
          "measured": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
          "load_average": round(os.getloadavg()[0], 2)}


def _test_set_size(tier: Tier, data_root: str, testsets: _TestSet):
  """(megapixels, distinct image shapes) of the tier's test set."""
  _, imgs = testsets.get(tier, data_root)
  return (sum(im.gray.size for im in imgs) / 1e6,
          len({im.gray.shape for im in imgs}))


def _run_seconds(run, times, test, val_mpixels):
  """{part: seconds} of one run: training, start-up, validation, decoder
  load, test (refinement and metrics of the decoder's rows)."""
  cfg = run_config(run)
  m, ev = times[measure_key(run)], times[EVAL_KEY]
  px = ev["s_per_mpixel"]
  k = cfg.K
  epochs = cfg.epochs
  refine = m["refine_s_per_mpixel"] * k / 4.0
  others = [x for x in run.tier.k_sweep if x != k]
  n_rd = len(run.tier.rd_bpps) if run.rd else 0
  mp, shapes = test
  if "refine_steps" in px:  # the trained K and the sweep: one pass
    sweep = m["refine_s_per_mpixel"] * px["refine_steps"] / px["refine"]
  else:  # measured before the one pass: the trained K, then each other K
    sweep = refine * (1 + sum(x / k for x in others))
  return {
      "train": epochs * cfg.steps_per_epoch * m["step_s"] * k / 4.0,
      "start": (m.get("overhead_s", ev.get("overhead_s", 0.0))
                + val_mpixels * px[f"roundtrip:{cfg.codec}"]),
      "validation": epochs * val_mpixels * (refine + px["psnr"]),
      "load": (m.get("load_s", ev.get("load_s", 0.0))
               + shapes * ev["warmup_s"]),
      "test": mp * (sweep + refine * n_rd
                    + px["ssim_and_ms_ssim"] + px["ms_ssim"] * n_rd
                    + px["psnr"] * (1 + len(others) + n_rd)
                    + px["cached_roundtrip"] * (1 + n_rd))}


def _codec_seconds(runs, times, tests):
  """{(test set, codec): seconds} of the codec's rows, once per study (the
  codec and metric caches): round trips and metrics at every rate."""
  px = times[EVAL_KEY]["s_per_mpixel"]
  rates = {}
  for run in runs:
    key = (run.tier.test, run_config(run).codec)
    n_rd = len(run.tier.rd_bpps) if run.rd else 0
    rates[key] = (max(rates.get(key, (0,))[0], n_rd), tests[run.tier.name])
  return {key: mp * (px[f"roundtrip:{key[1]}"] * (1 + n_rd)
                     + px["psnr"] * (1 + n_rd) + px["ssim_and_ms_ssim"]
                     + px["ms_ssim"] * n_rd)
          for key, (n_rd, (mp, _)) in rates.items()}


def validation_mpixels(tier: "Tier") -> float:
  """Megapixels a tier validates on per epoch (BSD68: 481 x 321 each)."""
  return 0.154 * (tier.train.val_max_images or 16)


def estimate_parts(runs: Sequence[Run], times: Dict[str, dict],
                   tests: Dict[str, Tuple[float, int]],
                   val_mpixels: float) -> Dict[str, Dict[str, float]]:
  """{label: {part: seconds}}: every run's (`_run_seconds`: train, start,
  validation, load, test) and, once per study, each codec's rows
  (``codec:<test set>:<codec>``: {"test": seconds}).

  Args:
    runs: the runs to estimate.
    times: step times per `measure_key` and the evaluation costs
      (`EVAL_KEY`: `measure_eval_costs`, with ``overhead_s`` and ``load_s``
      for keys measured without them), wall seconds at the load they were
      measured at.
    tests: {tier name: (test megapixels, distinct image shapes)}.
    val_mpixels: megapixels of the validation images (every epoch).
  """
  out = {run.run_id: _run_seconds(run, times, tests[run.tier.name],
                                  val_mpixels) for run in runs}
  for (test, codec), secs in _codec_seconds(runs, times, tests).items():
    out[f"codec:{test.split('=')[0]}:{codec}"] = {"test": secs}
  return out


def estimate_hours(runs: Sequence[Run], times: Dict[str, dict],
                   tests: Dict[str, Tuple[float, int]],
                   val_mpixels: float) -> Tuple[float, List[str]]:
  """CPU-bound wall hours of `runs` from measured times (`estimate_parts`);
  (hours, one line per run and per codec, then one per tier)."""
  parts = estimate_parts(runs, times, tests, val_mpixels)
  lines, tiers = [], {}
  for label, p in parts.items():
    tier = label.split("/")[0] if "/" in label else "codecs (once)"
    for name, secs in p.items():
      tiers.setdefault(tier, {}).setdefault(name, 0.0)
      tiers[tier][name] += secs
    lines.append(f"{label}: {sum(p.values()) / 3600:.2f} h (" + ", ".join(
        f"{k} {v / 3600:.2f}" for k, v in p.items()) + ")")
  for tier, p in tiers.items():
    lines.append(f"tier {tier}: {sum(p.values()) / 3600:.1f} h (" + ", ".join(
        f"{k} {v / 3600:.1f}" for k, v in p.items()) + ")")
  return sum(sum(p.values()) for p in parts.values()) / 3600, lines


# ---- the driver -------------------------------------------------------------

def run_study(tiers: Sequence[Tier], out_dir: str, work_dir: str,
              data_root: str, in_process: bool = False,
              max_runs: int = 0, estimate: bool = True,
              report: bool = True, after_run: Optional[Callable] = None,
              n_boot: int = 2000, say=print,
              metric_cache_dir: Optional[str] = None,
              codec_cache_dir: Optional[str] = None,
              readme: str = "") -> Dict[str, str]:
  """Trains and evaluates every run without a record, then reports.

  Args:
    tiers: the study.
    out_dir: records, tables, figures, claims (``results/study``).
    work_dir: model dirs (weights, checkpoints; not committed).
    data_root: folder of train400 / bsd68 / kodak.
    in_process: train in this process (tests) instead of a subprocess.
    max_runs: train at most this many runs now (0: all).
    estimate: print the CPU-hours estimate first (measures step times not
      cached in ``<out_dir>/step_times.json``).
    report: regenerate tables, figures and claims at the end.
    after_run: callable(run_id, record_dir) after each record (e.g. commit).
    n_boot: bootstrap replicates of the report.
    say: progress printer.
    metric_cache_dir: a `tf_hbd.evaluation.metric_cache.MetricCache`
      directory for the codec's rows, shared by every run (None: none).
    codec_cache_dir: a `tf_hbd.evaluation.codec_cache.RoundTripCache`
      directory for the codec round trips, shared by every run (None: none).
    readme: a README whose study block gets the verdicts
      (`tf_hbd.evaluation.study_report.write_reports`; "": none).

  Returns:
    {run_id: "skipped" | "done" | "failed (exit N)"}.
  """
  runs = plan(tiers)
  todo, stale = _to_do(runs, out_dir, data_root)
  say(f"[study] {len(runs)} runs planned in {len(tiers)} tier(s), "
      f"{len(runs) - len(todo)} recorded, {len(todo)} to do")
  testsets = _TestSet()
  if estimate and todo:
    _print_estimate(todo, tiers, out_dir, work_dir, data_root, testsets,
                    in_process, say)
  status = {r.run_id: "skipped" for r in runs if r not in todo}
  for run_id, diff in stale.items():
    say(f"[study] {run_id}: its record was made with other flags "
        f"({', '.join(diff)}); not counted, not overwritten: move it to "
        "its own study's folder or delete it")
    status[run_id] = "failed (record of other flags)"
  done = 0
  for run in (r for r in todo if r.run_id not in stale):
    if max_runs and done >= max_runs:
      say(f"[study] stopping after {done} runs (--max_runs)")
      break
    status[run.run_id] = _one_run(run, out_dir, work_dir, data_root,
                                  in_process, testsets, say,
                                  (metric_cache_dir, codec_cache_dir))
    done += not status[run.run_id].endswith("of another budget)")
    if status[run.run_id] == "done" and after_run:
      after_run(run.run_id, os.path.dirname(record_path(out_dir, run)))
  if report:
    _write_reports(runs, stale, out_dir, n_boot, readme, say)
  return status


def _write_reports(runs, stale, out_dir, n_boot, readme, say):
  """The tables, figures and claims of `runs` from the records in
  `out_dir` (those of `stale`, made with other flags, count as missing)."""
  from tf_hbd.evaluation import study_report  # pylint: disable=g-import-not-at-top
  for path in study_report.write_reports(
      out_dir, n_boot=n_boot, planned=[r.run_id for r in runs],
      readme=readme, stale=list(stale)).values():
    say(f"[study] wrote {path}")


def _one_run(run, out_dir, work_dir, data_root, in_process, testsets, say,
             cache_dirs=(None, None)):
  fl = run_flags(run, data_root)
  model_dir = os.path.join(work_dir, run.run_id)
  log_file = model_dir + ".log"
  os.makedirs(os.path.dirname(model_dir), exist_ok=True)
  prior = _log_status(model_dir)
  other = _budget_mismatch(prior, fl)
  if other:
    say(f"[study] {run.run_id}: {model_dir} was trained with other "
        f"{', '.join(other)}; move it (to its own study's work dir) or "
        "delete it")
    return "failed (model dir of another budget)"
  verb = ("evaluating" if prior and prior.get("status") == "finished" else
          "resuming" if prior else "training")
  say(f"[study] {run.run_id}: {verb} in {model_dir}")
  t0 = time.time()
  code = train_run(fl, model_dir, log_file, in_process=in_process)
  log = _log_status(model_dir)
  if code != 0 or not log or log.get("status") != "finished":
    say(f"[study] {run.run_id}: training failed (exit {code}); see "
        f"{log_file}; rerun to resume from its last checkpoint")
    return f"failed (exit {code})"
  t1 = time.time()
  spec, imgs = testsets.get(run.tier, data_root)
  mcache, ccache = _caches(*cache_dirs)
  test = evaluate_run(model_dir, run.tier, spec, imgs, metric_cache=mcache,
                      codec_cache=ccache, rd=run.rd)
  rec = make_record(run, fl, log, test, time.time() - t1)
  path = record_path(out_dir, run)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(os.path.join(os.path.dirname(path), TRAIN_LOG), "w") as f:
    f.write(_tail(log_file, LOG_TAIL_LINES))
  _write_json(path, rec)
  gain = (sum(test["decoder"]["psnr"]) - sum(test["codec"]["psnr"])) / len(
      test["images"])
  cached = (f"; codec metrics {sum(mcache.hits.values())} cached, "
            f"{sum(mcache.computed.values())} computed" if mcache else "")
  if ccache:
    cached += (f"; codec round trips {ccache.hits} cached, "
               f"{ccache.computed} computed")
  say(f"[study] {run.run_id}: recorded (training {t1 - t0:.0f} s, "
      f"evaluation {time.time() - t1:.0f} s{cached}; test gain "
      f"{gain:+.3f} dB)")
  return "done"


def _caches(metric_cache_dir, codec_cache_dir):
  """(MetricCache or None, RoundTripCache or None) of the folders."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import codec_cache
  from tf_hbd.evaluation import metric_cache
  return (metric_cache.MetricCache(metric_cache_dir) if metric_cache_dir
          else None,
          codec_cache.RoundTripCache(codec_cache_dir) if codec_cache_dir
          else None)


def _print_estimate(todo, tiers, out_dir, work_dir, data_root, testsets,
                    in_process, say):
  if not todo:
    say("[study] no runs to do, nothing to estimate")
    return
  path = os.path.join(out_dir, "step_times.json")
  times = {}
  if os.path.isfile(path):
    with open(path) as f:
      times = json.load(f)
  for run in todo:
    key = measure_key(run)
    if key not in times:
      say(f"[study] measuring the step time of {key} ...")
      times[key] = measure_step_time(run, data_root, work_dir,
                                     in_process=in_process)
      say(f"[study]   {times[key]['step_s'] * 1e3:.1f} ms per batch, "
          f"{times[key]['refine_s_per_mpixel']:.2f} s per megapixel refined")
      _write_json(path, times)
  if EVAL_KEY not in times:
    say(f"[study] measuring the evaluation's costs with {todo[0].run_id}'s "
        "decoder ...")
    times[EVAL_KEY] = _measure_eval(todo[0], data_root, testsets,
                                    in_process)
    _write_json(path, times)
  tests = {t.name: _test_set_size(t, data_root, testsets) for t in tiers}
  hours, lines = estimate_hours(todo, times, tests,
                                validation_mpixels(tiers[0]))
  for line in lines:
    say(f"[study]   {line}")
  say(f"[study] estimated CPU time of the {len(todo)} runs to do: "
      f"{hours:.1f} h on this machine, evaluation included (step times and "
      f"evaluation costs measured here, cached in {path}; delete it to "
      "remeasure)")


def _measure_eval(run, data_root, testsets, in_process, images=2):
  """`measure_eval_costs` on the first `images` test images with a decoder
  trained for `run`'s key now (in a temporary folder), whose start-up
  overhead and load time stand for keys measured without them; its step
  time is kept as ``reference`` (the load then, next to the step times')."""
  import tempfile  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as d:
    ref = measure_step_time(run, data_root, d, in_process=in_process)
    dec = systems.load_trained_decoder(measure_dir(run, d))
    _, imgs = testsets.get(run.tier, data_root)
    ev = measure_eval_costs(dec, imgs[:images], run.tier.test_bpp,
                            sweep_k=max(run.tier.k_sweep))
  ev.update(overhead_s=ref["overhead_s"], load_s=ref["load_s"],
            reference={"key": measure_key(run), "step_s": ref["step_s"],
                       "refine_s_per_mpixel": ref["refine_s_per_mpixel"],
                       "load_average": ref["load_average"]})
  return ev


def _metric_cache_dir(flag: str) -> Optional[str]:
  """The --metric_cache folder (None for 'none')."""
  from tf_hbd.evaluation import metric_cache  # pylint: disable=g-import-not-at-top
  return _cache_dir(flag, metric_cache.default_directory)


def _codec_cache_dir(flag: str) -> Optional[str]:
  """The --codec_cache folder (None for 'none')."""
  from tf_hbd.evaluation import codec_cache  # pylint: disable=g-import-not-at-top
  return _cache_dir(flag, codec_cache.default_directory)


def _cache_dir(flag: str, default: Callable) -> Optional[str]:
  return None if flag.lower() == "none" else flag or default()


def _readme_problem(path: str) -> str:
  """Why --readme=`path` cannot take the verdicts ("" if it can)."""
  if not path:
    return ""
  from tf_hbd.evaluation import study_report  # pylint: disable=g-import-not-at-top
  try:
    with open(path) as f:
      text = f.read()
  except OSError as e:
    return f"--readme={path}: cannot read it ({e.strerror})"
  if study_report.readme_block(text) is None:
    return (f"--readme={path}: no study block; add the lines "
            f"'{study_report.README_BEGIN}' and '{study_report.README_END}' "
            "(in that order) where the verdicts belong")
  folder = os.path.dirname(os.path.abspath(path))
  if not os.access(folder, os.W_OK):  # splice_readme replaces the file
    return (f"--readme={path}: its folder is not writable; make it so or "
            "drop --readme")
  return ""


def _needs_data_root(tiers, data_root) -> str:
  """Why `tiers` cannot run with `data_root` ("" when they can)."""
  try:
    for run in plan(tiers):
      run_flags(run, data_root)
      roots.fill(run.tier.test, data_root)
  except errors.UsageError as e:
    return str(e)
  return ""


def main(argv=None) -> int:
  """``python scripts/study.py``: run (or resume) the study, then report;
  Ctrl-C / SIGTERM: the training run under way checkpoints, then exit 130
  (`tf_hbd.errors.exit_on_interrupt`)."""
  return errors.exit_on_interrupt(
      lambda: _main(argv), "study", "rerun the same command to resume: "
      "recorded runs are kept, the one under way continues from its last "
      "checkpoint")


def _parser():
  """The flags of `main`."""
  p = arguments.ArgumentParser(description=__doc__.split("\n", 1)[0])
  p.add_argument("--study", default="study", choices=sorted(STUDIES),
                 help="which study (tiny: the CI-sized one)")
  p.add_argument("--tiers", default="", help="comma-separated tiers of the "
                 "study to run (default: all)")
  p.add_argument("--out_dir", default="", help="default results/<study>")
  p.add_argument("--work_dir", default="", help="default runs/<study>")
  p.add_argument("--data_root", default="",
                 help="folder holding train400, bsd68, kodak (default: "
                 "$TF_HBD_DATA)")
  p.add_argument("--max_runs", type=int, default=0,
                 help="train at most this many runs now (0: all)")
  p.add_argument("--estimate_only", action="store_true",
                 help="print the plan and the CPU-hours estimate, train "
                 "nothing")
  p.add_argument("--report_only", action="store_true",
                 help="only regenerate tables, figures and claims")
  p.add_argument("--no_estimate", action="store_true",
                 help="skip the step-time measurement")
  p.add_argument("--in_process", action="store_true",
                 help="train in this process (faster start, less isolation)")
  p.add_argument("--after_run", default="", help="shell command run after "
                 "each record, {run} and {dir} substituted (e.g. a git "
                 "commit of the record)")
  p.add_argument("--n_boot", type=int, default=2000,
                 help="bootstrap replicates")
  p.add_argument("--readme", default="", help="a README (e.g. README.md) "
                 "whose study block, between the lines "
                 "'<!-- study-verdicts:begin ...' and "
                 "'<!-- study-verdicts:end -->', gets the verdicts")
  p.add_argument("--metric_cache", default="", help="folder where the "
                 "codec rows' metrics are kept for every run (default: "
                 "$TF_HBD_METRIC_CACHE, else ~/.cache/tf_hbd/metrics; "
                 "'none': no cache)")
  p.add_argument("--codec_cache", default="", help="folder where the "
                 "codec round trips of the test images are kept for every "
                 "run (default: $TF_HBD_CODEC_CACHE, else "
                 "~/.cache/tf_hbd/codecs; 'none': no cache)")
  return p


def _main(argv=None) -> int:
  """`main` without the Ctrl-C handler."""
  args = _parser().parse_args(argv)
  tiers = STUDIES[args.study]
  if args.tiers:
    names = args.tiers.split(",")
    unknown = set(names) - {t.name for t in tiers}
    if unknown:
      print(f"error: unknown tiers {sorted(unknown)}; choose from "
            f"{[t.name for t in tiers]}", file=sys.stderr)
      return 2
    tiers = tuple(t for t in tiers if t.name in names)
  args.data_root = roots.data_root(args.data_root)
  missing = _needs_data_root(tiers, args.data_root)
  if missing and not args.report_only:
    print(f"study: error: {missing}", file=sys.stderr)
    return 2
  out_dir = args.out_dir or os.path.join("results", args.study)
  work_dir = args.work_dir or os.path.join("runs", args.study)
  bad = _readme_problem(args.readme)
  if bad:
    print(f"study: error: {bad}", file=sys.stderr)
    return 2
  if args.report_only:
    runs = plan(tiers)
    stale = _to_do(runs, out_dir, args.data_root)[1]
    for run_id in stale:
      print(f"[study] {run_id}: its record was made with other flags; not "
            "counted (the run is missing)")
    _write_reports(runs, stale, out_dir, args.n_boot, args.readme, print)
    return 0
  if args.estimate_only:
    runs, _ = _to_do(plan(tiers), out_dir, args.data_root)
    _print_estimate(runs, tiers, out_dir, work_dir, args.data_root,
                    _TestSet(), args.in_process, print)
    return 0
  hook = None
  if args.after_run:
    def hook(run_id, record_dir):
      cmd = args.after_run.replace("{run}", run_id).replace("{dir}",
                                                             record_dir)
      subprocess.run(cmd, shell=True, check=False)
  status = run_study(tiers, out_dir, work_dir, args.data_root,
                     in_process=args.in_process, max_runs=args.max_runs,
                     estimate=not args.no_estimate, after_run=hook,
                     n_boot=args.n_boot,
                     metric_cache_dir=_metric_cache_dir(args.metric_cache),
                     codec_cache_dir=_codec_cache_dir(args.codec_cache),
                     readme=args.readme)
  failed = [k for k, v in status.items() if v.startswith("failed")]
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
