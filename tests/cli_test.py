"""End-to-end tests of the `hbd` command line with the shipped decoders."""

import contextlib
import glob
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from unittest import mock

import numpy as np
from PIL import Image
from PIL import ImageFile
from PIL import ImageOps
import tensorflow as tf

from tf_hbd import testing
from tf_hbd.inference import cli
from tf_hbd.codecs import legacy as codecs
from tf_hbd.codecs import images
from tf_hbd.evaluation import golden
from tf_hbd.evaluation import metrics
from tf_hbd.inference import numpy_serving
from tf_hbd.data import sample_images
from tf_hbd.inference import serving

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
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

  def test_enhance_ensemble_is_the_served_ensemble(self):
    data = self._jpeg(self.gray[:64, :96])
    path = self._write("small.jpg", data)
    self.assertEqual(cli.main(["enhance", path, "-o", self.out,
                               "--ensemble"]), 0)
    got = np.asarray(Image.open(os.path.join(self.out, "small.png")))
    decoded = codecs.decode(data)
    expect = numpy_serving.load_pretrained("jpeg").refine(
        decoded, source=path, ensemble=True)  # the runtime hbd picks
    self.assertAllEqual(got, expect)
    plain = serving.load_pretrained("jpeg").refine(decoded, source=path)
    self.assertGreater(np.abs(plain.astype(int) - got).max(), 0)

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
    # The golden camera crop: detailed enough that the JPEG 2000 guards let
    # the decoder act at 0.37 bpp (they return smooth crops as decoded).
    gray = golden.images()["camera"]
    enc = codecs.encode(gray, "jp2", bpp=0.37)
    path = self._write("gray.j2k", enc.data)
    self.assertEqual(cli.main(["enhance", path, "-o", self.out]), 0)
    got = np.asarray(Image.open(os.path.join(self.out, "gray.png")))
    self.assertEqual(got.shape, gray.shape)
    self.assertGreater(metrics.psnr(gray, got),
                       metrics.psnr(gray, codecs.decode(enc)))

  def test_enhance_jp2_shifts_is_the_served_shift_ensemble(self):
    gray = golden.images()["camera"]  # detailed: the guards let it act
    enc = codecs.encode(gray, "jp2", bpp=0.37)
    j2k = self._write("small.j2k", enc.data)
    data = self._jpeg(gray)
    jpg = self._write("other.jpg", data)
    self.assertEqual(cli.main(["enhance", j2k, jpg, "-o", self.out,
                               "--shifts", "2"]), 0)
    got = np.asarray(Image.open(os.path.join(self.out, "small.png")))
    decoded = codecs.decode(enc)
    model = numpy_serving.load_pretrained("jp2")  # the runtime hbd picks
    self.assertAllEqual(got, model.refine(decoded, source=j2k, shifts=2))
    self.assertGreater(np.abs(model.refine(decoded, source=j2k).astype(int)
                              - got).max(), 0)
    # JPEG files keep their own grid: refined as without --shifts.
    got = np.asarray(Image.open(os.path.join(self.out, "other.png")))
    self.assertAllEqual(got, numpy_serving.load_pretrained("jpeg").refine(
        codecs.decode(data), source=jpg))
    self.assertEqual(cli.main(["enhance", j2k, "-o", self.out, "--force",
                               "--shifts", "3"]), cli.EXIT_USAGE)

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

  def test_k_above_the_trained_k_warns_once_per_model(self):
    a = self._write("a.jpg", self._jpeg(self.gray, quality=20))
    b = self._write("b.jpg", self._jpeg(self.gray, quality=30))
    code, err = self._main("enhance", a, b, "-o", self.out, "--K", "6")
    self.assertEqual(code, 0)
    warnings_ = [l for l in err if "warning" in l]
    self.assertEqual(warnings_, [
        "hbd: warning: the shipped jpeg model was trained with K=4; --K 6 "
        "goes beyond it and can make the output worse, not better"])
    code, err = self._main("enhance", a, "-o", self.out, "--force", "--K",
                           "4")
    self.assertEqual((code, err), (0, []))

  def test_shipped_models_are_in_the_package(self):
    for codec in ("jpeg", "jp2"):
      m = serving.load_pretrained(codec)
      self.assertEqual(m.codec, codec)
      size = sum(os.path.getsize(f) for f in glob.glob(
          os.path.join(serving.pretrained_dir(codec), "**"), recursive=True)
                 if os.path.isfile(f))
      self.assertLess(size, 10 * 2**20)


  # ---- bad input and faults: one line, the documented exit code, nothing
  # lost (issue 16).

  def _main(self, *argv):
    """cli.main with stderr captured: (exit code, stderr lines)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      code = cli.main(list(argv))
    return code, err.getvalue().strip().splitlines()

  def test_two_inputs_with_one_name_are_refused_before_writing(self):
    data = self._jpeg(self.gray[:40, :40])
    os.makedirs(os.path.join(self.dir, "a"))
    os.makedirs(os.path.join(self.dir, "b"))
    a = self._write("a/x.jpg", data)
    b = self._write("b/x.jpg", data)
    code, err = self._main("enhance", a, b, "-o", self.out, "--force")
    self.assertEqual(code, cli.EXIT_USAGE)
    self.assertEqual(err, [f"hbd: error: {a} and {b} would both be written "
                           f"to {self.out}/x.png; enhance them in separate "
                           "runs with different -o folders"])
    self.assertFalse(os.path.exists(self.out))
    code, err = self._main("enhance", a, a, "-o", self.out)
    self.assertEqual(code, cli.EXIT_USAGE)
    self.assertIn("(the same file given twice)", err[0])

  def test_an_output_never_overwrites_an_input(self):
    data = self._jpeg(self.gray[:40, :40])
    path = self._write("photo.png", data)  # a JPEG named .png
    code, err = self._main("enhance", path, "-o", self.dir, "--force")
    self.assertEqual(code, cli.EXIT_USAGE)
    self.assertEqual(err, [f"hbd: error: the output of {path} would "
                           f"overwrite the input {path}; choose another -o "
                           "folder or a --suffix"])
    with open(path, "rb") as f:
      self.assertEqual(f.read(), data)
    # Another input of the same run is protected too.
    other = self._write("x.jpg", data)
    clash = self._write("x.png", data)
    code, _ = self._main("enhance", other, clash, "-o", self.dir, "--force",
                         "--suffix", "")
    self.assertEqual(code, cli.EXIT_USAGE)
    with open(clash, "rb") as f:
      self.assertEqual(f.read(), data)
    self.assertEqual(self._main("enhance", path, "-o", self.dir, "--suffix",
                                "_hbd")[0], 0)
    self.assertTrue(os.path.isfile(os.path.join(self.dir, "photo_hbd.png")))

  def _claiming(self, width, height):
    """A small real JPEG whose frame header claims width x height."""
    data = bytearray(self._jpeg(self.gray[:16, :16]))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (height.to_bytes(2, "big") +
                             width.to_bytes(2, "big"))
    return bytes(data)

  def test_size_limit_is_enforced_from_the_header_before_decoding(self):
    big = self._write("big.jpg", self._claiming(12000, 12000))
    huge = self._write("huge.jpg", self._claiming(60000, 60000))
    with mock.patch.object(ImageFile.ImageFile, "load",
                           side_effect=AssertionError("pixels decoded")):
      code, err = self._main("enhance", big, huge, "-o", self.out)
      self.assertEqual(code, cli.EXIT_FAILED)
      self.assertRegex(err[0], r"^\[1/2\] .*big.jpg: error: .*big.jpg: the "
                       r"header claims 12000x12000 = 144000000 pixels, over "
                       r"the limit of 120000000 pixels; not decoded")
      self.assertRegex(err[1], r"^\[2/2\] .*huge.jpg: error: .*60000x60000")
      code, err = self._main("info", huge)
      self.assertEqual(code, cli.EXIT_FAILED)
      self.assertLen(err, 1)
      self.assertRegex(err[0], r"huge.jpg: error: .*60000x60000 = "
                       r"3600000000 pixels, over the limit")
    self.assertFalse(os.listdir(self.out))
    # The limit is the exported graphs' limit.
    from tf_hbd.inference import graph_refine  # pylint: disable=g-import-not-at-top
    self.assertEqual(cli.MAX_PIXELS, graph_refine.DEFAULT_MAX_PIXELS)

  def test_info_reports_truncated_and_corrupt_files(self):
    full = self._jpeg(self.gray)
    truncated = self._write("truncated.jpg", full[:len(full) // 2])
    corrupt = bytearray(full)
    sos = corrupt.index(b"\xff\xda")
    corrupt[sos + 2:sos + 4] = b"\x00\x01"  # an impossible scan header
    bad = self._write("corrupt.jpg", bytes(corrupt))
    for path in (truncated, bad):
      code, err = self._main("info", path)
      self.assertEqual(code, cli.EXIT_FAILED, msg=path)
      self.assertLen(err, 1)
      self.assertRegex(err[0], "^" + re.escape(path) + r": error: cannot "
                       r"read image .*corrupt or truncated jpeg file")
    code, err = self._main("info", self.dir)
    self.assertEqual(code, cli.EXIT_FAILED)
    self.assertEqual(err, [f"{self.dir}: error: cannot read image "
                           f"'{self.dir}': is a directory, not an image file "
                           "(pass the files, e.g. DIR/*.jpg)"])
    code, err = self._main("enhance", self.dir, "-o", self.out)
    self.assertEqual(code, cli.EXIT_FAILED)
    self.assertIn("is a directory", err[0])

  def test_exif_orientation_is_applied_to_the_output(self):
    crop = self.gray[:48, :80]
    plain = self._write("plain.jpg", self._jpeg(crop))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="JPEG", quality=20, exif=exif)
    rotated = self._write("rotated.jpg", buf.getvalue())
    self.assertEqual(cli.file_info(rotated)["orientation"], 6)
    self.assertEqual(self._main("enhance", plain, rotated, "-o", self.out)[0],
                     0)
    got_plain = np.asarray(Image.open(os.path.join(self.out, "plain.png")))
    got = Image.open(os.path.join(self.out, "rotated.png"))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(rotated)))
    self.assertEqual(np.asarray(got).shape, shown.shape)  # (80, 48)
    # Refined in the stored orientation (the JPEG block grid), then turned.
    self.assertAllEqual(np.asarray(got), np.rot90(got_plain, k=-1))
    self.assertEqual(got.getexif().get(0x0112), None)

  def test_rgba_jp2_keeps_its_alpha(self):
    rgba = np.concatenate([self.rgb[:64, :64],
                           np.tile(np.arange(64, dtype=np.uint8)[None, :, None]
                                   * 4, (64, 1, 1))], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="JPEG2000",
                                       quality_mode="rates",
                                       quality_layers=[20])
    path = self._write("alpha.jp2", buf.getvalue())
    self.assertEqual(self._main("enhance", path, "-o", self.out)[0], 0)
    got = Image.open(os.path.join(self.out, "alpha.png"))
    self.assertEqual(got.mode, "RGBA")
    decoded_alpha = np.asarray(Image.open(path).getchannel("A"))
    self.assertAllEqual(np.asarray(got.getchannel("A")), decoded_alpha)

  def test_outputs_get_normal_permissions(self):
    path = self._write("p.jpg", self._jpeg(self.gray[:16, :16]))
    old = os.umask(0o022)
    try:
      self.assertEqual(self._main("enhance", path, "-o", self.out)[0], 0)
      os.umask(0o027)
      self.assertEqual(self._main("enhance", path, "-o", self.out,
                                  "--suffix", "_b")[0], 0)
    finally:
      os.umask(old)
    mode = lambda name: stat.S_IMODE(os.stat(os.path.join(self.out,
                                                          name)).st_mode)
    self.assertEqual(mode("p.png"), 0o644)
    self.assertEqual(mode("p_b.png"), 0o640)

  def test_model_for_the_other_codec_is_refused(self):
    path = self._write("q.jpg", self._jpeg(self.gray[:32, :32]))
    jp2_model = serving.pretrained_dir("jp2")
    code, err = self._main("enhance", path, "-o", self.out, "--model",
                           jp2_model)
    self.assertEqual(code, cli.EXIT_FAILED)
    self.assertEqual(err[0], f"[1/1] {path}: error: --model {jp2_model} was "
                     "trained for jp2 files, this is a jpeg file; use a jpeg "
                     "model or leave out --model")
    self.assertFalse(os.listdir(self.out))
    code, err = self._main("enhance", path, "-o", self.out, "--model",
                           os.path.join(self.dir, "no_model"))
    self.assertEqual(code, cli.EXIT_USAGE)
    self.assertEqual(err, [f"hbd: error: --model {self.dir}/no_model: no "
                           "such directory"])

  def test_runtime_flag_numpy_and_tf_agree(self):
    data = self._jpeg(self.gray[:64, :96])
    path = self._write("r.jpg", data)
    outs = {}
    for runtime in ("auto", "numpy", "tf"):
      out_dir = os.path.join(self.dir, runtime)
      self.assertEqual(cli.main(["enhance", path, "-o", out_dir,
                                 "--runtime", runtime]), 0)
      outs[runtime] = np.asarray(Image.open(os.path.join(out_dir, "r.png")),
                                 np.int32)
    self.assertAllEqual(outs["auto"], outs["numpy"])
    self.assertLessEqual(np.abs(outs["numpy"] - outs["tf"]).max(), 1)
    # A model without the NumPy runtime: --runtime numpy is a per-file error.
    model = os.path.join(self.dir, "tf_only")
    shutil.copytree(serving.pretrained_dir("jpeg"), model)
    os.remove(os.path.join(model, numpy_serving.RUNTIME_FILE))
    code, err = self._main("enhance", path, "-o", self.out, "--model", model,
                           "--runtime", "numpy")
    self.assertEqual(code, cli.EXIT_FAILED)
    self.assertEqual(err[0], f"[1/1] {path}: error: model {model} has no "
                     "NumPy runtime (no hbd_numpy.json); use the TensorFlow "
                     "runtime (--runtime tf)")
    self.assertFalse(os.listdir(self.out))
    self.assertEqual(self._main("enhance", path, "-o", self.out, "--model",
                                model)[0], 0)  # auto: TensorFlow

  def test_unusable_output_folder_and_bad_k_are_usage_errors(self):
    path = self._write("q.jpg", self._jpeg(self.gray[:16, :16]))
    a_file = self._write("a_file", b"x")
    cases = [
        (["-o", a_file], f"hbd: error: -o {a_file} is a file, not a folder; "
         "give a folder (it is created if missing)"),
        (["-o", ""], "hbd: error: -o is empty; give an output folder"),
        (["-o", os.path.join(a_file, "sub")], f"hbd: error: -o "
         f"{a_file}/sub: cannot create the folder (Not a directory)"),
        (["-o", self.out, "--K", "1000"], "hbd: error: --K must be between 1 "
         "and 32 (got 1000); the shipped models are trained with K=4"),
    ]
    for extra, message in cases:
      code, err = self._main("enhance", path, *extra)
      self.assertEqual((code, err), (cli.EXIT_USAGE, [message]))
    if os.geteuid() != 0:  # root writes anywhere
      locked = os.path.join(self.dir, "locked")
      os.mkdir(locked, 0o500)
      code, err = self._main("enhance", path, "-o", locked)
      self.assertEqual(code, cli.EXIT_USAGE)
      self.assertIn("folder is not writable", err[0])

  def test_ctrl_c_quiet_one_line_exit_130_no_partial_file(self):
    data = self._jpeg(self.gray)
    # Far more work than the signal takes to arrive, even under load.
    paths = [self._write(f"img{i:03d}.jpg", data) for i in range(400)]
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # hbd is quiet by itself
    env["PYTHONPATH"] = _ROOT + os.pathsep + env.get("PYTHONPATH", "")
    # SIGINT delivered even when the suite runs in the background, where
    # the shell sets it to ignored for children.
    child = testing.popen_with_terminal_sigint(
        [sys.executable, "-m", "tf_hbd.inference.cli", "enhance", *paths, "-o",
         self.out], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    first = child.stdout.readline()
    self.assertRegex(first, r"^\[1/400\] .*img000.jpg \(jpeg, 320x256\) -> ")
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    self.assertEqual(child.returncode, cli.EXIT_INTERRUPTED, msg=err)
    self.assertEqual(err.strip().splitlines(), [
        "hbd: interrupted; the outputs reported above are complete, no "
        "partial file is left"])
    for name in os.listdir(self.out):  # complete PNGs only
      self.assertRegex(name, r"^img\d\d\d\.png$")
      Image.open(os.path.join(self.out, name)).load()


if __name__ == "__main__":
  tf.test.main()
