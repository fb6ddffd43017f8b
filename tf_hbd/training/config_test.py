"""Tests of tf_hbd.training.config: the run settings as data."""

import dataclasses
import os
import re
import shlex

from absl import flags
from absl.testing import absltest

from tf_hbd.training import config
from tf_hbd.training import trainer

# The flag strings the scales were written as before they became
# `RunConfig` objects (tf_hbd/workflows/reproduce.py, SCALES[...].train_flags).
_OLD_SCALE_FLAGS = {
    "tiny": {"dataset": "sample", "units": "8", "K": "2",
             "batch_size": "16", "epochs": "2", "steps_per_epoch": "3",
             "train_limit": "2", "train_max_side": "96",
             "val_max_images": "1", "val_max_side": "64",
             "optimizer": "adam", "lr": "1e-3", "log_every": "1"},
    "cpu": {"dataset": "folder:{data}/train400", "val_images": "{data}/bsd68",
            "val_max_images": "4", "val_bpp": "0.37", "units": "32",
            "K": "4", "batch_size": "256", "epochs": "5",
            "steps_per_epoch": "40", "optimizer": "adam", "lr": "1e-3",
            "log_every": "20"},
    "paper": {"dataset": "places_patches/{codec}", "units": "512", "K": "4",
              "batch_size": "256", "epochs": "260", "optimizer": "sgd",
              "lr": "2e-4", "val_images": "{data}/places_val",
              "val_max_images": "200"},
}
_MODEL_CARD = os.path.join(os.path.dirname(__file__), "..", "pretrained",
                           "hbd-lstm-jpeg", "MODEL.md")


def _args(flag_dict):
  return [f"--{k}={v}" for k, v in flag_dict.items()]


class RunConfigTest(absltest.TestCase):

  def test_defaults_are_the_flag_defaults_with_their_types(self):
    fv = flags.FlagValues()
    holders = config.define_flags(fv)
    fv(["prog"])
    default = config.RunConfig()
    self.assertEqual(list(holders), config.flag_names())
    for name, holder in holders.items():
      value = getattr(default, name)
      self.assertEqual(holder.value, value, name)
      self.assertIs(type(holder.value), type(value), name)
    self.assertEqual(config.from_flag_values(fv), default)

  def test_every_field_has_a_one_line_help(self):
    for f in dataclasses.fields(config.RunConfig):
      self.assertTrue(f.metadata["help"].strip(), f.name)
      self.assertNotIn("\n", f.metadata["help"], f.name)

  def test_each_scale_is_the_flags_it_used_to_be(self):
    for name, old in _OLD_SCALE_FLAGS.items():
      with self.subTest(name):
        cfg = config.CONFIGS[name]
        self.assertEqual(config.from_args(_args(old)), cfg)
        # to_flags keeps what differs from the defaults, and it round-trips.
        new = config.to_flags(cfg)
        self.assertEqual(config.from_args(_args(new)), cfg)
        self.assertLessEqual(set(new), set(old))
        dropped = set(old) - set(new)
        default = config.RunConfig()
        self.assertEqual(config.from_args(_args({k: old[k] for k in dropped})),
                         default)

  def test_flag_text_is_the_shortest_that_parses_back(self):
    cases = {1e-3: "1e-3", 2e-4: "2e-4", 1.0: "1", 0.0: "0", 0.99: "0.99",
             0.02: "0.02", 13.0: "13", 100.0: "100", 1000.0: "1e3",
             1e-7: "1e-7", 0.1 + 0.2: "0.30000000000000004", -0.5: "-0.5"}
    for value, text in cases.items():
      self.assertEqual(config.flag_text(value), text)
      self.assertEqual(float(text), value)
    self.assertEqual(config.flag_text(True), "true")
    self.assertEqual(config.flag_text(["10", "20"]), "10,20")
    self.assertEqual(config.flag_text(7), "7")

  def test_the_study_config_is_the_shipped_jpeg_decoders_command(self):
    with open(_MODEL_CARD) as f:
      text = f.read()
    command = re.search(r"python scripts/train\.py ([^\n]*)",
                        text.replace("\\\n", " ")).group(1)
    args = [a.replace("../shared/data", "{data}") for a in shlex.split(command)
            if not a.startswith("--model_dir=")]
    self.assertEqual(config.from_args(args), config.STUDY)

  def test_a_given_flag_overrides_the_config_and_the_rest_is_kept(self):
    cfg = config.from_args(["--units=16", "--optimizer=sgd"],
                           base=config.TINY)
    self.assertEqual(cfg.units, 16)
    # Given explicitly, a flag wins even when it equals the default.
    self.assertEqual(cfg.optimizer, "sgd")
    self.assertEqual(cfg.lr, config.TINY.lr)
    self.assertEqual(cfg.batch_size, config.TINY.batch_size)
    self.assertEqual(config.override(config.TINY, units=16,
                                     optimizer="sgd"), cfg)
    # Without a base, the defaults are the base.
    self.assertEqual(config.from_args(["--units=16"]).lr,
                     config.RunConfig().lr)

  def test_bool_and_list_flags_override_too(self):
    cfg = config.from_args(["--noexport_best", "--val_settings=0.25,0.5"],
                           base=config.STUDY)
    self.assertFalse(cfg.export_best)
    self.assertEqual(cfg.val_settings, ["0.25", "0.5"])
    self.assertEqual(config.STUDY.val_settings, ["10", "20", "30"])

  def test_override_refuses_unknown_settings(self):
    with self.assertRaisesRegex(ValueError, r"unknown setting.*'unit'"):
      config.override(config.TINY, unit=3)

  def test_resolve_fills_in_the_data_root_and_the_codec(self):
    cfg = config.resolve(config.override(config.PAPER, codec="jp2"), "/d")
    self.assertEqual(cfg.dataset, "places_patches/jp2")
    self.assertEqual(cfg.val_images, "/d/places_val")
    self.assertEqual(config.resolve(config.CPU, "/d").dataset,
                     "folder:/d/train400")
    self.assertEqual(config.resolve(config.TINY, "/d"), config.TINY)

  def test_trainer_config_copies_the_shared_fields_by_name(self):
    cfg = config.override(config.STUDY, model_dir="/m", max_steps=7)
    tc = config.trainer_config(cfg, 123, {"units": 512})
    self.assertIsInstance(tc, trainer.TrainConfig)
    self.assertEqual(tc.steps_per_epoch, 123)
    self.assertEqual(tc.flags, {"units": 512})
    for f in dataclasses.fields(trainer.TrainConfig):
      if f.name in ("steps_per_epoch", "flags"):
        continue
      if f.name in config.flag_names():
        self.assertEqual(getattr(tc, f.name), getattr(cfg, f.name), f.name)
      else:  # the trainer's own settings keep their defaults
        self.assertEqual(getattr(tc, f.name), f.default, f.name)
    self.assertEqual((tc.ema, tc.export_best, tc.checkpoint_every,
                      tc.lr_schedule), (0.9995, True, 2500, "cosine"))


if __name__ == "__main__":
  absltest.main()
