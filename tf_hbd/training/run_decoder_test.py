"""Tests of tf_hbd.training.run_decoder: a run's decoder from its checkpoints
(and from the SavedModels of earlier versions' run dirs)."""

import dataclasses
import json
import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data
from tf_hbd.data import sample_images
from tf_hbd.evaluation import systems
from tf_hbd.inference import refine as refine_lib
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training import config as config_lib
from tf_hbd.training import run_decoder
from tf_hbd.training import trainer as training


def _photo(size=40):
  return np.ascontiguousarray(sample_images.load_sample("camera")[
      100:100 + size, 150:150 + size])


def _train(model_dir, **changes):
  """A tiny run through the real loop, built as the entry point builds it;
  (trainer, log)."""
  cfg = config_lib.override(
      config_lib.TINY, model_dir=model_dir, units=4, epochs=1,
      steps_per_epoch=3, checkpoint_every=2, **changes)
  _, algo = run_decoder.build_algorithm(cfg, patch_size=8)
  arrays = data.blocks_from_images([("camera", _photo())], "jpeg",
                                   quality=15)
  batches = lambda start: arrays.to_dataset(16, seed=3, repeat=True,
                                            start_batch=start)
  img = _photo(32)
  decoded, _ = codecs.roundtrip(img, "jpeg", quality=15)
  validator = training.Validator([training.ValImage("crop", img, decoded)])
  trainer = training.Trainer(
      algo, batches, validator,
      config_lib.trainer_config(cfg, cfg.steps_per_epoch,
                                dataclasses.asdict(cfg)),
      printer=lambda *a: None)
  return trainer, trainer.run()


def _values(model):
  return [v.numpy() for v in model.trainable_variables]


class RunDecoderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("bptt_ema", {"ema": 0.9, "export_best": True}),
      ("sab_sne", {"algo": "sab", "sne": True}))
  def test_final_decoder_is_the_trained_one(self, changes):
    model_dir = self.create_tempdir().full_path
    trainer, log = _train(model_dir, **changes)
    self.assertEqual(log["decoder"], {"patch_size": 8, "setting_size": 0})
    model, where = run_decoder.load(model_dir, "final", printer=self.fail)
    self.assertEqual(where, os.path.join(model_dir, "checkpoints", "ckpt-3"))
    self.assertIs(type(model), type(trainer.model))
    img, _ = codecs.roundtrip(_photo(48), "jpeg", quality=15)
    with trainer.averaged():  # what validation and the serving export use
      for a, b in zip(_values(trainer.model), _values(model)):
        self.assertAllEqual(a, b)
      self.assertAllEqual(refine_lib.refine(img, trainer.model),
                          refine_lib.refine(img, model))
    if changes.get("ema"):  # one epoch: the best is the final average
      best, where = run_decoder.load(model_dir, "best", printer=self.fail)
      self.assertEqual(where, os.path.join(
          run_decoder.best_dir(model_dir), "ckpt-1"))
      for a, b in zip(_values(model), _values(best)):
        self.assertAllEqual(a, b)
      # --init_from=RUN_DIR starts from its best decoder.
      fresh = run_decoder.rebuild(log)
      _, kept = decoder_lib.warm_start(
          fresh, run_decoder.init_source(model_dir, printer=lambda _: None))
      self.assertEmpty(kept)
      for a, b in zip(_values(best), _values(fresh)):
        self.assertAllEqual(a, b)
    else:
      with self.assertRaisesRegex(run_decoder.RunDecoderError,
                                  "--export_best"):
        run_decoder.load(model_dir, "best")
    # The run wrote no SavedModel (the entry point adds serving/); the
    # evaluation of a finished run without one uses the final checkpoint.
    self.assertEmpty(tf.io.gfile.glob(os.path.join(model_dir, "**",
                                                   "saved_model.pb")))
    loaded = systems.load_trained_decoder(model_dir)
    self.assertEqual(loaded.path, os.path.join(model_dir, "checkpoints",
                                               "ckpt-3"))
    self.assertAllEqual(loaded.refine(img), refine_lib.refine(img, model))

  def test_one_best_checkpoint_is_kept(self):
    model_dir = self.create_tempdir().full_path
    trainer, _ = _train(model_dir, export_best=True)
    trainer._save_best(2)  # pylint: disable=protected-access
    self.assertEqual(sorted(os.listdir(run_decoder.best_dir(model_dir))),
                     ["ckpt-2.data-00000-of-00001", "ckpt-2.index"])

  def test_run_dirs_of_earlier_versions(self):
    model_dir = self.create_tempdir().full_path
    trainer, log = _train(model_dir)
    decoder_lib.export_saved_model(trainer.model,
                                   os.path.join(model_dir, "best"))
    del log["decoder"]  # not recorded then
    with open(os.path.join(model_dir, "log.json"), "w") as f:
      json.dump(log, f)
    # No decoder record: the final export/ is read; else the checkpoint.
    model, where = run_decoder.load(model_dir, "final")
    self.assertEqual(where, os.path.join(model_dir, "checkpoints", "ckpt-3"))
    decoder_lib.export_saved_model(trainer.model,
                                   os.path.join(model_dir, "export"))
    for source in ("final", "best"):
      model, where = run_decoder.load(model_dir, source)
      self.assertEqual(where, os.path.join(model_dir,
                                           run_decoder.LEGACY_DIRS[source]))
      for a, b in zip(_values(trainer.model), _values(model)):
        self.assertAllEqual(a, b)

  def test_decoder_inputs(self):
    self.assertEqual(run_decoder.decoder_inputs(
        {"decoder": {"patch_size": 16, "setting_size": 1}}), (16, 1))
    # Logs without the record: the rules of the in-memory datasets.
    self.assertEqual(run_decoder.decoder_inputs({"flags": {
        "dataset": "recompress:x", "codec": "jp2", "setting_input": True,
        "no_such_flag": 1}}), (64, 1))
    self.assertEqual(run_decoder.decoder_inputs({"flags": {
        "dataset": "folder:x", "patch_size": 12}}), (12, 0))
    with self.assertRaisesRegex(run_decoder.RunDecoderError, "patch size"):
      run_decoder.decoder_inputs({"flags": {"dataset": "places_patches/jpeg"}})

  def test_unknown_source_and_empty_dir(self):
    model_dir = self.create_tempdir().full_path
    with open(os.path.join(model_dir, "log.json"), "w") as f:
      json.dump({"status": "running"}, f)
    with self.assertRaisesRegex(FileNotFoundError, "finished training"):
      systems.load_trained_decoder(model_dir)
    with self.assertRaisesRegex(ValueError, "unknown source"):
      run_decoder.load(model_dir, "export", log={})
    with self.assertRaisesRegex(run_decoder.RunDecoderError,
                                "no final decoder"):
      run_decoder.load(model_dir, "final", log={"decoder": {"patch_size": 8}})


if __name__ == "__main__":
  tf.test.main()
