"""Tests of tf_hbd.evaluation.systems: registry, operating points, `evaluate`
(end to end through scripts/evaluate.py: tests/evaluate_test.py)."""

import os

from absl.testing import absltest
import numpy as np

from tf_hbd.codecs import legacy
from tf_hbd.data import pipelines
from tf_hbd.data import sample_images
from tf_hbd.evaluation import metrics
from tf_hbd.evaluation import study
from tf_hbd.evaluation import systems


class SplitLabelTest(absltest.TestCase):

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


def _images():
  return [pipelines.EvalImage(name, sample_images.load_sample(name)[
      32:96, 40:120]) for name in ("camera", "coffee")]


class RegistryAndPointTest(absltest.TestCase):

  def test_registered_systems(self):
    self.assertContainsSubset({"jpeg", "jp2", "goog", "e2e", "at_rate_of"},
                              set(systems.SYSTEMS))
    self.assertEqual(systems.make_system("jp2").name, "JPEG 2000")
    self.assertEqual(systems.make_system("e2e").name, "E2E (Neural)")
    with self.assertRaisesRegex(ValueError, "unknown system 'x'"):
      systems.make_system("x")
    with self.assertRaisesRegex(ValueError, "registered twice"):
      systems.register_system("jpeg")(systems.codec_system)

  def test_points(self):
    self.assertEqual(systems.as_point(0.3), systems.Point(bpp=0.3))
    self.assertEqual(systems.as_point(None), systems.Point())
    self.assertEqual(systems.Point(bpp=0.3).row_fields(), {"target_bpp": 0.3})
    self.assertEqual(systems.Point(quality=20).codec_kwargs(),
                     {"quality": 20})
    self.assertEqual(systems.Point().row_fields(), {})
    with self.assertRaisesRegex(ValueError, "not both"):
      systems.Point(bpp=0.3, quality=20)
    with self.assertRaisesRegex(ValueError, "at_rate_of"):
      systems.Point().codec_kwargs()


class EvaluateTest(absltest.TestCase):

  def test_codec_at_a_quality(self):
    imgs = _images()
    res = systems.evaluate(imgs, [systems.make_system("jpeg")],
                           [systems.Point(quality=30)])
    for img, row in zip(imgs, res["JPEG"]):
      decoded, enc = legacy.roundtrip(img.gray, "jpeg", quality=30)
      self.assertEqual(row["quality"], 30)
      self.assertNotIn("target_bpp", row)
      self.assertEqual(row["bpp"], enc.bpp)
      self.assertEqual(row["psnr"], metrics.psnr(img.gray, decoded))
    summary = systems.summarize(res["JPEG"])
    self.assertLen(summary["psnr"], 1)
    self.assertEqual(summary["bpp"][0], np.mean([r["bpp"] for r in
                                                 res["JPEG"]]))

  def test_codec_at_the_rate_of_another_system(self):
    rates = {"camera": 0.45, "coffee": 0.8}

    def reference(image, point, cache, key):
      del cache
      self.assertEqual(point, systems.Point())
      return image // 2 * 2, rates[key], {"note": key}

    seen = []
    plan = [systems.System("ref", "a fixed rate per image", reference),
            systems.make_system("at_rate_of", codec="jp2", reference="ref",
                                name="jp2 at ref")]
    res = systems.evaluate(
        _images(), plan, [None], measure=lambda a, b: {"psnr": 1.0},
        on_image=lambda name, point, rows: seen.append((name, list(rows))))
    self.assertEqual(seen, [("camera", ["ref", "jp2 at ref"]),
                            ("coffee", ["ref", "jp2 at ref"])])
    for row in res["ref"]:
      self.assertEqual((row["bpp"], row["note"]),
                       (rates[row["image"]], row["image"]))
    for img, row in zip(_images(), res["jp2 at ref"]):
      _, enc = legacy.roundtrip(img.gray, "jp2", bpp=rates[img.name])
      self.assertEqual(row["bpp"], enc.bpp)
      self.assertLessEqual(row["bpp"], rates[img.name])  # never above it
      self.assertEqual(row["psnr"], 1.0)
    with self.assertRaisesRegex(ValueError, "has not run on"):
      systems.evaluate(_images(), plan[::-1], [None])

  def test_names_must_be_unique(self):
    with self.assertRaisesRegex(ValueError, "unique"):
      systems.evaluate(_images(), [systems.make_system("jpeg")] * 2, [0.5])


if __name__ == "__main__":
  absltest.main()
