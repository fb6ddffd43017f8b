"""Resuming from the newest intact checkpoint (garbled state file, damaged
data or index files), through the real training loop."""

import contextlib
import io
import os

import numpy as np
import tensorflow as tf

from tf_hbd.training import checkpoints
from tf_hbd.codecs import legacy as codecs
from tf_hbd.data import pipelines as data
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.data import sample_images
from tf_hbd.training import trainer as training
from tf_hbd.training.algorithms import base


def _photo(size=40):
  return np.ascontiguousarray(sample_images.load_sample("camera")[
      100:100 + size, 150:150 + size])


def _trainer(model_dir, lines=None, **kwargs):
  arrays = data.blocks_from_images([("camera", _photo())], "jpeg", quality=15)
  batches = lambda start: arrays.to_dataset(16, seed=3, repeat=True,
                                            start_batch=start)
  img = _photo(32)
  decoded, _ = codecs.roundtrip(img, "jpeg", quality=15)
  validator = training.Validator([training.ValImage("crop", img, decoded)])
  model = decoder_lib.build_decoder("lstm", units=4, patch_size=8, K=2,
                                    seed=1)
  config = dict(model_dir=model_dir, epochs=2, steps_per_epoch=4,
                batch_size=16, optimizer="momentum", lr=0.05,
                checkpoint_every=1, log_every=0)
  config.update(kwargs)
  printer = (lambda *a: None) if lines is None else lines.append
  return training.Trainer(base.make_algorithm("bptt", model), batches,
                          validator, training.TrainConfig(**config),
                          printer=printer)


class CheckpointFallbackTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.full_dir = tf.compat.v1.test.get_temp_dir() + "/full"
    cls.full = _trainer(cls.full_dir)
    cls.full.run()

  def _interrupted(self):
    """A run stopped at batch 6 (checkpoints 4, 5, 6 kept)."""
    model_dir = self.create_tempdir().full_path
    _trainer(model_dir, max_steps=6).run()
    ckpt_dir = os.path.join(model_dir, "checkpoints")
    self.assertEqual([os.path.basename(p) for p in
                      checkpoints.checkpoints_on_disk(ckpt_dir)],
                     ["ckpt-4", "ckpt-5", "ckpt-6"])
    return model_dir, ckpt_dir

  def _resume_and_compare(self, model_dir):
    """Resumes to batch 8; the run's progress lines and its stderr (where
    the checkpoint warnings go, never among the progress lines)."""
    lines, stderr = [], io.StringIO()
    with contextlib.redirect_stderr(stderr):
      resumed = _trainer(model_dir, lines)
      resumed.run()
    self.assertEqual(int(resumed.batches_done.numpy()), 8)
    for a, b in zip(self.full.algo.variables, resumed.algo.variables):
      self.assertAllEqual(a, b, msg=a.name)
    out = "\n".join(str(x) for x in lines)
    self.assertNotIn("warning", out)
    return out, stderr.getvalue()

  def _state_file_set_aside(self, content):
    """Resumes over a state file holding `content`; the set-aside file's
    content and the run's lines."""
    model_dir, ckpt_dir = self._interrupted()
    with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
      f.write(content)
    out, err = self._resume_and_compare(model_dir)
    self.assertRegex(err, r"^warning: the checkpoint state file .*checkpoint "
                     r"is empty or garbled; moved it to .*checkpoint"
                     r"\.unreadable")
    self.assertRegex(out, r"resumed from .*ckpt-6 at batch 6")
    self.assertEqual(tf.train.latest_checkpoint(ckpt_dir),
                     os.path.join(ckpt_dir, "ckpt-8"))
    with open(os.path.join(ckpt_dir, "checkpoint.unreadable")) as f:
      return f.read(), out

  def test_garbled_state_file_resumes_from_the_newest_checkpoint(self):
    garbage = "model_checkpoint_path: \"ckpt-6\x00\x01 garbage {{{\n"
    kept, _ = self._state_file_set_aside(garbage)
    self.assertEqual(kept, garbage)  # moved aside, not lost

  def test_empty_state_file_resumes_from_the_newest_checkpoint(self):
    kept, _ = self._state_file_set_aside("")
    self.assertEqual(kept, "")

  def test_set_aside_and_readable_latest_leave_a_good_state_alone(self):
    _, ckpt_dir = self._interrupted()
    lines = []
    self.assertIsNone(checkpoints.set_aside_unreadable_state(ckpt_dir,
                                                             lines.append))
    self.assertEqual(lines, [])
    self.assertEqual(checkpoints.readable_latest(ckpt_dir),
                     os.path.join(ckpt_dir, "ckpt-6"))
    for content in ("", "{{{"):
      with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
        f.write(content)
      self.assertIsNone(checkpoints.readable_latest(ckpt_dir))
    moved = checkpoints.set_aside_unreadable_state(ckpt_dir, lines.append)
    self.assertEqual(moved, os.path.join(ckpt_dir, "checkpoint.unreadable"))
    self.assertLen(lines, 1)
    with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
      f.write("")  # a second bad one does not replace the first
    self.assertEqual(checkpoints.set_aside_unreadable_state(ckpt_dir,
                                                            lines.append),
                     moved + ".1")

  def test_damaged_data_file_falls_back_to_the_previous_checkpoint(self):
    model_dir, ckpt_dir = self._interrupted()
    data_file = os.path.join(ckpt_dir, "ckpt-6.data-00000-of-00001")
    size = os.path.getsize(data_file)
    with open(data_file, "r+b") as f:
      f.truncate(size // 2)
    with open(data_file, "rb") as f:
      damaged = f.read()
    out, err = self._resume_and_compare(model_dir)
    self.assertRegex(err, r"^warning: checkpoint .*ckpt-6 is damaged or "
                     r"incomplete \(.*\); moved its 2 files aside to "
                     r".*ckpt-6\.\*\.damaged \(nothing deleted\)\n"
                     r"falling back to .*ckpt-5")
    self.assertRegex(out, r"resumed from .*ckpt-5 at batch 5")
    with open(data_file + ".damaged", "rb") as f:
      self.assertEqual(f.read(), damaged)  # kept as it was
    self._consistent(ckpt_dir)

  def test_damaged_index_file_falls_back_to_the_previous_checkpoint(self):
    model_dir, ckpt_dir = self._interrupted()
    with open(os.path.join(ckpt_dir, "ckpt-6.index"), "wb") as f:
      f.write(os.urandom(64))
    out, err = self._resume_and_compare(model_dir)
    self.assertRegex(err, r"checkpoint .*ckpt-6 is damaged.*moved its 2 "
                     r"files aside")
    self.assertRegex(out, r"resumed from .*ckpt-5 at batch 5")
    self.assertTrue(os.path.exists(os.path.join(ckpt_dir,
                                                "ckpt-6.index.damaged")))
    self._consistent(ckpt_dir)

  def _consistent(self, ckpt_dir):
    """The manager's state file lists exactly the checkpoints on disk (the
    damaged files are not among them; ckpt-6 was written afresh), and each
    of them reads back."""
    state = tf.train.get_checkpoint_state(ckpt_dir)
    on_disk = checkpoints.checkpoints_on_disk(ckpt_dir)
    self.assertEqual([os.path.basename(p) for p in on_disk],
                     ["ckpt-6", "ckpt-7", "ckpt-8"])  # max_to_keep=3
    self.assertEqual([os.path.basename(p) for p in
                      state.all_model_checkpoint_paths],
                     [os.path.basename(p) for p in on_disk])
    self.assertEqual(os.path.basename(state.model_checkpoint_path), "ckpt-8")
    for prefix in on_disk:
      tf.train.load_checkpoint(prefix)  # raises when damaged

  def test_set_aside_damaged_never_replaces_a_set_aside_file(self):
    _, ckpt_dir = self._interrupted()
    prefix = os.path.join(ckpt_dir, "ckpt-6")
    first = checkpoints.set_aside_damaged(prefix)
    self.assertEqual([os.path.basename(p) for p in first],
                     ["ckpt-6.data-00000-of-00001.damaged",
                      "ckpt-6.index.damaged"])
    self.assertEqual(checkpoints.set_aside_damaged(prefix), [])
    with open(prefix + ".index", "wb") as f:
      f.write(b"again")  # a later ckpt-6 damaged as well
    self.assertEqual(checkpoints.set_aside_damaged(prefix),
                     [prefix + ".index.damaged.1"])
    with open(prefix + ".index.damaged.1", "rb") as f:
      self.assertEqual(f.read(), b"again")
    self.assertEqual([os.path.basename(p) for p in
                      checkpoints.checkpoints_on_disk(ckpt_dir)],
                     ["ckpt-4", "ckpt-5"])

  def test_no_intact_checkpoint_refuses_to_start_over(self):
    model_dir, ckpt_dir = self._interrupted()
    for p in checkpoints.checkpoints_on_disk(ckpt_dir):
      with open(p + ".index", "wb") as f:
        f.write(b"\x00" * 40)
    before = sorted(os.listdir(ckpt_dir))
    stderr = io.StringIO()
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                r"none of the 3 checkpoints .* can be read"
                                r".*move that folder away"):
      with contextlib.redirect_stderr(stderr):
        _trainer(model_dir).run()
    self.assertEqual(sorted(os.listdir(ckpt_dir)), before)  # nothing moved
    self.assertEqual(stderr.getvalue().count("; trying an older one"), 3)


if __name__ == "__main__":
  tf.test.main()
