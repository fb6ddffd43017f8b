"""Tests of tf_hbd.evaluation.claims on synthetic records (float64)."""

import json
import os
import tempfile

import numpy as np
from absl.testing import absltest

from tf_hbd.evaluation import claims

IMAGES = [f"im{i}" for i in range(12)]
VAL = [f"v{i}" for i in range(6)]


def _record(rng, tier, algo, seed, gain, codec="jpeg", k=4, cell="lstm",
            k_slope=0.0, conv=3, epochs=6, noise=0.02, config=None):
  """A record whose decoder gains `gain` dB (+ noise) over a fixed codec,
  whose K sweep rises by `k_slope` dB per K and whose validation curve
  reaches its plateau at epoch `conv`."""
  codec_psnr = 28.0 + np.linspace(-3, 3, len(IMAGES))  # image difficulty
  seed_fx = rng.normal(0, noise)
  dec = codec_psnr + gain + seed_fx + rng.normal(0, noise, len(IMAGES))
  sweep = {str(kk): list(dec + k_slope * (kk - k)) for kk in (1, 2, 4, 8)}
  rows = []
  for e in range(1, epochs + 1):
    level = min(e, conv) / conv  # rises to 1 at epoch `conv`, then flat
    per = {v: 30.0 + i * 0.1 + level * 0.5 + rng.normal(0, 0.002)
           for i, v in enumerate(VAL)}
    rows.append({"epoch": e, "step": e * 10, "val_psnr": float(
        np.mean(list(per.values()))), "codec_psnr": 30.0, "time_s": e * 1.0,
                 "val_per_image": per})
  name = config or f"{'sne' if cell == 'sne' else 'lstm'}-{codec}-{algo}" + (
      f"-K{k}" if k != 4 else "")
  return {"run": f"{tier}/{name}-seed{seed}", "tier": tier, "config": name,
          "seed": seed, "algorithm": algo, "cell": "lstm",
          "sne": cell == "sne", "codec": codec, "K": k, "units": 8,
          "training": {"convergence_tol_db": 0.05},
          "epochs": rows,
          "test": {"images": IMAGES,
                   "codec": {"psnr": list(codec_psnr)},
                   "decoder": {"psnr": list(dec)},
                   "k_sweep": sweep}}


def _study(rng, sab_minus_bptt, gain, k_slope, rtrl_conv, other_conv,
           seeds=3, noise=0.02):
  recs = []
  for seed in range(seeds):
    for tier, ref in (("exact", "rtrl"), ("size", "snap1")):
      for codec in ("jpeg", "jp2"):
        recs.append(_record(rng, tier, "bptt", seed, gain, codec,
                            k_slope=k_slope, conv=other_conv, noise=noise))
        recs.append(_record(rng, tier, "sab", seed, gain + sab_minus_bptt,
                            codec, k_slope=k_slope, conv=other_conv,
                            noise=noise))
        recs.append(_record(rng, tier, ref, seed, gain, codec,
                            k_slope=k_slope, conv=rtrl_conv, noise=noise))
    for k in (2, 8):  # trained K variants: PSNR grows with trained K
      recs.append(_record(rng, "size", "bptt", seed,
                          gain + k_slope * (k - 4), k=k, k_slope=k_slope,
                          conv=other_conv, noise=noise))
  return recs


def _verdicts(doc):
  return {k: v["verdict"] for k, v in doc["claims"].items()}


class ClaimsTest(absltest.TestCase):

  def test_clear_effects_are_confirmed_and_the_shape_is_the_issues(self):
    recs = _study(np.random.default_rng(0), sab_minus_bptt=0.2, gain=0.4,
                  k_slope=0.05, rtrl_conv=2, other_conv=5)
    doc = claims.decide_claims(recs, n_boot=300)
    self.assertEqual(set(doc), {"claims", "runs", "seeds_min"})
    self.assertEqual(set(doc["claims"]), {"a", "b", "c", "d"})
    for c in doc["claims"].values():
      self.assertEqual(set(c), {"verdict", "effect_db", "ci95", "detail"})
      self.assertLessEqual(c["ci95"][0], c["ci95"][1])
    self.assertEqual(_verdicts(doc), dict.fromkeys("abcd", "confirmed"))
    self.assertEqual(doc["runs"], len(recs))
    self.assertEqual(doc["seeds_min"], 3)
    self.assertAlmostEqual(doc["claims"]["b"]["effect_db"], 0.2, delta=0.03)
    self.assertEqual(doc["claims"]["d"]["effect_db"], 3.0)  # 5 - 2 epochs
    # (a) shows the worst decoder: BPTT trained at K = 2 (0.4 - 2 x 0.05)
    self.assertAlmostEqual(doc["claims"]["a"]["effect_db"], 0.3, delta=0.05)
    self.assertIn("lstm-jpeg-bptt-K2", doc["claims"]["a"]["detail"])
    # (c) shows every step of the inference sweep (0.05 dB per K) and the
    # PSNR at every trained K
    c = doc["claims"]["c"]["detail"]
    self.assertRegex(c, r"K=1->2 \+0\.05\d dB.*K=4->8 \+0\.[12]\d\d dB")
    self.assertIn("dB at K = 2 / 4 / 8", c)

  def test_reversed_effects_are_refuted(self):
    recs = _study(np.random.default_rng(1), sab_minus_bptt=-0.2, gain=-0.3,
                  k_slope=-0.05, rtrl_conv=5, other_conv=2)
    doc = claims.decide_claims(recs, n_boot=300)
    self.assertEqual(_verdicts(doc), dict.fromkeys("abcd", "refuted"))

  def test_noise_alone_is_inconclusive(self):
    recs = _study(np.random.default_rng(2), sab_minus_bptt=0.0, gain=0.0,
                  k_slope=0.0, rtrl_conv=3, other_conv=3, noise=0.3)
    doc = claims.decide_claims(recs, n_boot=300)
    self.assertEqual(doc["claims"]["b"]["verdict"], "inconclusive")
    self.assertEqual(doc["claims"]["d"]["verdict"], "inconclusive")
    self.assertEqual(doc["claims"]["d"]["effect_db"], 0.0)
    b = doc["claims"]["b"]
    self.assertLess(b["ci95"][0], 0.0)
    self.assertGreater(b["ci95"][1], 0.0)

  def test_one_seed_decides_nothing(self):
    recs = _study(np.random.default_rng(3), sab_minus_bptt=0.5, gain=0.5,
                  k_slope=0.1, rtrl_conv=1, other_conv=5, seeds=1)
    doc = claims.decide_claims(recs, n_boot=100)
    self.assertEqual(_verdicts(doc), dict.fromkeys("abcd", "inconclusive"))
    self.assertEqual(doc["seeds_min"], 1)
    empty = claims.decide_claims([], n_boot=10)
    self.assertEqual(_verdicts(empty), dict.fromkeys("abcd", "inconclusive"))
    self.assertEqual((empty["runs"], empty["seeds_min"]), (0, 0))

  def test_one_losing_decoder_refutes_a(self):
    rng = np.random.default_rng(4)
    recs = [_record(rng, "size", "bptt", s, 0.5) for s in range(3)]
    recs += [_record(rng, "size", "uoro", s, -0.4) for s in range(3)]
    a = claims.decide_claims(recs, n_boot=300)["claims"]["a"]
    self.assertEqual(a["verdict"], "refuted")
    self.assertIn("size/lstm-jpeg-uoro", a["detail"])
    self.assertAlmostEqual(a["effect_db"], -0.4, delta=0.05)

  def test_mixed_settings_within_a_configuration_are_refused(self):
    rng = np.random.default_rng(7)
    recs = [_record(rng, "size", "bptt", s, 0.5) for s in range(2)]
    recs[0]["flags"] = {"seed": "0", "lr": "1e-3", "dataset": "/a"}
    recs[1]["flags"] = {"seed": "1", "lr": "1e-3", "dataset": "/b"}
    claims.decide_claims(recs, n_boot=10)  # seed and data paths may differ
    recs[1]["flags"]["lr"] = "2e-3"
    with self.assertRaisesRegex(ValueError, "size/lstm-jpeg-bptt-seed1 was "
                                "trained with other flags.*lr"):
      claims.decide_claims(recs, n_boot=10)

  def test_validation_gains_subtract_each_images_codec_psnr(self):
    rng = np.random.default_rng(8)
    recs = [_record(rng, "size", "bptt", s, 0.5, epochs=3) for s in range(2)]
    for r in recs:
      for e in r["epochs"]:
        e["codec_per_image"] = {v: 29.0 + i for i, v in enumerate(VAL)}
    psnr = claims.val_curves(recs)
    gain = claims.val_curves(recs, gain=True)
    self.assertEqual(psnr.shape, (2, len(VAL), 3))
    want = psnr - (29.0 + np.arange(len(VAL)))[None, :, None]
    np.testing.assert_allclose(gain, want, rtol=0, atol=1e-12)
    del recs[0]["epochs"][0]["codec_per_image"]  # older logs: the mean
    np.testing.assert_allclose(claims.val_curves(recs, gain=True)[0],
                               psnr[0] - 30.0, rtol=0, atol=1e-12)

  def test_convergence_epochs_match_the_trainer(self):
    from tf_hbd.training import trainer  # pylint: disable=g-import-not-at-top
    rng = np.random.default_rng(5)
    curves = np.cumsum(rng.normal(0.02, 0.05, (50, 9)), axis=1)
    got = claims.convergence_epochs(curves, 0.05)
    want = [trainer.convergence_epoch(list(c), 0.05) for c in curves]
    np.testing.assert_array_equal(got, want)

  def test_d_leaves_out_a_decoder_that_does_not_learn(self):
    # UORO's curve is flat (0.01 dB): within the tolerance of its best
    # from epoch 1, it would "converge" first and refute (d)
    rng = np.random.default_rng(9)
    recs = []
    for tier, ref in (("exact", "rtrl"), ("size", "snap1")):
      for s in range(3):
        recs.append(_record(rng, tier, ref, s, 0.4, conv=2))
        recs.append(_record(rng, tier, "bptt", s, 0.4, conv=5))
        flat = _record(rng, tier, "uoro", s, 0.0, conv=5)
        for e in flat["epochs"]:
          e["val_per_image"] = {v: 30.0 + 0.01 * e["epoch"] / 6
                                for v in VAL}  # codec: 30 dB
        recs.append(flat)
    d = claims.decide_claims(recs, n_boot=200)["claims"]["d"]
    self.assertEqual(d["verdict"], "confirmed")
    self.assertEqual(d["effect_db"], 3.0)  # bptt 5 - 2 epochs
    self.assertIn("2 left out", d["detail"])
    self.assertIn("uoro never more than 0.05 dB above the codec", d["detail"])
    self.assertAlmostEqual(claims.best_val_gain(recs[2:9:3]), 0.01,
                           delta=0.005)

  def test_d_needs_exact_rtrl_and_snap1(self):
    recs = [r for r in _study(np.random.default_rng(10), 0.2, 0.4, 0.05, 2,
                              5) if r["tier"] == "size"]
    d = claims.decide_claims(recs, n_boot=200)["claims"]["d"]
    self.assertEqual(d["verdict"], "inconclusive")
    self.assertEqual(d["effect_db"], 3.0)
    self.assertIn("no comparison with exact RTRL", d["detail"])

  def test_a_partial_study_decides_nothing_and_says_what_is_missing(self):
    recs = _study(np.random.default_rng(11), 0.2, 0.4, 0.05, 2, 5)
    runs = sorted(r["run"] for r in recs)
    planned = runs + [f"extra/lstm-jpeg-bptt-seed{s}" for s in range(3)]
    self.assertEqual(claims.coverage(recs, runs), ([], ""))
    self.assertEqual(claims.coverage(recs, None), ([], ""))
    missing, note = claims.coverage(recs[1:], planned)
    self.assertEqual(len(missing), 4)
    self.assertIn("4 of", note)
    self.assertIn("tier extra: no records (0 of 3 runs)", note)
    self.assertIn(f"seed 0: {recs[0]['config']} missing", note)
    full = claims.decide_claims(recs, n_boot=100, planned=runs)
    self.assertEqual(_verdicts(full), dict.fromkeys("abcd", "confirmed"))
    part = claims.decide_claims(recs, n_boot=100, planned=planned)
    self.assertEqual(_verdicts(part), dict.fromkeys("abcd", "inconclusive"))
    for k in "abcd":
      self.assertEqual(part["claims"][k]["ci95"], full["claims"][k]["ci95"])
      self.assertIn("confirmed on the recorded runs alone; partial study",
                    part["claims"][k]["detail"])
    # a refutation on the recorded runs alone is not final either: missing
    # runs widen the Bonferroni intervals and move the means
    refuted = _study(np.random.default_rng(1), -0.2, -0.3, -0.05, 5, 2)
    self.assertEqual(claims.decide_claims(refuted, n_boot=100)["claims"][
        "b"]["verdict"], "refuted")
    b = claims.decide_claims(refuted, n_boot=100, planned=planned)[
        "claims"]["b"]
    self.assertEqual(b["verdict"], "inconclusive")
    self.assertIn("refuted on the recorded runs alone; partial study",
                  b["detail"])

  def test_written_files(self):
    recs = _study(np.random.default_rng(6), 0.2, 0.4, 0.05, 2, 5, seeds=2)
    doc = claims.decide_claims(recs, n_boot=100)
    with tempfile.TemporaryDirectory() as d:
      js, md = claims.write_claims(doc, d)
      with open(js) as f:
        self.assertEqual(json.load(f), json.loads(json.dumps(doc)))
      with open(md) as f:
        text = f.read()
      self.assertIn("Decision rule", text)
      self.assertIn("epochs", text)
      self.assertEqual(sorted(os.listdir(d)), ["claims.json", "claims.md"])


if __name__ == "__main__":
  absltest.main()
