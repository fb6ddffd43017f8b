"""scripts/baseline_campaign.py, scripts/rd_baselines.py,
scripts/ship_baselines.py and scripts/goog_tables.py as commands."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from PIL import Image

from tf_hbd.baselines import campaign
from tf_hbd.codecs import legacy
from tf_hbd.data import sample_images

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  return subprocess.run(
      [sys.executable, os.path.join(REPO, "scripts", name), *args], env=env,
      capture_output=True, text=True, timeout=600, check=False)


def _folder(root, name):
  path = os.path.join(root, name)
  os.makedirs(path)
  Image.fromarray(sample_images.load_sample("camera")[:64, :96]).save(
      os.path.join(path, "camera.png"))
  return path


class BaselineScriptsTest(absltest.TestCase):

  def test_campaign_status_and_refused_training_folder(self):
    tmp = self.create_tempdir().full_path
    train, val = _folder(tmp, "train"), _folder(tmp, "val")
    root = os.path.join(tmp, "campaign")
    proc = _script("baseline_campaign.py", f"--root={root}", "--status",
                   f"--train_dir={train}", f"--val_dir={val}",
                   "--only=goog")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn("goog: new", proc.stdout)
    proc = _script("baseline_campaign.py", f"--root={root}", "--status",
                   f"--train_dir={_folder(tmp, 'kodak')}",
                   f"--val_dir={val}")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertRegex(proc.stderr, r"error: .*kodak")
    proc = _script("baseline_campaign.py", f"--root={root}", "--status",
                   f"--train_dir={train}", f"--val_dir={val}",
                   "--goog_iterations=4", "--goog_loss_weights=4,4,4,1,1")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertRegex(proc.stderr, r"^error: loss weights .*1\.\.4")
    self.assertLen(proc.stderr.strip().splitlines(), 1)

  def test_campaign_goog_flags_reach_the_settings(self):
    # the GOOG flags become `campaign.run_campaign` settings; without them
    # the settings and the rate are the shipped model's (Toderici's loss)
    code = ("import importlib.util, json, sys\n"
            "from absl import flags\n"
            "spec = importlib.util.spec_from_file_location('bc', sys.argv[1])\n"
            "m = importlib.util.module_from_spec(spec)\n"
            "spec.loader.exec_module(m)\n"
            "flags.FLAGS(sys.argv[1:])\n"
            "print(json.dumps([m._goog_settings(),\n"
            "                  m._GOOG_LEARNING_RATE.value]))\n")
    script = os.path.join(REPO, "scripts", "baseline_campaign.py")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    settings = lambda *args: json.loads(subprocess.run(
        [sys.executable, "-c", code, script, "--root=r", *args], env=env,
        capture_output=True, text=True, timeout=600,
        check=True).stdout.splitlines()[-1])
    goog = [r for r in campaign.default_plan() if r.family == "goog"]
    self.assertEqual(settings(), [{}, goog[0].learning_rate])
    self.assertEqual(
        settings("--goog_iterations=8", "--goog_loss_norm=l2",
                 "--goog_loss_weights=4,4,4,1", "--goog_learning_rate=2e-4"),
        [{"goog_iterations": 8, "goog_loss_norm": "l2",
          "goog_loss_weights": "4,4,4,1"}, 2e-4])

  def test_campaign_quiet_by_default_and_snapshot_outside_root(self):
    root = self.create_tempdir().full_path
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the script is quiet by itself
    run = lambda *args: subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "baseline_campaign.py"),
         f"--root={root}", *args], env=env, capture_output=True, text=True,
        timeout=600, check=False)
    proc = run(f"--snapshot={os.path.join(root, 'snaps')}")
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    self.assertRegex(proc.stderr, r"^error: .*inside the campaign folder")
    self.assertLen(proc.stderr.strip().splitlines(), 1)  # no TF log lines
    proc = run("--status", "--only=goog", "--verbose")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn("goog: new", proc.stdout)
    self.assertRegex(proc.stderr, r"tensorflow/")  # TF's C++ log lines

  def test_rd_table_of_one_image(self):
    tmp = self.create_tempdir().full_path
    out = os.path.join(tmp, "rd.json")
    proc = _script("rd_baselines.py", f"--images={_folder(tmp, 'imgs')}",
                   "--goog_iterations=1,2", "--e2e_models=", "--targets=",
                   "--classical=jpeg", "--jpeg_qualities=5,50",
                   f"--out={out}")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertIn("| goog k=2 | ", proc.stdout)
    with open(out) as f:
      doc = json.load(f)
    self.assertEqual([(r["setting"], r["codec"]) for r in doc["records"]],
                     [("goog k=1", "goog"), ("goog k=1", "jpeg"),
                      ("goog k=2", "goog"), ("goog k=2", "jpeg"),
                      ("jpeg q=5", "jpeg"), ("jpeg q=50", "jpeg")])
    self.assertEqual([r["iterations"] for r in doc["records"][:4:2]], [1, 2])
    gray = sample_images.load_sample("camera")[:64, :96]
    for neural, jpeg in zip(doc["records"][:4:2], doc["records"][1:4:2]):
      # JPEG at the neural file's rate on this image (its smallest file
      # when even quality 1 is larger, as on so small an image).
      _, enc = legacy.roundtrip(gray, "jpeg", bpp=neural["bpp"])
      self.assertEqual(jpeg["bpp"], enc.bpp)
    for ref, quality in zip(doc["records"][4:], (5, 50)):
      self.assertEqual(ref["bpp"], legacy.encode(gray, "jpeg",
                                                 quality=quality).bpp)
    # The same tables again from the stored records, nothing encoded.
    out_dir = os.path.join(tmp, "again")
    proc = _script("rd_baselines.py", f"--from_records={out}",
                   f"--out_dir={out_dir}")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    with open(os.path.join(out_dir, "records.json")) as f:
      again = json.load(f)
    self.assertEqual(again["at_rate"], doc["at_rate"])
    self.assertEqual(again["records"], doc["records"])
    self.assertTrue(os.path.exists(os.path.join(out_dir, "jpeg.json")))
    proc = _script("rd_baselines.py", f"--from_records={tmp}/nothing.json")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertRegex(proc.stderr, r"^rd_baselines.py: .*nothing.json: .*\n$")
    # A record without its rate: the same one line, not a traceback.
    del doc["records"][-1]["bpp"]
    with open(os.path.join(tmp, "partial.json"), "w") as f:
      json.dump(doc, f)
    proc = _script("rd_baselines.py", f"--from_records={tmp}/partial.json")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertRegex(proc.stderr, r"^rd_baselines.py: .*partial.json: .*'bpp'.*"
                     r"rerun with --images\n$")

  def test_goog_tables_exports_an_entropy_coding_model(self):
    tmp = self.create_tempdir().full_path
    snapshot = os.path.join(REPO, "campaigns", "baselines", "goog")
    out = os.path.join(tmp, "out", "goog")
    proc = _script("goog_tables.py", f"--model={snapshot}",
                   f"--fit_dir={_folder(tmp, 'kodak')}", f"--out={out}")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertRegex(proc.stderr, r"^goog_tables: .*kodak.*\n$")
    proc = _script("goog_tables.py", f"--model={snapshot}",
                   f"--fit_dir={_folder(tmp, 'train')}", f"--out={out}")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
    codec = goog.GoogCodec(out)
    self.assertIsNotNone(codec.bit_tables)
    image = sample_images.load_sample("camera")[200:264, 100:196]
    # (Tables fitted on one small image: forced, as they may not pay.)
    data = codec.pack(image.shape, codec.codes(image, 2), entropy_coded=True)
    self.assertEqual(len(codec.unpack(data).params), 2)
    self.assertEqual(codec.decompress(data).tobytes(),
                     codec.reconstruct(image, 2).tobytes())
    proc = _script("goog_tables.py", f"--model={snapshot}",
                   f"--fit_dir={os.path.join(tmp, 'train')}", f"--out={out}")
    self.assertEqual(proc.returncode, 2, proc.stdout)
    self.assertIn("exists", proc.stderr)

  def test_ship_goog_with_tables_in_float16(self):
    tmp = self.create_tempdir().full_path
    snapshot = os.path.join(REPO, "campaigns", "baselines", "goog")
    dest = os.path.join(tmp, "pretrained")
    held_out = f"--fit_dir={_folder(tmp, 'kodak')}"
    for script, extra in (("ship_baselines.py", f"--dest={dest}"),
                          ("rd_baselines.py", f"--images={tmp}")):
      proc = _script(script, f"--models={snapshot}", held_out, extra)
      self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
      self.assertRegex(proc.stderr, r"^[^\n]*kodak is a validation/test "
                       r"set[^\n]*\n$")
    self.assertFalse(os.path.exists(dest))
    proc = _script("ship_baselines.py", f"--models={snapshot}",
                   f"--dest={dest}", f"--fit_dir={_folder(tmp, 'train')}")
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    self.assertNotIn("warning", proc.stdout + proc.stderr)
    with open(os.path.join(dest, "goog", "MODEL.md"), encoding="utf-8") as f:
      text = f.read()
    self.assertIn("**entropy coded**", text)
    self.assertIn(f"fitted on 1 images of {os.path.join(tmp, 'train')}", text)
    self.assertIn("convolution kernels in float16", text)
    from tf_hbd.baselines import folders  # pylint: disable=g-import-not-at-top
    self.assertEqual(folders.stored_weights(os.path.join(dest, "goog")),
                     "float16")

  def test_ship_refuses_a_folder_without_models(self):
    tmp = self.create_tempdir().full_path
    dest = os.path.join(tmp, "pretrained")
    proc = _script("ship_baselines.py", f"--models={tmp}", f"--dest={dest}")
    self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
    self.assertIn("error: no trained baseline model in", proc.stderr)
    self.assertFalse(os.path.exists(dest))


if __name__ == "__main__":
  absltest.main()
