"""Tests of tf_hbd.evaluation.systems' spec parsing (the rest: tests/)."""

import os

from absl.testing import absltest
import numpy as np

from tf_hbd.evaluation import study
from tf_hbd.evaluation import systems


class SplitLabelTest(absltest.TestCase):

  def test_label_and_path(self):
    self.assertEqual(systems.split_label("runs/bptt"), ("", "runs/bptt"))
    self.assertEqual(systems.split_label("BPTT=runs/bptt"),
                     ("BPTT", "runs/bptt"))
    # The last "=" separates (labels cannot hold one; paths rarely do).
    self.assertEqual(systems.split_label("a=b=c"), ("a=b", "c"))

  def test_dataset_specs_use_it(self):
    spec = study.parse_dataset("mine=/x/photos")
    self.assertEqual((spec.name, spec.path), ("mine", "/x/photos"))
    spec = study.parse_dataset("/data/Kodak/")
    self.assertEqual((spec.name, spec.path), ("kodak", "/data/Kodak/"))
    self.assertEqual(spec.bpp, systems.BENCHMARKS["kodak"].bpp)


class LoadEvalImagesTest(absltest.TestCase):

  def test_sample_split_named_by_stem(self):
    from tf_hbd.data import sample_images  # pylint: disable=g-import-not-at-top
    (im,) = systems.load_eval_images("sample:test", max_side=32, limit=1)
    first = sample_images.sample_names("test")[0]
    self.assertEqual(im.name, os.path.splitext(os.path.basename(
        sample_images.sample_path(first)))[0])
    self.assertEqual(im.gray.dtype, np.uint8)
    self.assertLessEqual(max(im.gray.shape), 32)
    self.assertEqual(len(systems.load_eval_images("sample:test", limit=0)),
                     len(sample_images.sample_names("test")))


if __name__ == "__main__":
  absltest.main()
