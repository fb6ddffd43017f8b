"""Tests of tf_hbd.data.pipelines (training pipeline, in-memory blocks, image loader)."""

import json
import os
import shutil

from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_datasets as tfds

from data_builders.folder_patches import folder_patches_dataset_builder
from tf_hbd.data import blocks_dataset
from tf_hbd.data import pipelines as data
from tf_hbd import errors
from tf_hbd.data import sample_images

_FOLDER_DUMMY = os.path.join(os.path.dirname(__file__), "..", "..",
                             "data_builders", "folder_patches", "dummy_data")


def _v1_images():
  return [("camera.png", sample_images.load_sample("camera")[:24, :40]),
          ("coins.png", sample_images.load_sample("coins")[:40, :32])]


# The version 1.0.0 record schema of the block builders (d = 8): name,
# dtype, shape (None: text), stored as raw bytes, description.
_V1_FEATURES = (
    ("bpp", "float32", (), False, "achieved rate of the whole image"),
    ("codec_setting", "float32", (), False,
     "JPEG quality or JP2 compression ratio"),
    ("context", "uint8", (9, 8, 8), True,
     "decoded patches of the block, row-major"),
    ("coords", "int32", (2,), False,
     "(row, col) of the target in the patch grid"),
    ("grid_shape", "int32", (2,), False, "(rows, cols) of the patch grid"),
    ("image_id", None, None, False, "source image identifier"),
    ("image_shape", "int32", (2,), False,
     "(height, width) of the coded image"),
    ("position", "int32", (), False, "index 0..8 of the target in the block"),
    ("target", "uint8", (8, 8), True, "original (uncompressed) target patch"),
)
_TFDS_FEATURES = "tensorflow_datasets.core.features."


def _v1_features_json():
  """features.json of a 1.0.0 build (the TFDS FeaturesDict of the schema)."""
  out = {}
  for name, dtype, shape, raw, description in _V1_FEATURES:
    if dtype is None:
      out[name] = {"description": description,
                   "pythonClassName": _TFDS_FEATURES + "text_feature.Text",
                   "text": {}}
      continue
    dims = {"dimensions": [str(n) for n in shape]} if shape else {}
    out[name] = {
        "description": description,
        "pythonClassName": _TFDS_FEATURES + "tensor_feature.Tensor",
        "tensor": {"dtype": dtype, "encoding": "bytes" if raw else "none",
                   "shape": dims}}
  return {"featuresDict": {"features": out},
          "pythonClassName": _TFDS_FEATURES + "features_dict.FeaturesDict"}


def _v1_example(blocks, i, image_id, enc):
  """Block i of an image as the 1.0.0 builders serialized it."""
  ints = lambda v: tf.train.Feature(int64_list=tf.train.Int64List(
      value=np.ravel(v).tolist()))
  floats = lambda v: tf.train.Feature(float_list=tf.train.FloatList(
      value=[float(np.float32(v))]))
  raw = lambda v: tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[np.ascontiguousarray(v, np.uint8).tobytes()]))
  return tf.train.Example(features=tf.train.Features(feature={
      "context": raw(blocks.context[i]),
      "target": raw(blocks.target[i]),
      "position": ints(blocks.position[i]),
      "bpp": floats(enc.bpp),
      "codec_setting": floats(enc.setting),
      "image_id": tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[image_id.encode()])),
      "coords": ints(blocks.coords[i]),
      "grid_shape": ints(blocks.grid_shape),
      "image_shape": ints(blocks.image_shape),
  })).SerializeToString()


def _write_v1_build(data_dir, named_images):
  """Writes a version 1.0.0 `folder_patches/jpeg` build into `data_dir`.

  What the 1.0.0 builder wrote (one shard, minus TFDS's record shuffle): one
  tf.train.Example per 3 x 3 block (d = 8, paper blocks, the rate of
  `blocks_dataset.rate_for`) and the TFDS metadata files.

  Returns:
    The version directory (``.../folder_patches/jpeg/1.0.0``).
  """
  spec = {"codec": "jpeg", "patch_size": 8, "strategy": "paper",
          "bpp_range": list(blocks_dataset.DEFAULT_BPP_RANGE),
          "quality": None, "seed": 0, "max_side": None}
  block_spec = blocks_dataset.BlockSpec(**spec)
  root = os.path.join(data_dir, "folder_patches")
  path = os.path.join(root, "jpeg", "1.0.0")
  os.makedirs(os.path.join(root, ".config"), exist_ok=True)
  os.makedirs(path, exist_ok=True)
  n = size = 0
  with tf.io.TFRecordWriter(os.path.join(
      path, "folder_patches-train.tfrecord-00000-of-00001")) as writer:
    for image_id, gray in named_images:
      blocks, enc = blocks_dataset.image_blocks(
          image_id, blocks_dataset.prepare_image(gray), block_spec)
      for i in range(len(blocks)):
        record = _v1_example(blocks, i, image_id, enc)
        writer.write(record)
        n, size = n + 1, size + len(record)
  info = {
      "configDescription": "JPEG, 8x8 patches (paper), paper blocks, "
                           "0.35-1.02 bpp per image.",
      "configName": "jpeg",
      "description": "Patch blocks of any folder of images (version 1.0.0 "
                     "test build).",
      "fileFormat": "tfrecord",
      "moduleName": "data_builders.folder_patches."
                    "folder_patches_dataset_builder",
      "name": "folder_patches",
      "releaseNotes": {"1.0.0": "Initial release."},
      "splits": [{"filepathTemplate":
                      "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
                  "name": "train", "numBytes": str(size),
                  "shardLengths": [str(n)]}],
      "version": "1.0.0"}
  metadata = {"source": os.path.join(data_dir, "images"),
              "images_per_split": {"train": len(named_images)},
              "beam": False, "spec": spec}
  for name, content in (("dataset_info.json", info),
                        ("features.json", _v1_features_json()),
                        ("metadata.json", metadata)):
    with open(os.path.join(path, name), "w") as f:
      json.dump(content, f, indent=2)
  with open(os.path.join(root, ".config", "metadata.json"), "w") as f:
    json.dump({"default_config_name": "jpeg"}, f)
  return path


def _u8(x):
  """[0, 1] floats of uint8 pixels -> the pixels."""
  return (np.asarray(x) * 255).round().astype(np.uint8)


def _write_images(folder):
  """Five 8-bit crops of sample photos + one 16-bit image."""
  os.makedirs(os.path.join(folder, "deep"), exist_ok=True)
  for k, name in enumerate(("camera", "coins", "moon", "brick", "grass")):
    img = sample_images.load_sample(name)[:40 + 8 * k, :56]
    Image.fromarray(img).save(os.path.join(folder, f"{name}.png"))
  img16 = (sample_images.load_sample("page")[:40, :40].astype(np.uint16) * 257)
  Image.fromarray(img16).save(os.path.join(folder, "deep", "page16.png"))


class PipelineTest(parameterized.TestCase, tf.test.TestCase):
  """On folder_patches builds of 6 images (jpeg, d=8) in 3 shards.

  `builder` is the registered ``jpeg`` config (one tile per image here);
  `tiled` cuts the grids into tiles of at most 3 x 3 patches, so blocks are
  cut from many small records with halos.
  """

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), "pipeline")
    cls.images = os.path.join(cls.root, "images")
    _write_images(cls.images)
    download = tfds.download.DownloadConfig(manual_dir=cls.images,
                                            num_shards=3)
    cls.builder = folder_patches_dataset_builder.Builder(
        data_dir=os.path.join(cls.root, "tfds"), config="jpeg")
    cls.builder.download_and_prepare(download_config=download)
    cls.tiled = folder_patches_dataset_builder.Builder(
        data_dir=os.path.join(cls.root, "tfds"),
        config=blocks_dataset.BlocksConfig(name="jpeg_tile3", tile=3))
    cls.tiled.download_and_prepare(download_config=download)
    cls.records = list(tfds.as_numpy(cls.tiled.as_dataset(
        split="train", shuffle_files=False,
        read_config=tfds.ReadConfig(interleave_cycle_length=1))))
    cls.arrays = {s: data.blocks_from_folder(cls.images, "jpeg", patch_size=8,
                                             strategy=s)
                  for s in ("paper", "replicate")}
    cls.num_blocks = len(cls.arrays["paper"])

  def _first(self, ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]

  def _expected(self, strategy):
    """make_blocks' blocks in record order, row-major within each tile."""
    a = self.arrays[strategy]
    index = {(a.image_ids[a.image_index[i]], tuple(a.coords[i])): i
             for i in range(len(a))}
    order = []
    for r in self.records:
      r0, c0, tr, tc = r["tile"]
      for i in range(r0, r0 + tr):
        for j in range(c0, c0 + tc):
          order.append(index[(r["image_id"].decode(), (i, j))])
    return a.context[order], a.position[order], a.target[order]

  @staticmethod
  def _keys(batch):
    n = len(batch["position"])
    ctx = _u8(batch["context"]).reshape(n, -1)
    return sorted(bytes(c) + bytes([p]) for c, p in zip(ctx,
                                                         batch["position"]))

  def test_split_size(self):
    # 40..72 x 56 images -> (5..9) x 7 patches, + 40x40 -> 5x5.
    blocks = sum(-(-(40 + 8 * k) // 8) * 7 for k in range(5)) + 25
    self.assertEqual(self.num_blocks, blocks)
    size = data.dataset_size(self.builder)
    self.assertEqual((size["shards"], size["blocks"], size["records"]),
                     (3, blocks, 6))
    tiled = data.dataset_size(self.tiled)
    self.assertEqual(tiled["blocks"], blocks)
    self.assertEqual(tiled["records"], len(self.records))
    # rows 5..9 -> 2, 2, 3, 3, 3 tiles; 7 cols -> 3 tiles; 5 x 5 -> 2 x 2
    self.assertLen(self.records, (2 + 2 + 3 + 3 + 3) * 3 + 4)
    self.assertLess(size["bytes_per_block"], 1.5 * 2 * 64 + 100)
    # A slice is counted from its records.
    half = self.tiled.info.splits["train[:50%]"].num_examples
    self.assertEqual(data.split_blocks(self.tiled, "train[:50%]"),
                     sum(int(r["tile"][2] * r["tile"][3])
                         for r in self.records[:half]))

  @parameterized.parameters("paper", "replicate")
  def test_batches_are_make_blocks_index_for_index(self, strategy):
    for builder in (self.tiled, self.builder):
      ds = data.training_dataset(builder, "train", 10_000, shuffle=False,
                                 drop_remainder=False, strategy=strategy)
      (batch,) = self._first(ds, 2)
      self.assertEqual(batch["context"].dtype, np.float32)
      self.assertEqual(batch["position"].dtype, np.int32)
      self.assertAllInRange(batch["context"], 0.0, 1.0)
      if builder is self.tiled:
        context, position, target = self._expected(strategy)
        self.assertAllEqual(_u8(batch["context"]), context)
        self.assertAllEqual(_u8(batch["target"]), target)
        self.assertAllClose(batch["context"], context / 255.0, atol=1e-7)
        self.assertAllEqual(batch["position"], position)
      else:
        a = self.arrays[strategy]
        self.assertEqual(self._keys(batch), self._keys(
            {"context": a.context / 255.0, "position": a.position}))
    if strategy == "replicate":
      self.assertAllEqual(np.unique(batch["position"]), [4])

  def test_load_by_name_and_by_directory(self):
    by_name = data.training_dataset(
        "folder_patches/jpeg", "train", 8, data_dir=os.path.join(
            self.root, "tfds"), shuffle=False, deterministic=True)
    by_dir = data.training_dataset(str(self.builder.data_path), "train", 8,
                                   shuffle=False, deterministic=True)
    a, b = self._first(by_name, 1)[0], self._first(by_dir, 1)[0]
    self.assertAllEqual(a["context"], b["context"])
    self.assertEqual(a["context"].shape, (8, 9, 8, 8))

  def test_deterministic_mode_repeats_the_same_batches(self):
    make = lambda seed: data.training_dataset(
        self.tiled, "train", 16, seed=seed, deterministic=True,
        shuffle_buffer=64, repeat=True)
    first, second = self._first(make(3), 4), self._first(make(3), 4)
    other = self._first(make(4), 4)
    for a, b in zip(first, second):
      for k in a:
        self.assertAllEqual(a[k], b[k])
    self.assertNotAllClose(first[0]["context"], other[0]["context"])

  def test_two_step_shuffle_permutes_each_epoch(self):
    n = self.num_blocks
    ds = data.training_dataset(self.tiled, "train", n, seed=1,
                               deterministic=True, repeat=True,
                               shuffle_buffer=32)
    e0, e1 = self._first(ds, 2)
    # Each epoch holds every block exactly once, in a different order.
    self.assertEqual(self._keys(e0), self._keys(e1))
    a = self.arrays["paper"]
    self.assertEqual(self._keys(e0), self._keys(
        {"context": a.context / 255.0, "position": a.position}))
    self.assertNotAllClose(e0["context"], e1["context"])
    unshuffled = self._first(data.training_dataset(
        self.tiled, "train", n, shuffle=False), 1)[0]
    self.assertNotAllClose(e0["context"], unshuffled["context"])

  @parameterized.parameters(0, 3, 11, 25)
  def test_start_batch_resumes_exactly(self, start):
    # 25 batches of 16 cross the end of the first epoch (270 blocks).
    for parallel in (False, True):  # deterministic, also if parallel reads
      make = lambda s: data.training_dataset(
          self.tiled, "train", 16, seed=9, deterministic=True, repeat=True,
          shuffle_buffer=100, start_batch=s, cycle_length=3 if parallel else 1)
      full = self._first(make(0), start + 3)[start:]
      resumed = self._first(make(start), 3)
      for a, b in zip(full, resumed):
        for k in a:
          self.assertAllEqual(a[k], b[k])

  def test_one_epoch_without_repeat(self):
    n = self.num_blocks
    batches = self._first(data.training_dataset(
        self.tiled, "train", 32, seed=0, drop_remainder=True), 100)
    self.assertLen(batches, n // 32)
    batches = self._first(data.training_dataset(
        self.tiled, "train", 32, seed=0, drop_remainder=False), 100)
    self.assertEqual(sum(len(b["position"]) for b in batches), n)

  def test_codec_filter(self):
    a = self.arrays["paper"]
    bpps = a.bpp
    lo, hi = np.sort(np.unique(bpps))[[1, -2]]
    ds = data.training_dataset(self.tiled, "train", 1, shuffle=False,
                               codec_filter=(lo, hi), drop_remainder=False)
    self.assertEqual(sum(1 for _ in ds),
                     int(np.sum((bpps >= lo) & (bpps <= hi))))
    self.assertLess(sum(1 for _ in ds), len(bpps))
    same = data.training_dataset(self.tiled, "train", 8, codec_filter="jpeg")
    self.assertEqual(next(iter(same))["context"].shape[0], 8)
    with self.assertRaisesRegex(ValueError, "only 'jpeg'"):
      data.training_dataset(self.tiled, "train", 8, codec_filter="jp2")
    resumed = self._first(data.training_dataset(
        self.tiled, "train", 4, seed=2, deterministic=True,
        codec_filter=(lo, hi), start_batch=2), 1)[0]
    full = self._first(data.training_dataset(
        self.tiled, "train", 4, seed=2, deterministic=True,
        codec_filter=(lo, hi)), 3)[2]
    self.assertAllEqual(resumed["context"], full["context"])

  def test_slices_and_errors(self):
    ds = data.training_dataset(self.tiled, "train[:50%]", 1000,
                               drop_remainder=False, shuffle=False)
    self.assertEqual(len(next(iter(ds))["position"]),
                     data.split_blocks(self.tiled, "train[:50%]"))
    with self.assertRaisesRegex(FileNotFoundError, "tfds build data_builders"):
      data.training_dataset("folder_patches/jp2", "train", 8,
                            data_dir=os.path.join(self.root, "tfds"))
    with self.assertRaisesRegex(ValueError, "batch_size"):
      data.training_dataset(self.builder, "train", 0)
    with self.assertRaisesRegex(ValueError, "boundary strategy"):
      data.training_dataset(self.builder, "train", 8, strategy="zero")

  def test_records_reassemble_the_images(self):
    rebuilt = blocks_dataset.reassemble(self.records)
    a = self.arrays["paper"]
    for k, image_id in enumerate(a.image_ids):
      original, _ = rebuilt[image_id]
      target = a.target[a.image_index == k]
      self.assertAllEqual(original[:8, :8], target[0])


class Version1Test(tf.test.TestCase):
  """Builds of the 1.0.0 builders (one record per block) are still read.

  The build is written by `_write_v1_build` from two crops of the sample
  photographs: its records equal, byte for byte, those of the 1.0.0
  folder_patches builder on the same crops (checked once against a build of
  that builder, which the repository does not keep).
  """

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = os.path.join(tf.compat.v1.test.get_temp_dir(), "v1")
    shutil.rmtree(cls.data_dir, ignore_errors=True)
    cls.path = _write_v1_build(cls.data_dir, _v1_images())
    cls.arrays = data.blocks_from_images(_v1_images(), "jpeg", patch_size=8)

  def test_written_like_the_1_0_0_builder(self):
    # Record count and bytes of the 1.0.0 builder's shard of these crops:
    # the sizes fix the wire format (field set, types, raw byte encodings).
    builder = data.load_builder(self.path)
    info = builder.info.splits["train"]
    self.assertEqual((info.num_examples, info.num_bytes), (35, 29170))
    files = [str(fi.filename) for fi in info.file_instructions]
    records = list(tf.data.TFRecordDataset(files).as_numpy_iterator())
    self.assertEqual(sum(map(len, records)), 29170)
    self.assertEqual(sorted(builder.info.features.keys()),
                     [f[0] for f in _V1_FEATURES])
    self.assertEqual(data.stored_spec(builder)["codec"], "jpeg")

  def test_read_by_directory_equals_the_current_blocks(self):
    builder = data.load_builder(self.path)
    self.assertFalse(data.is_tile_dataset(builder))
    self.assertEqual(data.dataset_size(builder)["blocks"], len(self.arrays))
    (batch,) = list(data.training_dataset(builder, "train", 1000,
                                          shuffle=False,
                                          drop_remainder=False))
    got = sorted(bytes(_u8(batch["context"][i])) +
                 bytes(_u8(batch["target"][i])) +
                 bytes([int(batch["position"][i])])
                 for i in range(len(self.arrays)))
    want = sorted(bytes(self.arrays.context[i]) +
                  bytes(self.arrays.target[i]) +
                  bytes([self.arrays.position[i]])
                  for i in range(len(self.arrays)))
    self.assertEqual(got, want)

  def test_by_name_falls_back_to_the_old_build_with_a_warning(self):
    with self.assertLogs(level="WARNING") as logs:
      builder = data.load_builder("folder_patches/jpeg",
                                  data_dir=self.data_dir)
    self.assertEqual(str(builder.version), "1.0.0")
    self.assertTrue(any("tfds build data_builders/folder_patches" in line
                        for line in logs.output), logs.output)
    batch = next(iter(data.training_dataset(builder, "train", 8, seed=0,
                                            strategy="replicate")))
    self.assertAllEqual(batch["position"], np.full(8, 4))


class SampleDatasetTest(tf.test.TestCase):

  def test_built_on_first_use_then_reused(self):
    config = blocks_dataset.BlocksConfig(name="tiny", codec="jpeg",
                                         patch_size=32, max_side=64)
    data_dir = self.get_temp_dir()
    builder = data.sample_dataset(config, data_dir=data_dir)
    info = os.path.join(builder.data_path, "dataset_info.json")
    stamp = os.path.getmtime(info)
    self.assertEqual(
        {s: data.dataset_size(builder, s)["blocks"]
         for s in ("train", "validation", "test")},
        {s: sum(-(-min(64, h) // 32) * -(-min(64, w) // 32) for h, w in (
            blocks_dataset.prepare_image(sample_images.load_sample(n),
                                         max_side=64).shape
            for n in sample_images.sample_names(s)))
         for s in ("train", "validation", "test")})
    again = data.sample_dataset(config, data_dir=data_dir)
    self.assertEqual(os.path.getmtime(info), stamp)
    batch = next(iter(data.training_dataset(again, "train", 4, seed=0)))
    self.assertEqual(batch["context"].shape, (4, 9, 32, 32))


class InMemoryTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.arrays = data.blocks_from_images(
        [(n, sample_images.load_sample(n)[:64, :64])
         for n in ("camera", "coins")], "jp2", patch_size=16)

  def test_arrays(self):
    a = self.arrays
    self.assertLen(a, 2 * 16)
    self.assertEqual(a.context.shape, (32, 9, 16, 16))
    self.assertEqual(a.context.dtype, np.uint8)
    self.assertEqual(a.image_ids, ["camera", "coins"])
    for i, name in enumerate(a.image_ids):  # at most the image's drawn rate
      rate = blocks_dataset.rate_for(0, name, blocks_dataset.DEFAULT_BPP_RANGE)
      self.assertLessEqual(a.bpp[a.image_index == i].max(), np.float32(rate))
    self.assertGreater(a.nbytes, 32 * 10 * 256)

  def test_to_dataset_is_deterministic_and_resumable(self):
    ds = lambda **kw: [{k: v.numpy() for k, v in b.items()} for b in
                       self.arrays.to_dataset(5, seed=1, repeat=True,
                                              **kw).take(4)]
    a, b = ds(), ds()
    for x, y in zip(a, b):
      self.assertAllEqual(x["context"], y["context"])
    more = [{k: v.numpy() for k, v in b.items()} for b in
            self.arrays.to_dataset(5, seed=1, repeat=True).take(12)]
    resumed = ds(start_batch=8)
    for x, y in zip(more[8:], resumed):
      self.assertAllEqual(x["target"], y["target"])
    self.assertEqual(a[0]["context"].dtype, np.float32)
    self.assertEqual(a[0]["position"].dtype, np.int32)

  def test_one_epoch_covers_all_blocks(self):
    (batch,) = list(self.arrays.to_dataset(100, drop_remainder=False,
                                           strategy="replicate"))
    self.assertEqual(batch["context"].shape, (32, 9, 16, 16))
    self.assertAllEqual(batch["position"], np.full(32, 4))
    with self.assertRaises(ValueError):
      data.BlockArrays(**{**self.arrays.__dict__, "strategy": "replicate"}
                       ).to_dataset(4, strategy="paper")

  def test_memory_limit(self):
    with self.assertRaisesRegex(errors.ResourceLimitError, "GiB"):
      data.blocks_from_folder(_FOLDER_DUMMY, max_bytes=1000)


class LoadImagesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.folder = os.path.join(self.get_temp_dir(), "imgs")
    shutil.rmtree(self.folder, ignore_errors=True)
    _write_images(self.folder)

  def test_folder_with_8_and_16_bit_images(self):
    loaded = list(data.load_images(self.folder))
    self.assertEqual([e.name for e in loaded],
                     ["brick.png", "camera.png", "coins.png", "deep/page16.png",
                      "grass.png", "moon.png"])
    deep = loaded[3]
    self.assertEqual(deep.bit_depth, 16)
    self.assertEqual(deep.original.dtype, np.uint16)
    self.assertEqual(deep.gray.dtype, np.uint8)
    self.assertAllEqual(deep.gray, sample_images.load_sample("page")[:40, :40])
    self.assertIsNone(deep.decoded)

  def test_codec_round_trip_at_bpp_and_quality(self):
    at_rate = list(data.load_images(os.path.join(self.folder, "c*.png"),
                                    codec="jp2", bpp=2.0))
    self.assertEqual([e.name for e in at_rate], ["camera.png", "coins.png"])
    for e in at_rate:
      self.assertLessEqual(e.encoded.bpp, 2.0)
      self.assertTrue(e.encoded.met_target)
      self.assertEqual(e.decoded.shape, e.gray.shape)
    (q,) = data.load_images(os.path.join(self.folder, "moon.png"),
                            codec="jpeg", quality=40)
    self.assertEqual(q.encoded.setting, 40)

  def test_max_side_limit_and_errors(self):
    (small,) = data.load_images(self.folder, max_side=20, limit=1)
    self.assertEqual(max(small.gray.shape), 20)
    with self.assertRaises(ValueError):
      next(data.load_images(self.folder, codec="jpeg"))
    with self.assertRaises(ValueError):
      next(data.load_images(self.folder, bpp=0.4))
    with self.assertRaises(errors.ImageReadError):
      next(data.load_images(os.path.join(self.folder, "none")))


if __name__ == "__main__":
  tf.test.main()
