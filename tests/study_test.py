"""The study pipeline end to end at a tiny scale
(tf_hbd.workflows.study_runner).

Two configurations x 2 seeds of 4-unit decoders on the embedded sample
photographs, trained in this process: records, kill-free resume of an
interrupted run, skip of recorded runs (delete one record, rerun: only that
run is redone, its record the same numbers), the metric and codec caches
shared by the runs (the codec's metrics and round trips computed by the
first run only), the CPU-hours estimate, the statistics, tables, figures and
claims.
"""

import json
import os
import shutil
import tempfile

import pytest
from absl.testing import absltest

from tf_hbd.workflows import study_runner
from tf_hbd.evaluation import claims


class StudyEndToEndTest(absltest.TestCase):

  # 5 trainings in one process, each exported once (its serving/, the run's
  # one SavedModel), and 5 SavedModel loads.
  @pytest.mark.slow
  def test_records_skip_resume_and_reports(self):
    tiers = study_runner.STUDIES["tiny"]
    runs = study_runner.plan(tiers)
    self.assertLen(runs, 4)
    with tempfile.TemporaryDirectory() as tmp:
      out, work = os.path.join(tmp, "results"), os.path.join(tmp, "runs")
      mcache = os.path.join(tmp, "metric_cache")
      ccache = os.path.join(tmp, "codec_cache")
      # An interrupted run: stopped after its first batch (checkpointed).
      cut = runs[-1]
      fl = study_runner.run_flags(cut, tmp)
      fl["max_steps"] = "1"
      model_dir = os.path.join(work, cut.run_id)
      self.assertEqual(study_runner.train_run(fl, model_dir, model_dir +
                                              ".log", in_process=False), 0)
      with open(os.path.join(model_dir, "log.json")) as f:
        self.assertEqual(json.load(f)["status"], "stopped")

      lines = []
      status = study_runner.run_study(tiers, out, work, tmp,
                                      in_process=False, estimate=False,
                                      n_boot=200, say=lines.append,
                                      metric_cache_dir=mcache,
                                      codec_cache_dir=ccache)
      self.assertEqual(set(status.values()), {"done"})
      # the codec's rows (2 images: 3 metrics at the test rate, PSNR and
      # MS-SSIM at the RD rate) are computed by the first run, read by the
      # others
      recorded = [l for l in lines if ": recorded" in l]
      self.assertLen(recorded, 4)
      self.assertIn("codec metrics 0 cached, 10 computed", recorded[0])
      # and the round trips (2 images at the test and the RD rate)
      self.assertIn("codec round trips 0 cached, 4 computed", recorded[0])
      for line in recorded[1:]:
        self.assertIn("codec metrics 10 cached, 0 computed", line)
        self.assertIn("codec round trips 4 cached, 0 computed", line)
      with open(model_dir + ".log") as f:
        self.assertIn("resumed from", f.read())
      self.assertTrue(any(f"{cut.run_id}: resuming" in l for l in lines))

      paths = {r.run_id: study_runner.record_path(out, r) for r in runs}
      recs = {}
      for run_id, path in paths.items():
        with open(path) as f:
          recs[run_id] = json.load(f)
        self.assertTrue(os.path.isfile(os.path.join(os.path.dirname(path),
                                                    "train.log")))
        # small JSON only: no weights next to the record
        self.assertEqual(sorted(os.listdir(os.path.dirname(path))),
                         ["record.json", "train.log"])
      r = recs[runs[0].run_id]
      self.assertEqual((r["tier"], r["config"], r["seed"]),
                       ("tiny", "lstm-jpeg-bptt", 0))
      self.assertEqual(r["status"], "finished")
      self.assertLen(r["epochs"], 2)
      self.assertLen(r["epochs"][0]["val_per_image"], 2)
      t = r["training"]
      self.assertEqual((t["batches"], t["examples"], t["updates"]),
                       (6, 96, 6))
      self.assertGreater(t["time_s"], 0)
      self.assertLen(r["test"]["images"], 2)
      self.assertLen(r["test"]["decoder"]["psnr"], 2)
      self.assertEqual(sorted(r["test"]["k_sweep"]), ["1", "2"])
      # the trained K's sweep entry is the decoder's own row
      self.assertEqual(r["test"]["k_sweep"]["2"], r["test"]["decoder"]["psnr"])
      self.assertEqual(sorted(r["test"]["rd"]), ["0.8"])
      # the interrupted run ended where an uninterrupted one does
      self.assertEqual(recs[cut.run_id]["training"]["batches"], 6)

      with open(os.path.join(out, "claims.json")) as f:
        doc = json.load(f)
      self.assertEqual(set(doc), {"claims", "runs", "seeds_min"})
      self.assertEqual((doc["runs"], doc["seeds_min"]), (4, 2))
      self.assertEqual(set(doc["claims"]), set("abcd"))
      for c in doc["claims"].values():
        self.assertIn(c["verdict"], ("confirmed", "refuted",
                                     "inconclusive"))
      self.assertIsNotNone(doc["claims"]["b"]["ci95"])  # SAB vs BPTT
      self.assertEqual(doc, claims.decide_claims(
          claims.load_records(os.path.join(out, "runs")), n_boot=200))
      for name in ("table3.md", "table1.md", "comparisons.md",
                   "convergence.md", "claims.md", "README.md",
                   "figure1_tiny.png", "rd_tiny.png"):
        self.assertTrue(os.path.isfile(os.path.join(out, name)), name)
      with open(os.path.join(out, "table3.md")) as f:
        table3 = f.read()
      self.assertIn("lstm-jpeg-sab", table3)
      self.assertIn("JPEG (codec)", table3)

      # Delete one record: only that run is redone (evaluated again; its
      # finished training is not rerun).
      redo = runs[1]
      train_log = os.path.join(work, redo.run_id, "log.json")
      log_mtime = os.path.getmtime(train_log)
      others = {k: os.path.getmtime(p) for k, p in paths.items()
                if k != redo.run_id}
      os.remove(paths[redo.run_id])
      # the cache deleted too: the record is redone from scratch
      shutil.rmtree(mcache)
      shutil.rmtree(ccache)
      # a cached step time (measure_step_time has its own test): the
      # estimate is printed without measuring again
      key = study_runner.measure_key(redo)
      parts = ("psnr", "ssim_and_ms_ssim", "ms_ssim", "cached_roundtrip",
               "roundtrip:jpeg", "roundtrip:jp2")
      with open(os.path.join(out, "step_times.json"), "w") as f:
        json.dump({key: {"step_s": 0.5, "refine_s_per_mpixel": 2.0},
                   study_runner.EVAL_KEY: {
                       "s_per_mpixel": dict.fromkeys(parts, 1.0),
                       "warmup_s": 0.0, "load_s": 1.0, "overhead_s": 1.0}},
                  f)
      lines = []
      status = study_runner.run_study(tiers, out, work, tmp,
                                      in_process=False, estimate=True,
                                      n_boot=200, say=lines.append,
                                      metric_cache_dir=mcache,
                                      codec_cache_dir=ccache)
      self.assertEqual(status[redo.run_id], "done")
      with open(paths[redo.run_id]) as f:
        again = json.load(f)
      # the same numbers as when its metrics came from the cache
      self.assertEqual(json.dumps(again["test"]),
                       json.dumps(recs[redo.run_id]["test"]))
      self.assertTrue(any("codec metrics 0 cached, 10 computed; codec round "
                          "trips 0 cached, 4 computed" in l for l in lines),
                      lines)
      self.assertEqual({v for k, v in status.items() if k != redo.run_id},
                       {"skipped"})
      self.assertTrue(os.path.isfile(paths[redo.run_id]))
      self.assertEqual(os.path.getmtime(train_log), log_mtime)
      for k, mtime in others.items():
        self.assertEqual(os.path.getmtime(paths[k]), mtime)
      self.assertTrue(any("estimated CPU time of the 1 runs" in l
                          for l in lines), lines)
      # 6 batches x 0.5 s (K = 2: x 2/4) = 1.5 s of training
      self.assertTrue(any(f"{redo.run_id}: 0.00 h (train 0.00" in l
                          for l in lines), lines)


if __name__ == "__main__":
  absltest.main()
