"""The data root comes from a flag or $TF_HBD_DATA, never from a guess."""

import os
from unittest import mock

from absl.testing import absltest

from tf_hbd import errors
from tf_hbd.data import roots


class RootsTest(absltest.TestCase):

  def test_flag_then_environment_then_none(self):
    with mock.patch.dict(os.environ, {roots.ENV: "/env"}):
      self.assertEqual(roots.data_root("/flag"), "/flag")
      self.assertEqual(roots.data_root(""), "/env")
      self.assertEqual(roots.data_root(None), "/env")
    with mock.patch.dict(os.environ, clear=True):
      self.assertIsNone(roots.data_root(""))

  def test_fill_needs_a_root_only_where_the_text_names_one(self):
    self.assertEqual(roots.fill("{data}/kodak", "/d"), "/d/kodak")
    self.assertEqual(roots.fill("sample:test", None), "sample:test")
    with self.assertRaisesRegex(errors.UsageError,
                                r"--data_root=DIR .* \$TF_HBD_DATA"):
      roots.fill("kodak={data}/kodak", None)

  def test_scripts_default(self):
    with mock.patch.dict(os.environ, clear=True):
      self.assertEqual(roots.with_default(["--a=1"], "../d"),
                       ["--a=1", "--data_root=../d"])
      self.assertEqual(roots.with_default(["--data_root=/x"], "../d"),
                       ["--data_root=/x"])
      self.assertEqual(roots.with_default(["--data_root", "/x"], "../d"),
                       ["--data_root", "/x"])
    with mock.patch.dict(os.environ, {roots.ENV: "/env"}):
      self.assertEqual(roots.with_default([], "../d"), [])

  def test_split_label(self):
    self.assertEqual(roots.split_label("runs/bptt"), ("", "runs/bptt"))
    self.assertEqual(roots.split_label("BPTT=runs/bptt"),
                     ("BPTT", "runs/bptt"))
    self.assertEqual(roots.split_label("a=b=c"), ("a=b", "c"))


if __name__ == "__main__":
  absltest.main()
