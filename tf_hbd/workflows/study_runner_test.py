"""Tests of tf_hbd.workflows.study_runner: the tiers as data, flags, the
estimate.

The whole pipeline end to end is tests/study_test.py.
"""

import dataclasses
import io
import json
import os
import tempfile
from unittest import mock

import numpy as np
import pytest
from absl import flags
from absl.testing import absltest

from tf_hbd.training import config
from tf_hbd.workflows import study_runner


def _parse_training_flags(fl):
  """The run's flags through the training program's own parser and checks.

  `config.from_args` parses with the training program's flag definitions in
  a private FlagValues, so scripts that other tests load into the global
  FLAGS (e.g. neural_codec's --codec) cannot collide with them."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import config  # pylint: disable=g-import-not-at-top
  from tf_hbd.training import flag_checks  # pylint: disable=g-import-not-at-top
  values = dataclasses.asdict(config.from_args(
      ["--model_dir=/nonexistent"] + [f"--{k}={v}" for k, v in fl.items()]))
  checked = dict(values)
  for key in ("dataset", "val_images"):  # no data folders needed here
    checked.pop(key, None)
  flag_checks.validate_train_flags(checked)
  return values


class StudyRunnerTest(absltest.TestCase):

  def test_the_study_plan(self):
    size, exact = study_runner.STUDIES["study"]
    # LSTM x (JPEG, JPEG 2000), SNE x JPEG, 4 algorithms; 2 K variants
    self.assertLen(study_runner.plan([size]), (4 * 2 + 4 + 2) * 3)
    self.assertLen(study_runner.plan([exact]), 4 * 3)  # JPEG only
    cells = {(dict(r.spec.flags)["sne"], dict(r.spec.flags)["codec"])
             for r in study_runner.plan([size])}
    self.assertEqual(cells, {("false", "jpeg"), ("false", "jp2"),
                             ("true", "jpeg")})
    for tier in (size, exact):
      self.assertGreaterEqual(tier.seeds, 3)  # every claim: >= 3 seeds
      self.assertEqual({r.seed for r in study_runner.plan([tier]) if r.rd},
                       {0})  # RD rates for seed 0 only
      self.assertEqual(tier.k_sweep, (1, 2, 4, 6, 8))  # claim (c)
      self.assertGreaterEqual(int(dict(tier.train_flags)["epochs"]), 8)
    runs = study_runner.plan([size, exact])
    self.assertLen({r.run_id for r in runs}, len(runs))
    # seed-major: every configuration at seed 0 before any at seed 1
    seeds = [r.seed for r in runs if r.tier.name == "size"]
    self.assertEqual(seeds, sorted(seeds))
    algos = {(r.tier.name, dict(r.spec.flags)["algo"]) for r in runs}
    self.assertEqual(algos, {("size", a) for a in ("bptt", "sab", "uoro",
                                                   "snap1")}
                     | {("exact", a) for a in ("bptt", "sab", "uoro",
                                               "rtrl")})
    ks = {dict(r.spec.flags).get("K") for r in runs}
    self.assertEqual(ks, {None, "2", "8"})

  def test_every_run_parses_with_the_training_flags(self):
    for study in ("study", "study10k", "study512", "tiny"):
      for run in study_runner.plan(study_runner.STUDIES[study]):
        fl = study_runner.run_flags(run, "/data")
        self.assertNotIn("{data}", json.dumps(fl))
        values = _parse_training_flags(fl)
        self.assertEqual(values["seed"], run.seed)
        self.assertEqual(values["algo"], dict(run.spec.flags)["algo"])
    fl = study_runner.run_flags(study_runner.plan(
        study_runner.STUDIES["study"][:1])[0], "/data")
    self.assertEqual(fl["dataset"], "recompress:/data/train400")
    self.assertEqual(fl["val_images"], "/data/bsd68")

  def test_each_run_is_one_config_its_flags_come_from(self):
    # A tier holds a RunConfig; a run's flags are derived from run_config
    # and parse back to it (data root filled in); the tier names every
    # setting its records list, so the flag strings stay what they were.
    for study in ("study", "study10k", "study512", "tiny"):
      for run in study_runner.plan(study_runner.STUDIES[study]):
        cfg = study_runner.run_config(run)
        fl = study_runner.run_flags(run, "/data")
        self.assertEqual(config.from_args(
            [f"--{k}={v}" for k, v in fl.items()]),
                         config.resolve(cfg, "/data"))
        self.assertLessEqual(set(run.tier.pinned), set(fl))
    fl = study_runner.run_flags(study_runner.plan(
        study_runner.STUDIES["study"][:1])[0], "/data")
    self.assertEqual((fl["lr"], fl["alpha"], fl["tied"], fl["K"],
                      fl["synthetic_fraction"], fl["seed"], fl["sne"]),
                     ("1e-3", "1", "true", "4", "0", "0", "false"))

  def test_study512_keeps_the_first_setting(self):
    size, exact = study_runner.STUDIES["study512"]
    fl = dict(size.train_flags)
    self.assertEqual((fl["units"], fl["precision"]), ("512", "bfloat16"))
    self.assertEqual(int(fl["epochs"]) * int(fl["steps_per_epoch"]), 12000)
    fl = dict(exact.train_flags)
    self.assertEqual(int(fl["epochs"]) * int(fl["steps_per_epoch"]), 1500)
    # the same configurations as study10k, another scale
    for a, b in zip(study_runner.STUDIES["study10k"], (size, exact)):
      self.assertEqual(a.configs, b.configs)
      self.assertEqual(a.name, b.name)
      self.assertIsNone(b.rd_seeds)

  def test_study10k_keeps_the_second_setting(self):
    size, exact = study_runner.STUDIES["study10k"]
    fl = dict(size.train_flags)
    self.assertEqual((fl["units"], fl["precision"], fl["epochs"],
                      fl["steps_per_epoch"], fl["checkpoint_every"]),
                     ("128", "float32", "10", "1000", "500"))
    self.assertLen(study_runner.plan([size]), 54)
    fl = dict(exact.train_flags)
    self.assertEqual((fl["epochs"], fl["steps_per_epoch"]), ("8", "50"))
    self.assertLen(study_runner.plan([exact]), 24)
    # the default study: a subset of its configurations, fewer batches
    for a, b in zip(study_runner.STUDIES["study"], (size, exact)):
      self.assertLess(set(a.configs), set(b.configs))
    fl = dict(study_runner.STUDIES["study"][1].train_flags)
    self.assertEqual((fl["units"], fl["epochs"], fl["steps_per_epoch"]),
                     ("38", "8", "250"))  # 50 batches an epoch: BPTT +0.004 dB

  def test_the_committed_pilot_is_a_record_of_study10k(self):
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(study_runner.__file__))))
    if not os.path.isfile(os.path.join(root, "setup.cfg")):
      self.skipTest("an installed package: the repo's results/ is absent")
    out = os.path.join(root, "results", "study10k")
    path = os.path.join(out, "runs", "size", "lstm-jpeg-bptt-seed0",
                        "record.json")
    self.assertTrue(os.path.isfile(path), msg=f"{path} is committed")
    old = study_runner.plan(study_runner.STUDIES["study10k"][:1])[0]
    new = study_runner.plan(study_runner.STUDIES["study"][:1])[0]
    self.assertEqual(old.run_id, new.run_id)
    self.assertEqual(study_runner.record_mismatch(out, old, "/elsewhere"), [])
    self.assertEqual(study_runner.record_mismatch(out, new, "/elsewhere"),
                     ["checkpoint_every", "epochs", "steps_per_epoch"])

  def test_a_record_of_other_flags_is_not_counted(self):
    tiers = study_runner.STUDIES["tiny"]
    runs = study_runner.plan(tiers)
    with tempfile.TemporaryDirectory() as d:
      for i, run in enumerate(runs):
        fl = study_runner.run_flags(run, "/data")
        if i == 1:
          fl["units"] = "5"  # a tier changed since
        path = study_runner.record_path(d, run)
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
          json.dump({"flags": fl}, f)
      todo, stale = study_runner._to_do(runs, d, "/other/data")  # pylint: disable=protected-access
      self.assertEqual(todo, [runs[1]])
      self.assertEqual(stale, {runs[1].run_id: ["units"]})
      lines = []
      status = study_runner.run_study(tiers, d, d, "/data", estimate=False,
                                      report=False, say=lines.append)
      self.assertEqual(status[runs[1].run_id],
                       "failed (record of other flags)")
      self.assertEqual({v for k, v in status.items()
                        if k != runs[1].run_id}, {"skipped"})
      self.assertTrue(any("other flags (units)" in l for l in lines), lines)
      with open(study_runner.record_path(d, runs[1])) as f:
        self.assertEqual(json.load(f)["flags"]["units"], "5")  # kept
      # the reports leave it out too (the run counts as missing)
      from tf_hbd.evaluation import study_report  # pylint: disable=g-import-not-at-top
      with mock.patch.object(study_report, "write_reports",
                             return_value={}) as write, \
          mock.patch("sys.stdout", new=io.StringIO()) as out:
        self.assertEqual(study_runner.main(
            ["--study=tiny", f"--out_dir={d}", "--report_only",
             "--data_root=/data"]), 0)
      self.assertEqual(write.call_args.kwargs["stale"], [runs[1].run_id])
      self.assertIn(f"{runs[1].run_id}: its record was made with other "
                    "flags", out.getvalue())

  def test_estimate_only_with_every_run_recorded(self):
    import contextlib  # pylint: disable=g-import-not-at-top
    import io  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as d:
      for run in study_runner.plan(study_runner.STUDIES["tiny"]):
        path = study_runner.record_path(d, run)
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
          json.dump({"flags": study_runner.run_flags(run, "/data")}, f)
      out = io.StringIO()
      with contextlib.redirect_stdout(out):  # nothing measured
        self.assertEqual(study_runner.main([
            "--study=tiny", f"--out_dir={d}", f"--work_dir={d}",
            "--data_root=/data", "--estimate_only"]), 0)
      self.assertIn("no runs to do", out.getvalue())
      self.assertFalse(os.path.exists(os.path.join(d, "step_times.json")))

  def test_a_model_dir_of_another_budget_is_not_resumed(self):
    run = study_runner.plan(study_runner.STUDIES["tiny"])[0]
    fl = study_runner.run_flags(run, "/data")
    mismatch = study_runner._budget_mismatch  # pylint: disable=protected-access
    log = {"flags": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 16,
                     "units": 4, "K": 2}}
    self.assertEqual(mismatch(log, fl), [])
    self.assertEqual(mismatch(None, fl), [])
    log["flags"].update(epochs=10, K=4)
    self.assertEqual(mismatch(log, fl), ["epochs", "K"])
    with tempfile.TemporaryDirectory() as d:
      model_dir = os.path.join(d, "work", run.run_id)
      os.makedirs(model_dir)
      with open(os.path.join(model_dir, "log.json"), "w") as f:
        json.dump(dict(log, status="finished"), f)
      lines = []
      status = study_runner._one_run(  # pylint: disable=protected-access
          run, os.path.join(d, "out"), os.path.join(d, "work"), "/data",
          True, None, lines.append)
      self.assertEqual(status, "failed (model dir of another budget)")
      self.assertIn("other epochs, K", lines[-1])
      self.assertFalse(os.path.exists(study_runner.record_path(
          os.path.join(d, "out"), run)))

  def test_the_study_budget_is_smaller_than_the_earlier_settings(self):
    def cost(tier):
      f = dict(tier.train_flags)
      return (int(f["units"]) ** 2 * int(f["epochs"])
              * int(f["steps_per_epoch"]) * len(tier.configs))
    (size, exact), (size10k, exact10k), (size512, _) = (
        study_runner.STUDIES[s] for s in ("study", "study10k", "study512"))
    self.assertLess(cost(size), cost(size10k))
    self.assertLess(cost(size10k), cost(size512))
    # the exact tier is the exception: 8 x 250 batches where study10k ran
    # 8 x 50 (at 50 its decoders did not learn), on half its configurations
    self.assertLess(set(exact.configs), set(exact10k.configs))
    self.assertEqual(cost(exact) * len(exact10k.configs),
                     5 * cost(exact10k) * len(exact.configs))

  def test_exact_tier_is_the_largest_rtrl_fits(self):
    from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
    from tf_hbd.training.algorithms import rtrl  # pylint: disable=g-import-not-at-top
    for study in ("study", "study10k", "study512"):
      fl = dict(study_runner.STUDIES[study][1].train_flags)
      self.assertEqual(int(fl["units"]), study_runner.EXACT_TIER_UNITS)
      self.assertEqual(int(fl["batch_size"]), study_runner.EXACT_TIER_BATCH)
      self.assertEqual(fl["precision"], "float32")
    dec = decoder_lib.build_decoder("lstm", units=4, patch_size=8, K=4,
                                    cell_options={"tied": True})
    self.assertEqual(rtrl.largest_units(dec.cell, 256, 4, 4 * 2 ** 30),
                     study_runner.EXACT_TIER_UNITS)

  def test_estimate_hours(self):
    tiny = study_runner.STUDIES["tiny"]
    runs = study_runner.plan(tiny)
    key = study_runner.measure_key(runs[0])
    times = {key: {"step_s": 2.0, "refine_s_per_mpixel": 10.0,
                   "overhead_s": 5.0, "load_s": 3.0},
             study_runner.EVAL_KEY: {
                 "s_per_mpixel": {"psnr": 2.0, "ssim_and_ms_ssim": 8.0,
                                  "ms_ssim": 6.0, "cached_roundtrip": 1.0,
                                  "roundtrip:jpeg": 4.0,
                                  "roundtrip:jp2": 12.0},
                 "warmup_s": 2.0}}
    tests = {"tiny": (0.1, 2)}
    hours, lines = study_runner.estimate_hours(runs[:1], times, tests,
                                               val_mpixels=0.2)
    parts = study_runner.estimate_parts(runs[:1], times, tests, 0.2)
    # K = 2 (refinement and steps measured at K = 4: x 0.5)
    want = {
        "train": 6 * 2.0 * 0.5,  # 6 batches
        "start": 5.0 + 0.2 * 2.0 * 2,  # + the validation images coded
        "validation": 2 * 0.2 * (10.0 * 0.5 + 1.0 * 2),  # 2 epochs
        "load": 3.0 + 2 * 2.0,  # + a warm-up per image shape
        # refinement at K = 2, K = 1 (half), the RD rate; SSIM + MS-SSIM at
        # the test rate, MS-SSIM at the RD rate, 3 PSNRs, 2 cached trips
        "test": 0.1 * (5.0 * (1 + 0.5 + 1) + 8.0 + 6.0 + 2.0 * 3 + 1.0 * 2)}
    self.assertEqual(set(parts), {runs[0].run_id, "codec:sample_test:jpeg"})
    for name, secs in want.items():
      self.assertAlmostEqual(parts[runs[0].run_id][name], secs, places=9)
    # once per study: 2 round trips, 2 PSNRs, SSIM + MS-SSIM, 1 MS-SSIM
    codec = 0.1 * (4.0 * 2 + 2.0 * 2 + 8.0 + 6.0)
    self.assertAlmostEqual(parts["codec:sample_test:jpeg"]["test"], codec)
    self.assertAlmostEqual(hours * 3600, sum(want.values()) + codec,
                           places=9)
    self.assertLen(lines, 2 + 2)  # the run, the codec, then per tier
    # without RD points (`Tier.rd_seeds`): no RD refinement nor metrics
    tier = dataclasses.replace(tiny[0], rd_seeds=0)
    run = study_runner.Run(tier, runs[0].spec, 0)
    self.assertFalse(run.rd)
    parts = study_runner.estimate_parts([run], times, tests, 0.2)
    self.assertAlmostEqual(parts[run.run_id]["test"],
                           0.1 * (5.0 * 1.5 + 8.0 + 2.0 * 2 + 1.0))
    self.assertAlmostEqual(parts["codec:sample_test:jpeg"]["test"],
                           0.1 * (4.0 + 2.0 + 8.0))
    # measured with the one pass (`measure_eval_costs`' refine_steps): the
    # trained K and the sweep cost the key's refinement (K = 4) x the pass's
    # measured cost over the refinement's, whatever the trained K
    times[study_runner.EVAL_KEY]["s_per_mpixel"].update(
        refine=3.0, refine_steps=4.5)
    parts = study_runner.estimate_parts([run], times, tests, 0.2)
    self.assertAlmostEqual(parts[run.run_id]["test"],
                           0.1 * (10.0 * 1.5 + 8.0 + 2.0 * 2 + 1.0))

  def test_evaluation_computes_the_recorded_metrics_and_caches_the_codecs(
      self):
    from tf_hbd.evaluation import metric_cache  # pylint: disable=g-import-not-at-top
    from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
    from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
    tier = study_runner.STUDIES["tiny"][0]  # 2 images, K 1 and 2, 1 RD rate
    spec, imgs = study_runner._TestSet().get(tier, "")  # pylint: disable=protected-access

    def refine(img, K=None, encoded=None, ensemble=False):  # a K-step blur
      del encoded, ensemble
      out = img.astype(np.float64)
      for _ in range(K or 2):
        out = (out + np.roll(out, 1, axis=1)) / 2
      return out

    dec = systems.LoadedDecoder("fake", "jpeg", refine, 2, None, "fake")
    calls = {}

    def evaluate(**kwargs):
      with mock.patch.object(metrics, "ssim", wraps=metrics.ssim) as s, \
          mock.patch.object(metrics, "ms_ssim", wraps=metrics.ms_ssim) as m, \
          mock.patch.object(metrics, "ssim_and_ms_ssim",
                            wraps=metrics.ssim_and_ms_ssim) as both:
        out = study_runner.evaluate_decoder(dec, tier, spec, imgs, **kwargs)
      calls[len(calls)] = (s.call_count, m.call_count, both.call_count)
      return json.dumps(out)

    before = evaluate(every_metric=metrics.tf_metrics)  # tf.image's SSIMs
    self.assertEqual(evaluate(every_metric=metrics.all_metrics), before)
    # every row, all metrics: 2 images x (codec, decoder, K=1, 2 RD rows)
    self.assertEqual(calls[1], (0, 0, 10))
    self.assertEqual(evaluate(), before)  # subsets, no cache
    # one SSIM / MS-SSIM pass per row that records them: codec + decoder at
    # the test rate (both metrics) and at the RD rate (MS-SSIM alone, by
    # `ms_ssim`); none for the K sweep
    self.assertEqual(calls[2], (0, 4, 8))
    with tempfile.TemporaryDirectory() as d:
      cold = metric_cache.MetricCache(d)
      self.assertEqual(evaluate(metric_cache=cold), before)
      self.assertEqual(calls[3], (0, 4, 8))
      # the codec's rows only: 2 images x (3 metrics + PSNR, MS-SSIM at RD)
      self.assertEqual(dict(cold.computed), {"psnr": 4, "ssim": 2,
                                             "ms-ssim": 4})
      warm = metric_cache.MetricCache(d)
      self.assertEqual(evaluate(metric_cache=warm), before)
      self.assertEqual(calls[4], (0, 2, 4))  # the decoder's rows only
      self.assertEqual((warm.hits, sum(warm.computed.values())),
                       (cold.computed, 0))
    from tf_hbd.codecs import legacy  # pylint: disable=g-import-not-at-top
    from tf_hbd.evaluation import codec_cache  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as d:
      cold = codec_cache.RoundTripCache(d)
      self.assertEqual(evaluate(codec_cache=cold), before)
      # 2 images x (the test rate, the RD rate), coded once each
      self.assertEqual((cold.hits, cold.computed), (0, 4))
      warm = codec_cache.RoundTripCache(d)
      with mock.patch.object(legacy, "roundtrip", side_effect=AssertionError):
        self.assertEqual(evaluate(codec_cache=warm), before)
      self.assertEqual((warm.hits, warm.computed), (4, 0))
    rec = json.loads(before)
    no_rd = json.loads(evaluate(rd=False))  # `Tier.rd_seeds`
    self.assertEqual(no_rd["rd"], {})
    self.assertEqual({k: v for k, v in no_rd.items() if k != "rd"},
                     {k: v for k, v in rec.items() if k != "rd"})
    self.assertEqual(sorted(rec["rd"]["0.8"]), ["codec", "decoder"])
    self.assertEqual(sorted(rec["rd"]["0.8"]["codec"]),
                     ["bpp", "ms-ssim", "psnr"])
    self.assertEqual(rec["k_sweep"]["2"], rec["decoder"]["psnr"])
    self.assertNotEqual(rec["k_sweep"]["1"], rec["decoder"]["psnr"])

  def test_evaluate_decoder_k_sweep_from_one_pass(self):
    from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
    tier = study_runner.STUDIES["tiny"][0]  # 2 images, K 1 and 2, 1 RD rate
    spec, imgs = study_runner._TestSet().get(tier, "")  # pylint: disable=protected-access
    calls = []

    def refine(img, K=None, encoded=None, ensemble=False):  # a K-step blur
      del encoded, ensemble
      calls.append(K)
      out = img.astype(np.float64)
      for _ in range(K or 2):
        out = (out + np.roll(out, 1, axis=1)) / 2
      return np.round(out).astype(np.uint8)

    def refine_steps(img, K, encoded=None):
      calls.append(f"pass {K}")
      return np.stack([refine(img, k, encoded) for k in range(1, K + 1)])

    dec = systems.LoadedDecoder("fake", "jpeg", refine, 2, None, "fake")
    before = study_runner.evaluate_decoder(dec, tier, spec, imgs)
    self.assertEqual(calls, [None, None, 1, 1, None, None])  # K=2 default
    calls.clear()
    dec.refine_steps = refine_steps
    self.assertEqual(study_runner.evaluate_decoder(dec, tier, spec, imgs),
                     before)
    # per image one pass of K=2 (its steps listed inside), the first image
    # checked against the default refinement; the RD rate as before
    self.assertEqual(calls, ["pass 2", 1, 2, None, "pass 2", 1, 2, None,
                             None])

  def test_measure_eval_costs(self):
    from tf_hbd.evaluation import systems  # pylint: disable=g-import-not-at-top
    tier = study_runner.STUDIES["tiny"][0]
    _, imgs = study_runner._TestSet().get(tier, "")  # pylint: disable=protected-access
    calls = []

    def refine(img, K=None, encoded=None, ensemble=False):
      del K, ensemble
      calls.append(encoded is not None)
      return img

    dec = systems.LoadedDecoder("fake", "jpeg", refine, 2, None, "fake")
    ev = study_runner.measure_eval_costs(dec, imgs, 0.6, repeats=1)
    parts = {"roundtrip:jpeg", "roundtrip:jp2", "cached_roundtrip", "refine",
             "psnr", "ssim_and_ms_ssim", "ms_ssim"}
    self.assertEqual(set(ev["s_per_mpixel"]), parts)
    self.assertEqual(set(ev["cpu_s_per_mpixel"]), parts)
    self.assertTrue(all(v > 0 for v in ev["s_per_mpixel"].values()), ev)
    self.assertEqual(ev["images"], [im.name for im in imgs])
    # a first call and one timed call per image, with the bitstream
    self.assertEqual(calls, [True] * 2 * len(imgs))
    # with a one-pass sweep: its cost at sweep_k too
    dec.refine_steps = lambda img, K, encoded=None: calls.append(K) or [img]
    ev = study_runner.measure_eval_costs(dec, imgs, 0.6, repeats=1,
                                         sweep_k=5)
    self.assertEqual(set(ev["s_per_mpixel"]), parts | {"refine_steps"})
    self.assertEqual(calls[-2:], [5, 5])
    self.assertGreaterEqual(ev["warmup_s"], 0.0)

  def test_cache_flags(self):
    from tf_hbd.evaluation import metric_cache  # pylint: disable=g-import-not-at-top
    flag = study_runner._metric_cache_dir  # pylint: disable=protected-access
    self.assertIsNone(flag("none"))
    self.assertEqual(flag("/x/cache"), "/x/cache")
    with mock.patch.dict(os.environ, {metric_cache.ENV_VAR: "/y"}):
      self.assertEqual(flag(""), "/y")
    from tf_hbd.evaluation import codec_cache  # pylint: disable=g-import-not-at-top
    flag = study_runner._codec_cache_dir  # pylint: disable=protected-access
    self.assertIsNone(flag("None"))
    self.assertEqual(flag("/x/codecs"), "/x/codecs")
    with mock.patch.dict(os.environ, {codec_cache.ENV_VAR: "/z"}):
      self.assertEqual(flag(""), "/z")

  def test_main_rejects_an_unknown_tier(self):
    self.assertEqual(study_runner.main(["--study=tiny", "--tiers=nope",
                                        "--report_only"]), 2)

  def test_report_only_on_no_records(self):
    with tempfile.TemporaryDirectory() as d:
      self.assertEqual(study_runner.main(["--study=tiny", f"--out_dir={d}",
                                          "--report_only", "--n_boot=10"]),
                       0)
      with open(os.path.join(d, "claims.json")) as f:
        doc = json.load(f)
      self.assertEqual((doc["runs"], doc["seeds_min"]), (0, 0))

  def test_report_only_names_missing_runs_and_fills_the_readme_block(self):
    from tf_hbd.evaluation import study_report  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as d:
      readme = os.path.join(d, "README.md")
      with open(readme, "w") as f:
        f.write("intro\n")
      argv = ["--study=tiny", f"--out_dir={d}/results", "--report_only",
              "--n_boot=10", f"--readme={readme}"]
      # no block, then the two lines in the wrong order: exit 2, one line,
      # nothing written
      for text in ("intro\n", f"{study_report.README_END}\n"
                   f"{study_report.README_BEGIN}\n"):
        with open(readme, "w") as f:
          f.write(text)
        with mock.patch("sys.stderr", new=io.StringIO()) as err:
          self.assertEqual(study_runner.main(argv), 2)
        self.assertIn("no study block", err.getvalue())
        self.assertEqual(err.getvalue().count("\n"), 1)
        self.assertFalse(os.path.exists(os.path.join(d, "results")))
      with open(readme, "w") as f:
        f.write(f"intro\n{study_report.README_BEGIN}\nold\n"
                f"{study_report.README_END}\nrest\n")
      self.assertEqual(study_runner.main(argv), 0)
      with open(readme) as f:
        text = f.read()
      self.assertNotIn("old", text)
      self.assertIn("[`results/`](results/README.md)", text)
      self.assertIn("no claim is decided yet", text)
      self.assertTrue(text.endswith(f"{study_report.README_END}\nrest\n"))
      with open(os.path.join(d, "results", "README.md")) as f:
        self.assertIn("no records (0 of", f.read())

  def test_reproduce_scale_study_is_the_study(self):
    from tf_hbd.workflows import reproduce  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as d:
      self.assertEqual(reproduce.main(["--scale=study", "--study=tiny",
                                       f"--out_dir={d}", "--report_only",
                                       "--n_boot=10"]), 0)
      self.assertTrue(os.path.isfile(os.path.join(d, "claims.md")))

  @pytest.mark.slow
  def test_measure_step_time(self):
    run = study_runner.plan(study_runner.STUDIES["tiny"])[0]
    with tempfile.TemporaryDirectory() as d:
      m = study_runner.measure_step_time(run, d, d, steps=2, in_process=False)
    self.assertGreater(m["step_s"], 0)
    self.assertGreater(m["refine_s_per_mpixel"], 0)
    self.assertGreater(m["overhead_s"], 0)
    self.assertGreater(m["load_s"], 0)
    self.assertIn("second epoch", m["how"])


if __name__ == "__main__":
  absltest.main()
