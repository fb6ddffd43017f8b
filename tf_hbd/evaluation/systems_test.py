"""Tests of tf_hbd.evaluation.systems' spec parsing (the rest: tests/)."""

from absl.testing import absltest

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


if __name__ == "__main__":
  absltest.main()
