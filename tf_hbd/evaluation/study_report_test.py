"""Tests of tf_hbd.evaluation.study_report on synthetic records."""

import json
import os
import tempfile

from absl.testing import absltest

from tf_hbd.evaluation import study_report

IMAGES = ["a", "b", "c"]
VAL = ["v1", "v2"]


def _record(algo, seed, gain, sec_per_epoch, val_offset, epochs=6):
  codec = [30.0, 32.0, 28.0]
  dec = [c + gain for c in codec]
  rows = [{"epoch": e, "step": 10 * e, "val_psnr": 30.0 + 0.1 * e
           + val_offset, "codec_psnr": 30.0, "time_s": sec_per_epoch * e,
           "val_per_image": {v: 30.0 + 0.1 * e + val_offset for v in VAL}}
          for e in range(1, epochs + 1)]
  metrics = lambda p: {"bpp": [0.37] * 3, "psnr": p, "ssim": [0.9] * 3,
                       "ms-ssim": [0.95] * 3}
  return {
      "run": f"t/lstm-jpeg-{algo}-seed{seed}", "tier": "t",
      "config": f"lstm-jpeg-{algo}", "seed": seed, "algorithm": algo,
      "cell": "lstm", "sne": False, "codec": "jpeg", "K": 4, "units": 8,
      "flags": {"algo": algo, "seed": str(seed)},
      "training": {"examples": 2560, "batches": 10, "batch_size": 256,
                   "updates": 10 if algo == "bptt" else 40,
                   "time_s": sec_per_epoch * epochs,
                   "convergence_tol_db": 0.05},
      "epochs": rows,
      "test": {"dataset": "set", "bpp": 0.37, "images": IMAGES,
               "codec": metrics(codec), "decoder": metrics(dec),
               "k_sweep": {"1": [d - 0.1 for d in dec], "4": dec},
               "rd": {"0.5": {"codec": {"bpp": [0.5] * 3, "psnr": codec,
                                        "ms-ssim": [0.9] * 3},
                              "decoder": {"bpp": [0.5] * 3, "psnr": dec,
                                          "ms-ssim": [0.92] * 3}}}}}


def _write(d, rec):
  path = os.path.join(d, "runs", rec["run"], "record.json")
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    json.dump(rec, f)


class StudyReportTest(absltest.TestCase):

  def test_reports_from_records(self):
    with tempfile.TemporaryDirectory() as d:
      for seed in range(2):
        for rec in (_record("bptt", seed, 0.5, 1.0, 0.0),
                    _record("uoro", seed, 0.3, 2.0, 0.05)):
          path = os.path.join(d, "runs", rec["run"], "record.json")
          os.makedirs(os.path.dirname(path))
          with open(path, "w") as f:
            json.dump(rec, f)
      arts = study_report.write_reports(d, n_boot=200)
      for name in ("table3", "comparisons", "table1", "convergence",
                   "figure1_t", "rd_t", "claims_json", "claims_md",
                   "readme"):
        self.assertTrue(os.path.isfile(arts[name]), name)
      with open(arts["table3"]) as f:
        t3 = f.read()
      # no training noise: the gain's interval is the point itself; the
      # PSNR's spans the images (28 to 32 dB)
      self.assertIn("| lstm-jpeg-bptt | 2 | 0.3700 | 30.500 [28.500, "
                    "32.500] | +0.500 [+0.500, +0.500] |", t3)
      self.assertIn("| 2,560 | 40 | 12-12 |", t3)  # UORO: 4 updates a batch
      self.assertIn("| JPEG (codec) |", t3)
      with open(arts["comparisons"]) as f:
        comp = f.read()
      # equal examples: UORO - BPTT = 0.3 - 0.5 dB
      self.assertIn("-0.200 [-0.200, -0.200]", comp)
      # equal wall time: budget 6 s = BPTT's whole run; UORO (2 s per
      # epoch) is read at epoch 3: 30.35 vs 30.6 dB
      self.assertIn("| uoro | 2 | 40 | 12-12 | -0.200 [-0.200, -0.200] | 3 "
                    "| -0.250 [-0.250, -0.250] |", comp)
      with open(arts["table1"]) as f:
        self.assertIn("| lstm-jpeg-uoro (4) | 30.200 [28.200, 32.200] | "
                      "30.300 [28.300, 32.300] |", f.read())
      with open(os.path.join(d, "rd", "t", "lstm-jpeg-bptt.json")) as f:
        rd = json.load(f)["results"]
      self.assertAlmostEqual(rd["psnr"][0], 30.5)
      with open(arts["claims_json"]) as f:
        doc = json.load(f)
      self.assertEqual(doc["claims"]["a"]["verdict"], "confirmed")
      self.assertEqual(doc["runs"], 4)
      with open(arts["readme"]) as f:
        text = f.read()
      self.assertIn("Every decoder beats its codec at equal bpp: "
                    "**confirmed**", text)
      # 2 x 6 s (BPTT) + 2 x 12 s (UORO) of training
      self.assertIn("* tier `t`: 4 runs of 2 configurations, 8 units, 10 "
                    "batches of 256 in 6 epochs (2,560 examples) per run",
                    text)
      self.assertIn("recorded wall time 0.01 h training", text)

  def test_equal_wall_time_reads_each_configuration_on_its_fastest_seed(
      self):
    # UORO's seed 1 ran under load (6 s per epoch): its clock is seed 0's
    # (2 s per epoch), so both seeds are read at epoch 3, not 1
    with tempfile.TemporaryDirectory() as d:
      for rec in (_record("bptt", 0, 0.5, 1.0, 0.0),
                  _record("bptt", 1, 0.5, 1.5, 0.0),
                  _record("uoro", 0, 0.3, 2.0, 0.05),
                  _record("uoro", 1, 0.3, 6.0, 0.05)):
        _write(d, rec)
      arts = study_report.write_reports(d, n_boot=50)
      with open(arts["comparisons"]) as f:
        comp = f.read()
      self.assertIn("(wall-time budget 6 s)", comp)
      self.assertIn("| bptt | 2 | 10 | 6-9 | 0 | 6 | 0 |", comp)
      self.assertIn("| uoro | 2 | 40 | 12-36 | -0.200 [-0.200, -0.200] | 3 "
                    "| -0.250 [-0.250, -0.250] |", comp)

  def test_equal_wall_time_says_who_has_no_epoch_within_the_budget(self):
    # the budget is the shortest run (6 s); the other algorithm's first
    # epoch takes 7 s: no validation to compare, named on its row
    for slow, row in (("uoro", "| uoro | 2 | 40 | 42-42 | -0.200 [-0.200, "
                       "-0.200] | 0 | no validation within the budget |"),
                      ("bptt", "| uoro | 2 | 40 | 6-6 | -0.200 [-0.200, "
                       "-0.200] | 6 | BPTT has no validation within the "
                       "budget |")):
      with tempfile.TemporaryDirectory() as d:
        for seed in range(2):
          for algo in ("bptt", "uoro"):
            _write(d, _record(algo, seed, 0.5 if algo == "bptt" else 0.3,
                              7.0 if algo == slow else 1.0, 0.0))
        arts = study_report.write_reports(d, n_boot=50)
        with open(arts["comparisons"]) as f:
          self.assertIn(row, f.read())

  def test_a_partial_study_says_so_and_the_readme_block_follows(self):
    with tempfile.TemporaryDirectory() as d:
      for seed in range(2):
        _write(d, _record("bptt", seed, 0.5, 1.0, 0.0))
      top = os.path.join(d, "TOP.md")
      with open(top, "w") as f:
        f.write(f"a\n{study_report.README_BEGIN}\nold\n"
                f"{study_report.README_END}\nb\n")
      planned = [f"t/lstm-jpeg-bptt-seed{s}" for s in range(3)]
      arts = study_report.write_reports(d, n_boot=50, planned=planned,
                                        readme=top)
      with open(arts["readme"]) as f:
        text = f.read()
      self.assertIn("partial study, 1 of 3 planned runs not recorded: tier "
                    "t: 2 of 3 runs (seed 2: lstm-jpeg-bptt missing)", text)
      self.assertIn("Every decoder beats its codec at equal bpp: "
                    "**inconclusive** (smallest decoder gain, "
                    "t/lstm-jpeg-bptt: +0.500 dB", text)
      with open(top) as f:
        text = f.read()
      self.assertTrue(text.startswith(f"a\n{study_report.README_BEGIN}\n"
                                      "The seeded study of issue 14 "
                                      "([`./`](README.md): 2 run records"))
      self.assertIn("no claim is decided yet", text)
      self.assertTrue(text.endswith(f"{study_report.README_END}\nb\n"))
      self.assertEqual(text.count("\n* ("), 4)
      arts = study_report.write_reports(d, n_boot=50, planned=planned[:2],
                                        readme=top)
      with open(top) as f:
        self.assertIn("**confirmed** (smallest decoder gain", f.read())
      # a record of other flags than the plan's is left out: missing
      arts = study_report.write_reports(d, n_boot=50, planned=planned[:2],
                                        stale=[planned[1]])
      with open(arts["readme"]) as f:
        self.assertIn("1 run records", f.read())
      with open(arts["claims_md"]) as f:
        self.assertIn("1 of 2 planned runs not recorded", f.read())
      with open(top, "w") as f:
        f.write("no block\n")
      with self.assertRaisesRegex(ValueError, "TOP.md: no"):
        study_report.write_reports(d, n_boot=50, readme=top)

  def test_convergence_shows_the_gain_that_decides_the_flag(self):
    # each seed peaks at +0.08 dB, at other epochs: the mean curve peaks at
    # +0.04, under the 0.05 dB tolerance; the table shows +0.040, flagged
    with tempfile.TemporaryDirectory() as d:
      for seed, peak in ((0, 1), (1, 6)):
        rec = _record("bptt", seed, 0.5, 1.0, 0.0)
        for e in rec["epochs"]:
          e["val_psnr"] = 30.0 + (0.08 if e["epoch"] == peak else 0.0)
          e["val_per_image"] = {v: e["val_psnr"] for v in VAL}
        _write(d, rec)
      arts = study_report.write_reports(d, n_boot=50)
      with open(arts["convergence"]) as f:
        self.assertIn("| +0.040 (never more than the tolerance above the "
                      "codec: not compared in (d)) |", f.read())

  def test_readme_block_needs_begin_then_end(self):
    b, e = study_report.README_BEGIN, study_report.README_END
    self.assertEqual(study_report.readme_block(f"x{b}yz{e}"),
                     (1 + len(b), 3 + len(b)))
    self.assertEqual(study_report.readme_block(f"{e}x{b}y{e}"),
                     (len(e) + 1 + len(b), len(e) + 2 + len(b)))
    for text in ("", b, e, f"{e}{b}"):
      self.assertIsNone(study_report.readme_block(text))

  def test_rd_from_the_seeds_that_have_it(self):
    # `Tier.rd_seeds`: seed 0 has RD points, seed 1 none
    with tempfile.TemporaryDirectory() as d:
      for seed in range(2):
        rec = _record("bptt", seed, 0.5 + seed, 1.0, 0.0)
        if seed:
          rec["test"]["rd"] = {}
        path = os.path.join(d, "runs", rec["run"], "record.json")
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
          json.dump(rec, f)
      arts = study_report.write_reports(d, n_boot=50)
      self.assertTrue(os.path.isfile(arts["rd_t"]))
      with open(os.path.join(d, "rd", "t", "lstm-jpeg-bptt.json")) as f:
        rd = json.load(f)["results"]
      self.assertAlmostEqual(rd["psnr"][0], 30.5)  # seed 0's alone


if __name__ == "__main__":
  absltest.main()
