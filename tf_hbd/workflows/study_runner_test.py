"""Tests of tf_hbd.workflows.study_runner: the tiers as data, flags, the
estimate.

The whole pipeline end to end is tests/study_test.py.
"""

import json
import os
import tempfile
from unittest import mock

import numpy as np
import pytest
from absl import flags
from absl.testing import absltest

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
    self.assertLen(study_runner.plan([size]), (4 * 2 * 2 + 2) * 3)
    self.assertLen(study_runner.plan([exact]), 4 * 2 * 3)
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
    for study in ("study", "study512", "tiny"):
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

  def test_study512_keeps_the_first_setting(self):
    size, exact = study_runner.STUDIES["study512"]
    fl = dict(size.train_flags)
    self.assertEqual((fl["units"], fl["precision"]), ("512", "bfloat16"))
    self.assertEqual(int(fl["epochs"]) * int(fl["steps_per_epoch"]), 12000)
    fl = dict(exact.train_flags)
    self.assertEqual(int(fl["epochs"]) * int(fl["steps_per_epoch"]), 1500)
    # the same configurations as the default study, another scale
    for a, b in zip(study_runner.STUDIES["study"], (size, exact)):
      self.assertEqual(a.configs, b.configs)
      self.assertEqual(a.name, b.name)

  def test_the_study_budget_is_smaller_than_study512s(self):
    for a, b in zip(study_runner.STUDIES["study"],
                    study_runner.STUDIES["study512"]):
      fa, fb = dict(a.train_flags), dict(b.train_flags)
      cost = lambda f: (int(f["units"]) ** 2 * int(f["epochs"])
                        * int(f["steps_per_epoch"]))
      self.assertLess(cost(fa), cost(fb))

  def test_exact_tier_is_the_largest_rtrl_fits(self):
    from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
    from tf_hbd.training.algorithms import rtrl  # pylint: disable=g-import-not-at-top
    for study in ("study", "study512"):
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
    times = {study_runner.measure_key(r): {"step_s": 2.0,
                                          "refine_s_per_mpixel": 10.0}
             for r in runs}
    hours, lines = study_runner.estimate_hours(runs[:1], times, {"tiny": 0.1},
                                               val_mpixels=0.2)
    # K = 2 (measured at 4: x 0.5): train 6 batches x 2 s x 0.5 = 6 s;
    # validation 2 epochs x 0.2 MP x 5 s = 2 s; test 0.1 MP x 5 s x
    # (1 + (1 + 2) / 2 + 2 x 1) = 2.25 s
    self.assertAlmostEqual(hours * 3600, 6 + 2 + 2.25, places=9)
    self.assertLen(lines, 1)

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
    self.assertEqual(sorted(rec["rd"]["0.8"]), ["codec", "decoder"])
    self.assertEqual(sorted(rec["rd"]["0.8"]["codec"]),
                     ["bpp", "ms-ssim", "psnr"])
    self.assertEqual(rec["k_sweep"]["2"], rec["decoder"]["psnr"])
    self.assertNotEqual(rec["k_sweep"]["1"], rec["decoder"]["psnr"])

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
    self.assertIn("second epoch", m["how"])


if __name__ == "__main__":
  absltest.main()
