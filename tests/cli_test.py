"""End-to-end tests of the `hbd` command line with the shipped decoders."""

import glob
import io
import os

import numpy as np
from PIL import Image
import tensorflow as tf

from tf_hbd import cli
from tf_hbd import codecs
from tf_hbd import images
from tf_hbd import metrics
from tf_hbd import sample_images
from tf_hbd import serving

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _real_rgb():
  """A real colour photograph: Kodak if present, else scikit-image's."""
  files = sorted(glob.glob(os.path.join(SHARED, "kodak", "*.png")))
  path = files[0] if files else sample_images.sample_path("astronaut")
  rgb = np.asarray(Image.open(path).convert("RGB"))
  return rgb[:256, :320]


class CliTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.rgb = _real_rgb()
    cls.gray = np.asarray(Image.fromarray(cls.rgb).convert("L"))

  def setUp(self):
    super().setUp()
    self.dir = self.create_tempdir().full_path
    self.out = os.path.join(self.dir, "out")

  def _write(self, name, data):
    path = os.path.join(self.dir, name)
    with open(path, "wb") as f:
      f.write(data)
    return path

  def _jpeg(self, array, quality=20):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

  def test_enhance_gray_jpeg_improves_psnr(self):
    data = self._jpeg(self.gray)
    path = self._write("gray.jpg", data)
    self.assertEqual(cli.main(["enhance", path, "-o", self.out]), 0)
    got = np.asarray(Image.open(os.path.join(self.out, "gray.png")))
    self.assertEqual(got.shape, self.gray.shape)
    decoded = codecs.decode(data)
    self.assertGreater(metrics.psnr(self.gray, got),
                       metrics.psnr(self.gray, decoded))

  def test_enhance_colour_jpeg_refines_luma_keeps_size(self):
    data = self._jpeg(self.rgb)
    path = self._write("colour.jpg", data)
    self.assertEqual(cli.main(["enhance", path, "-o", self.out]), 0)
    out = Image.open(os.path.join(self.out, "colour.png"))
    self.assertEqual(out.mode, "RGB")
    self.assertEqual(out.size, (self.rgb.shape[1], self.rgb.shape[0]))
    ref_y = np.asarray(Image.fromarray(self.rgb).convert("YCbCr"))[..., 0]
    dec_y = np.asarray(Image.open(io.BytesIO(data)).convert("YCbCr"))[..., 0]
    got_y = np.asarray(out.convert("YCbCr"))[..., 0]
    self.assertGreater(metrics.psnr(ref_y, got_y), metrics.psnr(ref_y, dec_y))

  def test_enhance_jp2_improves_psnr(self):
    enc = codecs.encode(self.gray, "jp2", bpp=0.37)
    path = self._write("gray.j2k", enc.data)
    self.assertEqual(cli.main(["enhance", path, "-o", self.out]), 0)
    got = np.asarray(Image.open(os.path.join(self.out, "gray.png")))
    self.assertEqual(got.shape, self.gray.shape)
    self.assertGreater(metrics.psnr(self.gray, got),
                       metrics.psnr(self.gray, codecs.decode(enc)))

  def test_bad_files_fail_alone_and_leave_no_partial_output(self):
    good = self._write("good.jpg", self._jpeg(self.gray[:40, :40]))
    full = self._jpeg(self.gray)
    bad = {
        "missing.jpg": None,
        "empty.jpg": b"",
        "text.jpg": b"not an image\n" * 20,
        "truncated.jpg": full[: len(full) // 3],
        "random.j2k": b"\xff\x4f\xff\x51" + os.urandom(300),
        "picture.png": self._png(),
    }
    paths = []
    for name, data in bad.items():
      paths.append(os.path.join(self.dir, name) if data is None
                   else self._write(name, data))
    code = cli.main(["enhance", *paths, good, "-o", self.out])
    self.assertEqual(code, 1)
    self.assertEqual(sorted(os.listdir(self.out)), ["good.png"])
    # An existing output is not overwritten without --force.
    self.assertEqual(cli.main(["enhance", good, "-o", self.out]), 1)
    self.assertEqual(cli.main(["enhance", good, "-o", self.out, "--force"]), 0)

  def _png(self):
    buf = io.BytesIO()
    Image.fromarray(self.gray[:16, :16]).save(buf, format="PNG")
    return buf.getvalue()

  def test_tiny_image(self):
    path = self._write("one.jpg", self._jpeg(np.full((1, 1), 90, np.uint8)))
    self.assertEqual(cli.main(["enhance", path, "-o", self.out]), 0)
    self.assertEqual(
        np.asarray(Image.open(os.path.join(self.out, "one.png"))).shape, (1, 1))

  def test_info_and_usage(self):
    path = self._write("q.jpg", self._jpeg(self.gray, quality=35))
    info = cli.file_info(path)
    self.assertEqual(info["codec"], "jpeg")
    self.assertEqual((info["height"], info["width"]), self.gray.shape)
    self.assertAlmostEqual(info["bpp"], 8 * os.path.getsize(path) /
                           self.gray.size)
    self.assertEqual(info["jpeg_quality_estimate"], 35)
    self.assertEqual(cli.main(["info", path]), 0)
    self.assertEqual(cli.main(["info", os.path.join(self.dir, "nope")]), 1)
    self.assertEqual(cli.main([]), 2)
    self.assertEqual(cli.main(["enhance", path]), 2)  # no -o
    self.assertEqual(cli.main(["enhance", path, "-o", self.out, "--K", "0"]),
                     2)

  def test_shipped_models_are_in_the_package(self):
    for codec in ("jpeg", "jp2"):
      m = serving.load_pretrained(codec)
      self.assertEqual(m.codec, codec)
      size = sum(os.path.getsize(f) for f in glob.glob(
          os.path.join(serving.pretrained_dir(codec), "**"), recursive=True)
                 if os.path.isfile(f))
      self.assertLess(size, 10 * 2**20)


if __name__ == "__main__":
  tf.test.main()
