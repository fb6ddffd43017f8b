"""Tests of tf_hbd.quiet: --verbose detection and TFDS's build output."""

import contextlib
import io
from unittest import mock

from absl.testing import absltest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import tqdm_utils

from tf_hbd import quiet
from tf_hbd.data import pipelines


class QuietTest(absltest.TestCase):

  def test_verbose_in_argv(self):
    self.assertTrue(quiet.verbose_in_argv(["--x=1", "--verbose"]))
    self.assertTrue(quiet.verbose_in_argv(["--verbose=true"]))
    self.assertFalse(quiet.verbose_in_argv(["--", "--verbose"]))
    self.assertFalse(quiet.verbose_in_argv(["--verbose=false"]))

  def _printed_while_building(self, quiet_state):
    out = io.StringIO()
    with mock.patch.dict(quiet._STATE, {"quiet": quiet_state}), \
        contextlib.redirect_stdout(out):
      with quiet.tfds_build_output():
        print("Downloading and preparing dataset ...")
        bars = tqdm_utils._active
      print("after")
    return out.getvalue(), bars

  def test_tfds_lines_hidden_when_quiet_shown_when_verbose(self):
    self.assertEqual(self._printed_while_building(True),
                     ("after\n", False))
    self.assertTrue(tqdm_utils._active)  # progress bars back after
    text, _ = self._printed_while_building(False)
    self.assertEqual(text, "Downloading and preparing dataset ...\nafter\n")

  def test_progress_bars_left_off_when_they_were_off(self):
    tfds.disable_progress_bar()  # e.g. the caller's own choice
    try:
      self.assertEqual(self._printed_while_building(True),
                       ("after\n", False))
      self.assertFalse(tqdm_utils._active)  # not switched on behind its back
      with self.assertRaises(RuntimeError):  # nor when the build fails
        with mock.patch.dict(quiet._STATE, {"quiet": True}):
          with quiet.tfds_build_output():
            raise RuntimeError("build failed")
      self.assertFalse(tqdm_utils._active)
    finally:
      tfds.enable_progress_bar()

  def test_sample_dataset_build_prints_nothing_when_quiet(self):
    data_dir = self.create_tempdir().full_path
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(quiet._STATE, {"quiet": True}), \
        contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      builder = pipelines.sample_dataset("jpeg", data_dir=data_dir)
    self.assertTrue(builder.is_prepared())
    self.assertEqual(out.getvalue(), "")
    self.assertNotIn("Generating", err.getvalue())  # no progress bars


if __name__ == "__main__":
  absltest.main()
