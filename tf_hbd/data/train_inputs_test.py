"""Tests of tf_hbd.data.train_inputs: unreadable training images."""

import contextlib
import io
import os

from absl.testing import absltest
from PIL import Image

from tf_hbd import errors
from tf_hbd.data import pipelines
from tf_hbd.data import sample_images
from tf_hbd.data import train_inputs


class UnreadableTrainingImagesTest(absltest.TestCase):

  def _folder(self, good: bool) -> str:
    folder = self.create_tempdir().full_path
    with open(os.path.join(folder, "a_text.png"), "w") as f:
      f.write("not an image\n")
    with open(os.path.join(folder, "b_cut.jpg"), "wb") as f:
      f.write(b"\xff\xd8\xff\xe0")
    if good:
      Image.fromarray(sample_images.load_sample("camera")[:64, :80]).save(
          os.path.join(folder, "c_photo.png"))
    return folder

  def test_recompress_sources_skip_an_unreadable_image(self):
    folder = self._folder(good=True)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
      got = train_inputs.source_images(f"{folder},sample", max_side=48)
    self.assertLen(got, 1 + len(sample_images.sample_names("train")))
    self.assertEqual(got[0].shape, (38, 48))
    lines = err.getvalue().splitlines()
    self.assertLen(lines, 2)
    self.assertStartsWith(lines[0], "warning: skipping the unreadable "
                          f"training image {folder}/a_text.png (")

  def test_none_readable_is_one_error_and_no_warnings(self):
    folder = self._folder(good=False)
    for load in (train_inputs.source_images, pipelines.blocks_from_folder):
      err = io.StringIO()
      with contextlib.redirect_stderr(err), self.assertRaisesRegex(
          errors.ImageReadError,
          f"none of its 2 image files can be read \\({folder}/a_text.png: "
          "not an image file of a format Pillow reads; 1 more\\); replace "
          "them or give another folder"):
        load(folder)
      self.assertEqual(err.getvalue(), "", msg=load)


if __name__ == "__main__":
  absltest.main()
