"""Tests of tf_hbd.evaluation.cards (a decoder's gain over its codec)."""

import json
import os

from absl.testing import absltest

from tf_hbd.codecs import legacy
from tf_hbd.data import pipelines
from tf_hbd.data import sample_images
from tf_hbd.evaluation import cards
from tf_hbd.evaluation import metrics
from tf_hbd.evaluation import systems


def _shift(img, K=None, encoded=None, ensemble=False):
  del K
  assert encoded.codec == "jpeg" and not ensemble
  return img.astype(int) + 1


class CardsTest(absltest.TestCase):

  def test_sets(self):
    jpeg = cards.card_sets("jpeg", "K", "B")
    self.assertEqual([(t, f) for t, f, _ in jpeg],
                     [("Kodak (gray)", "K")] + [("BSD68", "B")] * 3)
    self.assertEqual([p.quality for _, _, p in jpeg[1:]], [10, 20, 30])
    self.assertEqual([p.bpp for _, _, p in cards.card_sets("jp2", "K", "B")],
                     [0.37, 0.25, 0.37, 0.5])

  def test_gain_of_a_decoder_on_the_codec_output(self):
    dec = systems.LoadedDecoder("SHIFT-JPEG", "jpeg", _shift, 3, None, "-")
    imgs = [pipelines.EvalImage(n, sample_images.load_sample(n)[:48, :64])
            for n in ("camera", "coffee")]
    res = cards.gain(dec, imgs, systems.Point(quality=20), "mine")
    self.assertEqual((res["set"], res["setting"], res["images"]),
                     ("mine", "quality=20", 2))
    for img, row in zip(imgs, res["per_image"]):
      decoded, enc = legacy.roundtrip(img.gray, "jpeg", quality=20)
      self.assertEqual(row, {
          "image": img.name, "bpp": enc.bpp,
          "codec_psnr": metrics.psnr(img.gray, decoded),
          "psnr": metrics.psnr(img.gray, metrics.to_uint8(decoded + 1.0))})
    self.assertAlmostEqual(res["gain_db"], res["psnr"] - res["codec_psnr"])
    self.assertRegex(cards.gain_markdown_row(res),
                     r"^\| mine \| quality=20 \| 2 \| 0\.\d{4} \| ")

  def test_learning_curve(self):
    path = os.path.join(self.create_tempdir().full_path, "log.json")
    with open(path, "w") as f:
      json.dump({"batch_size": 100, "epochs": [
          {"epoch": 1, "step": 5000, "time_s": 1800, "val_psnr": 30.0,
           "codec_psnr": 29.5, "val_gain_db": 0.5}]}, f)
    self.assertEqual(cards.learning_curve(path).splitlines()[-1],
                     "| 1 | 5000 | 0.50 | 0.50 | 30.000 | 29.500 | +0.500 |")


if __name__ == "__main__":
  absltest.main()
