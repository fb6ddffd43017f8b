"""Tests of train.py's flag checks and exit codes (tf_hbd.training.flag_checks)."""

import io
import os
import contextlib

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

from tf_hbd import errors
from tf_hbd.training import flag_checks


def _good(**over):
  values = {"units": 8, "K": 4, "batch_size": 16, "epochs": 1, "lr": 1e-3,
            "momentum": 0.9, "model_dir": "/tmp/hbd_model", "dataset": "sample",
            "val_images": "", "data_dir": None, "steps_per_epoch": 0,
            "val_K": 0, "clip_norm": 13.0}
  values.update(over)
  return values


class ValidateTrainFlagsTest(parameterized.TestCase):

  def test_good_values_pass(self):
    flag_checks.validate_train_flags(_good())
    flag_checks.validate_train_flags(_good(
        codec="jp2", dataset="recompress:sample", grid_offset=True,
        loss_norm="log_ratio", loss_norm_scope="image", loss_norm_eps=0.5))
    flag_checks.validate_train_flags({})  # flags absent: nothing to check

  @parameterized.parameters(
      ({"units": 0}, r"^--units=0: must be at least 1$"),
      ({"K": 0}, r"^--K=0: must be at least 1$"),
      ({"K": 1000}, r"^--K=1000: at most 64 refinement steps"),
      ({"batch_size": 0}, r"^--batch_size=0: must be at least 1$"),
      ({"steps_per_epoch": -1}, r"^--steps_per_epoch=-1: must be 0 or more$"),
      ({"lr": 0.0}, r"^--lr=0.0: must be positive$"),
      ({"momentum": 1.0}, r"^--momentum=1.0: must be below 1$"),
      ({"model_dir": ""}, r"^--model_dir is empty"),
      ({"model_dir": "  "}, r"^--model_dir is empty"),
      ({"dataset": "folder:/no/such/dir"},
       r"^--dataset=folder:/no/such/dir: no such file or folder$"),
      ({"val_images": "/no/such/dir"},
       r"^--val_images=/no/such/dir: no such file or folder$"),
      ({"data_dir": "/no/such/dir"}, r"^--data_dir=/no/such/dir: no such"),
      ({"jp2_bpp": "1-0.5"}, r"^--jp2_bpp=1-0.5: bad JPEG 2000 rate range"),
      ({"jp2_bpp": "0.3"}, r"^--jp2_bpp=0.3: bad JPEG 2000 rate range .*"
                           r"LOW-HIGH"),
      ({"jpeg_qualities": "0.5:40-5"},
       r"^--jpeg_qualities=0.5:40-5: bad quality mixture component"),
      ({"loss_norm_eps": 0.0}, r"^--loss_norm_eps=0.0: must be positive$"),
      ({"loss_norm": "ratio", "loss_form": "paper"},
       r"^--loss_norm=ratio is a batch mean"),
      ({"loss_norm": "log_ratio", "loss_norm_scope": "image"},
       r"^--loss_norm_scope=image needs --dataset=recompress:"),
      ({"grid_offset": True, "codec": "jpeg"},
       r"^--grid_offset is for --codec=jp2"),
      ({"grid_offset": True, "codec": "jp2"},
       r"^--grid_offset needs --dataset=recompress:"),
      ({"dataset": ""}, r"^--dataset is empty"),
      ({"dataset": "/no/such/dir"}, r"^--dataset=/no/such/dir: no such "
       r"folder or dataset; a folder of images is given as "
       r"--dataset=folder:<path>"),
      ({"dataset": "recompress:sample,/no/such"},
       r"^--dataset=recompress:sample,/no/such: /no/such: no such file"),
  )
  def test_bad_value_names_the_flag(self, over, pattern):
    with self.assertRaisesRegex(errors.UsageError, pattern):
      flag_checks.validate_train_flags(_good(**over))

  def test_model_dir_that_is_a_file_and_folder_without_images(self):
    tmp = self.create_tempdir().full_path
    path = os.path.join(tmp, "file")
    with open(path, "w") as f:
      f.write("x")
    with self.assertRaisesRegex(errors.UsageError, r"is a file; give a folder"):
      flag_checks.validate_train_flags(_good(model_dir=path))
    empty = os.path.join(tmp, "empty")
    os.mkdir(empty)
    with self.assertRaisesRegex(errors.UsageError, r"no image files found"):
      flag_checks.validate_train_flags(_good(dataset=f"folder:{empty}"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(
        os.path.join(empty, "a.png"))
    flag_checks.validate_train_flags(_good(dataset=f"folder:{empty}"))

  def test_dataset_folder_needs_its_prefix_unless_a_prepared_dataset(self):
    folder = self.create_tempdir().full_path
    with self.assertRaisesRegex(
        errors.UsageError, f"^--dataset={folder}: a folder of images needs "
        f"its prefix: --dataset=folder:{folder} "):
      flag_checks.validate_train_flags(_good(dataset=folder))
    with open(os.path.join(folder, "dataset_info.json"), "w") as f:
      f.write("{}")  # a prepared TFDS dataset's folder: load_builder's
    flag_checks.validate_train_flags(_good(dataset=folder))
    flag_checks.validate_train_flags(_good(dataset="sample_patches/jpeg"))

  def test_dataset_name_that_is_also_a_folder_goes_to_tfds(self):
    # Run from a TFDS data dir: `sample_patches/jpeg` is a folder there (of
    # versions, not images) and stays a dataset name; a folder of images
    # named without its prefix is refused.
    root = self.create_tempdir().full_path
    os.makedirs(os.path.join(root, "sample_patches", "jpeg", "1.0.0"))
    os.makedirs(os.path.join(root, "photos"))
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(
        os.path.join(root, "photos", "a.png"))
    cwd = os.getcwd()
    os.chdir(root)
    try:
      flag_checks.validate_train_flags(_good(dataset="sample_patches/jpeg"))
      with self.assertRaisesRegex(errors.UsageError,
                                  "^--dataset=photos: a folder of images "
                                  "needs its prefix: --dataset=folder:photos"):
        flag_checks.validate_train_flags(_good(dataset="photos"))
    finally:
      os.chdir(cwd)

  def test_recompress_without_sources_is_a_usage_error(self):
    with self.assertRaisesRegex(errors.UsageError,
                                "^--dataset=recompress:: no sources"):
      flag_checks.validate_train_flags(_good(dataset="recompress:"))


class GuardedMainTest(parameterized.TestCase):

  def _run(self, fn, values=None):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      code = flag_checks.guarded_main(fn, [], values or _good(),
                                      hint="rerun to resume")
    return code, err.getvalue()

  def test_exit_codes_and_one_line_messages(self):
    called = []
    code, err = self._run(lambda argv: called.append(1) or 0)
    self.assertEqual((code, err, called), (0, "", [1]))
    code, err = self._run(lambda argv: called.append(2), _good(units=0))
    self.assertEqual((code, called), (2, [1]))  # fn never ran
    self.assertEqual(err, "train.py: error: --units=0: must be at least 1\n")

    def raiser(exc):
      def fn(argv):
        raise exc
      return fn

    code, err = self._run(raiser(FileNotFoundError("dataset x is not built")))
    self.assertEqual((code, err), (2, "train.py: error: dataset x is not "
                                      "built\n"))
    code, err = self._run(raiser(errors.ImageReadError("a.png", "corrupt")))
    self.assertEqual(code, 1)
    self.assertEqual(err, "train.py: error: cannot read image 'a.png': "
                          "corrupt\n")
    code, err = self._run(raiser(KeyboardInterrupt()))
    self.assertEqual((code, err), (130, "train.py: interrupted; rerun to "
                                        "resume\n"))
    stopped = KeyboardInterrupt("SIGTERM after batch 7, checkpoint "
                                "/m/ckpt-7 saved")  # as loop.Stopped says
    code, err = self._run(raiser(stopped))
    self.assertEqual((code, err), (130, "train.py: interrupted (SIGTERM after "
                                        "batch 7, checkpoint /m/ckpt-7 saved)"
                                        "; rerun to resume\n"))
    with self.assertRaises(RuntimeError):  # bugs are not hidden
      self._run(raiser(RuntimeError("bug")))


if __name__ == "__main__":
  absltest.main()
