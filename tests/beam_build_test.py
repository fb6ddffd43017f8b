"""The Beam build (DirectRunner, multi-processing) equals the plain build.

Builds sample_patches (the real scikit-image photographs, a small custom
config so it takes seconds) twice: as a plain Python generator, and as an
Apache Beam pipeline through TFDS's own mechanism (Beam options in the
download config, what `tfds build --beam_pipeline_options=...` sets), run by
Beam's DirectRunner in multi-processing mode with two worker processes. The
shards must be byte-identical and decode to the same examples.
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders.sample_patches import sample_patches_dataset_builder
from tf_hbd.data import blocks_dataset

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BEAM_FLAGS = ["--direct_running_mode=multi_processing",
               "--direct_num_workers=2"]


def _config():
  return blocks_dataset.BlocksConfig(name="beam_check", codec="jpeg",
                                     patch_size=16, max_side=96, tile=3)


def _shard_digests(path):
  out = {}
  for name in sorted(tf.io.gfile.listdir(path)):
    if ".tfrecord" in name:
      with tf.io.gfile.GFile(os.path.join(path, name), "rb") as f:
        out[name] = hashlib.sha256(f.read()).hexdigest()
  return out


def _metadata(builder):
  with tf.io.gfile.GFile(os.path.join(builder.data_path, "metadata.json")) as f:
    return json.load(f)


def _examples(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(
      split=split, shuffle_files=False,
      read_config=tfds.ReadConfig(interleave_cycle_length=1))))


class BeamBuildTest(tf.test.TestCase):

  def assertSameBuild(self, plain, beam):
    self.assertEqual(_metadata(plain)["beam"], False)
    self.assertEqual(_metadata(beam)["beam"], True)
    digests = _shard_digests(plain.data_path)
    self.assertNotEmpty(digests)
    self.assertEqual(digests, _shard_digests(beam.data_path))
    # The blocks per split: counted in the generator / by a Beam counter.
    self.assertEqual(_metadata(plain)["blocks_per_split"],
                     _metadata(beam)["blocks_per_split"])
    for split in ("train", "validation", "test"):
      a, b = _examples(plain, split), _examples(beam, split)
      self.assertLen(b, len(a))
      self.assertEqual(plain.info.splits[split].num_examples, len(a))
      self.assertEqual(beam.info.splits[split].num_examples, len(a))
      for x, y in zip(a, b):
        for k in x:
          np.testing.assert_array_equal(x[k], y[k], err_msg=k)

  def test_beam_multiprocessing_build_equals_plain_build(self):
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
    root = self.get_temp_dir()
    plain = sample_patches_dataset_builder.Builder(
        data_dir=os.path.join(root, "plain"), config=_config())
    plain.download_and_prepare()
    on_beam = sample_patches_dataset_builder.Builder(
        data_dir=os.path.join(root, "beam"), config=_config())
    options = beam.options.pipeline_options.PipelineOptions(flags=_BEAM_FLAGS)
    on_beam.download_and_prepare(download_config=tfds.download.DownloadConfig(
        beam_options=options))
    self.assertSameBuild(plain, on_beam)
    self.assertEqual(_metadata(plain)["blocks_per_split"]["train"], 324)
    self.assertGreater(plain.info.splits["train"].num_examples, 10)


@pytest.mark.slow
class BeamCliTest(BeamBuildTest):
  """The same through the `tfds build` command line (about 1-2 minutes)."""

  def test_beam_multiprocessing_build_equals_plain_build(self):
    root = self.get_temp_dir()
    # JPEG 2000 in one encode per image (the registered jp2 configs' path),
    # given as JSON as a user would.
    config = ('{"name": "beam_check", "codec": "jp2", "patch_size": 16, '
              '"max_side": 96, "tile": 3, "rate_search": false}')
    tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    base = [tfds_cli, "build", "data_builders/sample_patches", "--config",
            config]
    subprocess.run(base + ["--data_dir", os.path.join(root, "plain")],
                   check=True, cwd=_REPO, env=env, capture_output=True)
    subprocess.run(base + [
        "--data_dir", os.path.join(root, "beam"), "--beam_pipeline_options="
        + ",".join(f[2:] for f in _BEAM_FLAGS)],
                   check=True, cwd=_REPO, env=env, capture_output=True)
    load = lambda d: tfds.builder_from_directory(
        os.path.join(root, d, "sample_patches", "beam_check",
                     str(blocks_dataset.PatchBlocksBuilder.VERSION)))
    self.assertSameBuild(load("plain"), load("beam"))
    self.assertFalse(_metadata(load("plain"))["spec"]["rate_search"])


if __name__ == "__main__":
  tf.test.main()
