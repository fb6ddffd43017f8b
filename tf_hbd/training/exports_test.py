"""Tests of tf_hbd.training.exports: a run's serving metadata."""

import json
import os

from absl.testing import absltest

from tf_hbd.training import exports


def _log(**flags):
  return {"algorithm": "uoro", "best": {"epoch": 2, "val_psnr": 30.5},
          "flags": dict({"codec": "jp2", "cell": "gru", "sne": False,
                         "units": 8, "val_settings": []}, **flags),
          "epochs": [{"epoch": 1, "time_s": 3.0}, {"epoch": 2, "time_s": 7.5}]}


class RunMetadataTest(absltest.TestCase):

  def test_metadata_of_a_run(self):
    meta = exports.run_metadata(_log(), "best")
    self.assertEqual(meta["label"], "GRU-JP2-UORO")
    self.assertEqual((meta["algorithm"], meta["sne"]), ("uoro", False))
    self.assertEqual(meta["training"], {
        "flags": {"codec": "jp2", "cell": "gru", "sne": "False",
                  "units": "8", "val_settings": "[]"},
        "best": {"epoch": 2, "val_psnr": 30.5}, "epochs": 2,
        "source": "best", "wall_time_s": 7.5})
    self.assertNotIn("note", meta)
    self.assertEqual(exports.run_metadata(_log(), "final", "rc")["note"],
                     "rc")

  def test_sne_from_a_bool_or_its_text_and_no_epochs(self):
    self.assertTrue(exports.run_metadata(_log(sne=True), "final")["sne"])
    self.assertTrue(exports.run_metadata(_log(sne="true"), "final")["sne"])
    log = dict(_log(), epochs=[])
    training = exports.run_metadata(log, "final")["training"]
    self.assertEqual((training["epochs"], training["wall_time_s"]), (0, None))

  def test_read_log(self):
    d = self.create_tempdir().full_path
    with open(os.path.join(d, "log.json"), "w") as f:
      json.dump(_log(), f)
    self.assertEqual(exports.read_log(d), _log())


if __name__ == "__main__":
  absltest.main()
