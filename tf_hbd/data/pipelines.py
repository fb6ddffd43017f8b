"""Input pipelines: patch-block records -> training batches; image loading.

Training batches (docs/CONTRACTS.md) are dicts of
``context`` (B, 9, d, d) float32 in [0, 1], ``position`` (B,) int32 and
``target`` (B, d, d) float32 in [0, 1].

Three sources:

* `training_dataset`: a prepared TFDS patch-block dataset (``sample_patches``,
  ``folder_patches``, ``places_patches``; see BUILD.md). The records are read
  straight from the TFRecord shards. A record (version 2) is a tile of an
  image: it is parsed and its blocks are cut by
  `tf_hbd.data.blocks_dataset.tile_blocks` (one gather) in a parallel map, then
  the blocks enter the shuffle buffer one by one. Version 1 builds (one
  record per block) are still read, parsed a whole batch at a time
  (`tf.io.parse_example` + `tf.io.decode_raw`).
* `blocks_from_folder` / `blocks_from_images`: the same examples built in
  memory (NumPy) with the builders' code, no TFDS build needed; `BlockArrays.
  to_dataset` batches them the same way.
* `load_images`: whole images (folder or glob, 8- or 16-bit) for evaluation,
  optionally through a codec at a target bpp or quality.

Shuffling is the paper's two-step scheme: (1) the shard files are shuffled
and read interleaved, (2) the blocks go through a shuffle buffer. (TFDS
already wrote the records of a split in a hashed, image-mixing order.)

Determinism and exact resume. With ``deterministic=True`` and a ``seed``, the
stream is a fixed function of (dataset, split, seed, batch_size): epoch ``e``
shuffles the files and the buffer with seeds derived from ``(seed, e)``, every
parallel stage keeps its order, and epochs follow each other (with
``repeat=True`` a batch may span two epochs). To resume after ``n`` batches,
build the same dataset with ``start_batch=n``: the pipeline jumps to epoch
``n * batch_size // N`` (N = blocks in the split) and skips the remaining
``n * batch_size % N`` blocks of that epoch before they are batched and
converted (version 1: records, before they are parsed), so resuming costs
reading at most one epoch, never replaying earlier epochs. (The shuffle
buffer makes reading the start of the epoch unavoidable.) The TF global seed
(`tf.random.set_seed`) also enters the shuffles; keep it the same, or unset,
across the runs.
"""

import collections
import dataclasses
import json
import logging
import os
import secrets
import sys
from typing import Callable, Iterable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd.data import blocks_dataset
from tf_hbd.codecs import legacy as codecs
from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.codecs import patches

__all__ = [
    "BlockArrays",
    "EvalImage",
    "blocks_from_folder",
    "skipped_line",
    "none_readable",
    "blocks_from_images",
    "dataset_size",
    "is_tile_dataset",
    "load_builder",
    "load_images",
    "sample_dataset",
    "split_blocks",
    "stored_spec",
    "to_training_batch",
    "training_dataset",
]

_AUTOTUNE = tf.data.AUTOTUNE
_SHUFFLE_BYTES = 256 << 20  # default shuffle buffer: about 256 MiB of records
_CYCLE_LENGTH = 16  # shard files read at once


# ------------------------------------------------------------------ TFDS

def load_builder(name_or_builder, data_dir: Optional[str] = None):
  """A prepared patch-block dataset builder.

  Args:
    name_or_builder: a `tfds.core.DatasetBuilder`; a name such as
      ``"sample_patches/jpeg"`` (looked up in `data_dir`, default
      ``~/tensorflow_datasets``); or the directory of a prepared dataset
      (``.../sample_patches/jpeg/1.0.0``, the one holding
      ``dataset_info.json``), which also works for custom config names.
      A name whose current version is not built, but an older one is, loads
      the older one (with a warning saying how to rebuild).
    data_dir: TFDS data directory for a name.

  Raises:
    FileNotFoundError: the dataset has not been built, with the command that
      builds it.
    UsageError: `name_or_builder` is not a dataset name.
  """
  if isinstance(name_or_builder, tfds.core.DatasetBuilder):
    builder = name_or_builder
  else:
    spec = os.fspath(name_or_builder)
    if tf.io.gfile.exists(tf.io.gfile.join(spec, "dataset_info.json")):
      builder = tfds.builder_from_directory(spec)
    else:
      try:
        builder = tfds.builder(spec, data_dir=data_dir)
      except tfds.core.registered.DatasetNotFoundError as e:
        raise FileNotFoundError(_not_built(spec, data_dir)) from e
      except ValueError as e:  # TFDS's name parser: a multi-line example list
        raise errors.UsageError(
            f"{spec!r} is not a dataset name ({str(e).splitlines()[0]}); a "
            "folder of images is given as folder:<path>") from None
  if not builder.is_prepared():
    older = _older_build(builder)
    if older is None:
      raise FileNotFoundError(_not_built(builder.info.full_name, data_dir))
    logging.warning(
        "%s is not built; reading the older build %s (version %s). Rebuild "
        "it for the current records: %s", builder.info.full_name, older,
        older.rsplit("/", 1)[-1], _not_built(builder.info.full_name,
                                             data_dir).split("; ", 1)[1])
    builder = tfds.builder_from_directory(older)
  features = builder.info.features
  if "context" not in features and "decoded" not in features:
    raise ValueError(f"{builder.info.full_name} is not a patch-block dataset "
                     "(neither 'decoded' tiles nor 'context' blocks)")
  return builder


def _older_build(builder) -> Optional[str]:
  """The directory of the newest other prepared version, or None."""
  parent = os.path.dirname(str(builder.data_dir).rstrip("/"))
  if not tf.io.gfile.isdir(parent):
    return None
  versions = []
  for name in tf.io.gfile.listdir(parent):
    name = name.rstrip("/")
    if (tfds.core.Version.is_valid(name) and tf.io.gfile.exists(
        tf.io.gfile.join(parent, name, "dataset_info.json"))):
      versions.append(tfds.core.Version(name))
  return tf.io.gfile.join(parent, str(max(versions))) if versions else None


def is_tile_dataset(builder) -> bool:
  """True for version 2 tile records, False for version 1 block records."""
  return "decoded" in builder.info.features


def _not_built(name, data_dir):
  parts = name.split("/")
  config = parts[1] if len(parts) > 1 else "jpeg"
  if config not in {c.name for c in blocks_dataset.default_configs()}:
    config = f"'{{\"name\": \"{config}\", ...}}'  (the JSON it was built with)"
  where = f" --data_dir {data_dir}" if data_dir else ""
  return (f"dataset {name!r} is not prepared in "
          f"{data_dir or '~/tensorflow_datasets'}; build it first, e.g. "
          f"`tfds build data_builders/{parts[0]} --config {config}{where}` "
          "(see BUILD.md, section Datasets)")


def sample_dataset(config="jpeg", data_dir: Optional[str] = None):
  """The embedded default `sample_patches/<config>`, built on first use.

  The same as ``tfds build data_builders/sample_patches --config <config>``
  (needs no download); later calls reuse the build.

  Args:
    config: a registered config name (``jpeg``, ``jp2``, ``jp2_16``) or a
      `tf_hbd.data.blocks_dataset.BlocksConfig`.
    data_dir: TFDS data directory (default ``~/tensorflow_datasets``).

  Returns:
    The prepared builder (pass it to `training_dataset`).
  """
  from data_builders.sample_patches import sample_patches_dataset_builder  # pylint: disable=g-import-not-at-top
  builder = sample_patches_dataset_builder.Builder(data_dir=data_dir,
                                                   config=config)
  if not builder.is_prepared():
    from tf_hbd import quiet  # pylint: disable=g-import-not-at-top
    with quiet.tfds_build_output():  # TFDS's lines only with --verbose
      builder.download_and_prepare()
  return builder


def dataset_size(name_or_builder, split: str = "train",
                 data_dir: Optional[str] = None) -> dict:
  """Blocks, records, bytes and bytes per block of a prepared split."""
  builder = load_builder(name_or_builder, data_dir)
  info = builder.info.splits[split]
  blocks = split_blocks(builder, split)
  return {"blocks": blocks, "records": int(info.num_examples),
          "bytes": int(info.num_bytes),
          "bytes_per_block": info.num_bytes / max(1, blocks),
          "shards": len(info.file_instructions)}


def _patch_size(builder) -> int:
  feature = "original" if is_tile_dataset(builder) else "target"
  return int(builder.info.features[feature].shape[-1])


def _metadata(builder) -> dict:
  path = tf.io.gfile.join(str(builder.data_path), "metadata.json")
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  return {}


def _file_lists(builder, split):
  instructions = builder.info.splits[split].file_instructions
  paths = [str(fi.filename) for fi in instructions]  # full paths
  skips = [int(fi.skip) for fi in instructions]
  takes = [int(fi.take) if fi.take is not None and fi.take >= 0 else -1
           for fi in instructions]
  return paths, skips, takes


def split_blocks(builder, split: str) -> int:
  """Blocks in a split (TFDS slicing allowed) of a prepared dataset.

  Version 1: its records. Version 2: ``blocks_per_split`` of the metadata
  for a whole split; for a slice (or a build without the count) the tile
  sizes of its records are summed (one pass over them).
  """
  if not is_tile_dataset(builder):
    return int(builder.info.splits[split].num_examples)
  counts = _metadata(builder).get("blocks_per_split") or {}
  if split in counts:
    return int(counts[split])
  paths, skips, takes = _file_lists(builder, split)
  spec = {"tile": tf.io.FixedLenFeature([4], tf.int64)}
  ds = tf.data.Dataset.from_tensor_slices(
      (tf.constant(paths), tf.constant(skips, tf.int64),
       tf.constant(takes, tf.int64)))
  ds = ds.flat_map(lambda p, s, t: tf.data.TFRecordDataset(p).skip(s).take(t))
  ds = ds.batch(4096).map(lambda r: tf.reduce_sum(
      tf.reduce_prod(tf.io.parse_example(r, spec)["tile"][:, 2:], axis=1)),
                          num_parallel_calls=_AUTOTUNE)
  return int(ds.reduce(tf.constant(0, tf.int64), lambda a, b: a + b))


def stored_spec(builder) -> dict:
  """The `BlockSpec` fields a prepared dataset was built with (a dict).

  Read from the dataset's metadata.json (written by every patch-block
  builder), so it also works for read-only builders and custom configs.
  """
  spec = _metadata(builder).get("spec")
  if spec:
    return spec
  config = builder.builder_config
  if isinstance(config, blocks_dataset.BlocksConfig):
    return dataclasses.asdict(config.spec)
  raise ValueError(f"{builder.info.full_name}: no block spec in its metadata;"
                   " was it built by a tf_hbd patch-block builder?")


def _parse_spec(with_codec: bool):
  spec = {
      "context": tf.io.FixedLenFeature([], tf.string),
      "target": tf.io.FixedLenFeature([], tf.string),
      "position": tf.io.FixedLenFeature([], tf.int64),
  }
  if with_codec:
    spec["bpp"] = tf.io.FixedLenFeature([], tf.float32)
    spec["codec_setting"] = tf.io.FixedLenFeature([], tf.float32)
  return spec


def _replicate(context, position):
  idx = tf.gather(tf.constant(blocks_dataset.REPLICATE_GATHER), position)
  return (tf.gather(context, idx, batch_dims=1),
          tf.fill(tf.shape(position), tf.constant(4, tf.int32)))


def to_training_batch(context, position, target, strategy: str = "paper"):
  """uint8 blocks -> the training dict (float32 in [0, 1], int32 position).

  Args:
    context: (B, 9, d, d) uint8 paper (or replicate) blocks.
    position: (B,) integer.
    target: (B, d, d) uint8.
    strategy: "paper" keeps the blocks; "replicate" converts paper blocks
      (exactly, see `tf_hbd.data.blocks_dataset.paper_to_replicate`).
  """
  position = tf.cast(position, tf.int32)
  if strategy == "replicate":
    context, position = _replicate(context, position)
  elif strategy != "paper":
    raise ValueError(f"unknown boundary strategy {strategy!r}")
  scale = tf.constant(1.0 / 255.0, tf.float32)
  return {"context": tf.cast(context, tf.float32) * scale,
          "position": position,
          "target": tf.cast(target, tf.float32) * scale}


def _codec_predicate(codec_filter, codec: str):
  """codec_filter -> None or fn(bpp, setting) -> bool tensor."""
  if codec_filter is None:
    return None
  if isinstance(codec_filter, str):
    if codec_filter != codec:
      raise ValueError(f"codec_filter={codec_filter!r}, but this dataset holds "
                       f"only {codec!r} blocks (one codec per config)")
    return None
  if callable(codec_filter):
    return codec_filter
  lo, hi = codec_filter
  return lambda bpp, setting: tf.logical_and(bpp >= lo, bpp <= hi)


def _epoch_seed(seed, epoch, salt):
  # A distinct, deterministic 63-bit seed per (seed, epoch, salt).
  x = (tf.cast(seed, tf.int64) * 1_000_003 + epoch * 7919 + salt)
  return tf.math.floormod(x * 2_654_435_761, (1 << 62) - 57)


def training_dataset(name_or_builder, split: str, batch_size: int, *,
                     data_dir: Optional[str] = None,
                     shuffle_buffer: Optional[int] = None,
                     seed: Optional[int] = None,
                     deterministic: bool = False,
                     repeat: bool = False,
                     drop_remainder: bool = True,
                     codec_filter=None,
                     strategy: Optional[str] = None,
                     start_batch: int = 0,
                     shuffle: bool = True,
                     cycle_length: int = _CYCLE_LENGTH) -> tf.data.Dataset:
  """Batches of training blocks from a prepared patch-block dataset.

  Args:
    name_or_builder: see `load_builder`.
    split: a split, TFDS slicing allowed (``"train[:10%]"``).
    batch_size: blocks per batch.
    data_dir: TFDS data directory.
    shuffle_buffer: blocks in the shuffle buffer (step 2); None sizes it to
      about 256 MiB of blocks (at most 65536); 0 disables it.
    seed: seeds both shuffles (None: a fresh order every run).
    deterministic: reproducible order (ordered parallelism); needs a seed for
      the same order across runs.
    repeat: cycle through epochs forever (each epoch freshly shuffled).
    drop_remainder: drop a last partial batch.
    codec_filter: None; a codec name (must be the dataset's); a (min_bpp,
      max_bpp) range; or fn(bpp, codec_setting) -> bool tensor, applied per
      block.
    strategy: boundary strategy of the batches: None (the config's),
      "paper", or "replicate" (tile records serve both; from version 1 paper
      blocks, replicate blocks are derived exactly).
    start_batch: resume after this many batches (see module docstring).
    shuffle: False reads the shards one after the other, in order, without
      the buffer (the order of `as_dataset(shuffle_files=False)` with
      `interleave_cycle_length=1`).
    cycle_length: shard files read concurrently.

  Returns:
    A `tf.data.Dataset` of {'context', 'position', 'target'} batches.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if start_batch < 0:
    raise ValueError(f"start_batch must be >= 0, got {start_batch}")
  builder = load_builder(name_or_builder, data_dir)
  d = _patch_size(builder)
  built = stored_spec(builder)
  stored = built["strategy"]
  strategy = strategy or stored
  if strategy not in patches.BOUNDARY_STRATEGIES:
    raise ValueError(f"unknown boundary strategy {strategy!r}")
  predicate = _codec_predicate(codec_filter, built["codec"])
  options = dict(d=d, predicate=predicate, shuffle_buffer=shuffle_buffer,
                 seed=seed, deterministic=deterministic, repeat=repeat,
                 drop_remainder=drop_remainder, start_batch=start_batch,
                 shuffle=shuffle, cycle_length=cycle_length)
  if is_tile_dataset(builder):
    return _tile_batches(builder, split, batch_size, strategy=strategy,
                         **options)
  if strategy != stored and not (stored == "paper" and
                                 strategy == "replicate"):
    raise ValueError(f"{builder.info.full_name} stores {stored!r} blocks; "
                     f"{strategy!r} blocks cannot be derived from them")
  convert = "replicate" if strategy != stored else "paper"
  return _block_batches(builder, split, batch_size, convert=convert,
                        **options)


def _block_batches(builder, split, batch_size, *, d, convert, predicate,
                   shuffle_buffer, seed, deterministic, repeat,
                   drop_remainder, start_batch, shuffle, cycle_length):
  """`training_dataset` on block records (version 1)."""
  info = builder.info.splits[split]
  files, n_files, seed_t = _seeded_files(builder, split, seed)
  num_blocks = int(info.num_examples)
  if shuffle_buffer is None:
    per_block = builder.info.splits[split.split("[")[0]].num_bytes / max(
        1, builder.info.splits[split.split("[")[0]].num_examples)
    shuffle_buffer = int(min(1 << 16, max(1024, _SHUFFLE_BYTES // max(
        1.0, per_block))))
  if not shuffle:
    shuffle_buffer = 0

  def one_epoch(epoch):
    records = _epoch_records(files, n_files, seed_t, epoch, shuffle,
                             cycle_length, deterministic)
    if shuffle_buffer > 1:
      records = records.shuffle(
          shuffle_buffer,
          seed=_epoch_seed(seed_t, epoch, 2),
          reshuffle_each_iteration=False)
    return records

  first_epoch, offset = 0, 0
  skip_after_filter = 0
  if start_batch:
    consumed = start_batch * batch_size
    if predicate is None:
      first_epoch, offset = divmod(consumed, num_blocks)
    else:  # the filtered epoch length is unknown: skip filtered blocks
      skip_after_filter = consumed
  last_epoch = (1 << 62) if repeat else 1
  ds = tf.data.Dataset.range(first_epoch, max(first_epoch, last_epoch))
  ds = ds.flat_map(one_epoch)
  if offset:
    ds = ds.skip(offset)
  ds = _parse_block_batches(ds, batch_size, d=d, convert=convert,
                            predicate=predicate,
                            skip_after_filter=skip_after_filter,
                            drop_remainder=drop_remainder,
                            deterministic=deterministic)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  ds = ds.with_options(options)
  return ds.prefetch(_AUTOTUNE)


def _parse_block_batches(records, batch_size, *, d, convert, predicate,
                         skip_after_filter, drop_remainder, deterministic):
  """Serialized block records -> training batches (selected by
  `predicate`, the first `skip_after_filter` selected blocks skipped)."""
  spec = _parse_spec(predicate is not None)

  def parse(serialized):
    ex = tf.io.parse_example(serialized, spec)
    context = tf.reshape(tf.io.decode_raw(ex["context"], tf.uint8),
                         [-1, 9, d, d])
    target = tf.reshape(tf.io.decode_raw(ex["target"], tf.uint8), [-1, d, d])
    out = {"context": context, "position": ex["position"], "target": target}
    if predicate is not None:
      keep = predicate(ex["bpp"], ex["codec_setting"])
      out = {k: tf.boolean_mask(v, keep) for k, v in out.items()}
    return out

  def convert_batch(batch):
    return to_training_batch(batch["context"], batch["position"],
                             batch["target"], convert)

  ds = records
  if predicate is None:
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(lambda s: convert_batch(parse(s)),
                  num_parallel_calls=_AUTOTUNE, deterministic=deterministic)
  # Parse in chunks, keep the selected blocks, re-batch.
  ds = ds.batch(max(batch_size, 1024)).map(
      parse, num_parallel_calls=_AUTOTUNE, deterministic=deterministic)
  ds = ds.unbatch()
  if skip_after_filter:
    ds = ds.skip(skip_after_filter)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  return ds.map(convert_batch, num_parallel_calls=_AUTOTUNE,
                deterministic=deterministic)


def _seeded_files(builder, split, seed):
  """The split's files as a dataset of (path, skip, take), their number and
  the run's seed as a tensor (`seed` None: a fresh order every run, still
  distinct per epoch). What both record versions start from."""
  paths, skips, takes = _file_lists(builder, split)
  if seed is None:
    seed = secrets.randbits(62)
  files = tf.data.Dataset.from_tensor_slices(
      (tf.constant(paths), tf.constant(skips, tf.int64),
       tf.constant(takes, tf.int64)))
  return files, len(paths), tf.constant(int(seed), tf.int64)


def _epoch_records(files, n_files, seed_t, epoch, shuffle, cycle_length,
                   deterministic):
  """Step 1 of the shuffle: the records of one epoch, files shuffled."""
  def read_file(path, skip, take):
    return tf.data.TFRecordDataset(path, buffer_size=1 << 20).skip(skip).take(
        take)
  if shuffle and n_files > 1:
    files = files.shuffle(n_files, seed=_epoch_seed(seed_t, epoch, 1))
  cycle = max(1, min(cycle_length, n_files)) if shuffle else 1
  return files.interleave(read_file, cycle_length=cycle, block_length=1,
                          num_parallel_calls=_AUTOTUNE,
                          deterministic=deterministic)


def _tile_spec():
  raw = tf.io.FixedLenFeature([], tf.string)
  return {"decoded": raw, "original": raw,
          "tile": tf.io.FixedLenFeature([4], tf.int64),
          "window": tf.io.FixedLenFeature([4], tf.int64),
          "grid_shape": tf.io.FixedLenFeature([2], tf.int64),
          "bpp": tf.io.FixedLenFeature([], tf.float32),
          "codec_setting": tf.io.FixedLenFeature([], tf.float32)}


def _tile_batches(builder, split, batch_size, *, d, strategy, predicate,
                  shuffle_buffer, seed, deterministic, repeat, drop_remainder,
                  start_batch, shuffle, cycle_length):
  """`training_dataset` on tile records (version 2)."""
  files, n_files, seed_t = _seeded_files(builder, split, seed)
  if shuffle_buffer is None:  # about 256 MiB of cut uint8 blocks
    shuffle_buffer = int(min(1 << 16, max(1024, _SHUFFLE_BYTES // (
        10 * d * d + 4))))
  if not shuffle:
    shuffle_buffer = 0
    deterministic = True  # the records' order, as documented
  spec = _tile_spec()

  def parse(serialized):
    return tf.io.parse_single_example(serialized, spec)

  def cut(ex):
    decoded = tf.reshape(tf.io.decode_raw(ex["decoded"], tf.uint8),
                         [-1, d, d])
    original = tf.reshape(tf.io.decode_raw(ex["original"], tf.uint8),
                          [-1, d, d])
    context, position, target, _ = blocks_dataset.tile_blocks(
        ex["tile"], ex["window"], ex["grid_shape"], decoded, original,
        strategy)
    return context, position, target

  def one_epoch(epoch):
    records = _epoch_records(files, n_files, seed_t, epoch, shuffle,
                             cycle_length, deterministic)
    if predicate is None:
      tiles = records.map(lambda r: cut(parse(r)),
                          num_parallel_calls=_AUTOTUNE,
                          deterministic=deterministic)
    else:
      tiles = records.map(parse, num_parallel_calls=_AUTOTUNE,
                          deterministic=deterministic)
      tiles = tiles.filter(lambda ex: tf.reshape(
          predicate(ex["bpp"], ex["codec_setting"]), []))
      tiles = tiles.map(cut, num_parallel_calls=_AUTOTUNE,
                        deterministic=deterministic)
    blocks = tiles.unbatch()
    if shuffle_buffer > 1:
      blocks = blocks.shuffle(shuffle_buffer,
                              seed=_epoch_seed(seed_t, epoch, 2),
                              reshuffle_each_iteration=False)
    return blocks

  first_epoch, offset = 0, start_batch * batch_size
  if offset and predicate is None:  # else: the filtered epoch length is unknown
    first_epoch, offset = divmod(offset, split_blocks(builder, split))
  last_epoch = (1 << 62) if repeat else 1
  ds = tf.data.Dataset.range(first_epoch, max(first_epoch, last_epoch))
  ds = ds.flat_map(one_epoch)
  if offset:
    ds = ds.skip(offset)
  ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.map(lambda c, p, t: to_training_batch(c, p, t),
              num_parallel_calls=_AUTOTUNE, deterministic=deterministic)
  options = tf.data.Options()
  options.deterministic = bool(deterministic)
  ds = ds.with_options(options)
  return ds.prefetch(_AUTOTUNE)


# ------------------------------------------------------------- in memory

@dataclasses.dataclass
class BlockArrays:
  """All blocks of a set of images, in memory (uint8, as stored).

  Attributes:
    context: (N, 9, d, d) uint8; position: (N,) int32; target: (N, d, d)
    uint8; bpp: (N,) float32 achieved rate of the block's image;
    codec_setting: (N,) float32; image_index: (N,) int32 index into
    `image_ids`; coords: (N, 2) int32; image_ids: list of str;
    strategy: of the stored blocks.
  """
  context: np.ndarray
  position: np.ndarray
  target: np.ndarray
  bpp: np.ndarray
  codec_setting: np.ndarray
  image_index: np.ndarray
  coords: np.ndarray
  image_ids: list
  strategy: str = "paper"

  def __len__(self):
    return int(self.context.shape[0])

  @property
  def nbytes(self) -> int:
    return int(sum(getattr(self, f.name).nbytes for f in dataclasses.fields(
        self) if isinstance(getattr(self, f.name), np.ndarray)))

  def to_dataset(self, batch_size: int, *, shuffle: bool = True,
                 seed: Optional[int] = None, repeat: bool = False,
                 drop_remainder: bool = True, strategy: Optional[str] = None,
                 start_batch: int = 0) -> tf.data.Dataset:
    """Training batches, as `training_dataset` yields them.

    The whole array set is the shuffle buffer (a seeded permutation per
    epoch); `start_batch` resumes exactly (deterministic for a given seed).
    """
    n = len(self)
    if n == 0:
      raise ValueError("no blocks")
    strategy = strategy or self.strategy
    if strategy != self.strategy and not (self.strategy == "paper"
                                          and strategy == "replicate"):
      raise ValueError(f"cannot derive {strategy!r} from {self.strategy!r}")
    convert = "replicate" if strategy != self.strategy else "paper"
    arrays = {"context": tf.constant(self.context),
              "position": tf.constant(self.position),
              "target": tf.constant(self.target)}
    if seed is None:
      seed = secrets.randbits(62)
    seed_t = tf.constant(int(seed), tf.int64)

    def one_epoch(epoch):
      idx = tf.data.Dataset.range(n)
      if shuffle:
        idx = idx.shuffle(n, seed=_epoch_seed(seed_t, epoch, 3),
                          reshuffle_each_iteration=False)
      return idx

    first_epoch, offset = divmod(start_batch * batch_size, n)
    last_epoch = (1 << 62) if repeat else 1
    ds = tf.data.Dataset.range(first_epoch, max(first_epoch, last_epoch))
    ds = ds.flat_map(one_epoch).skip(offset)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda i: to_training_batch(
        tf.gather(arrays["context"], i), tf.gather(arrays["position"], i),
        tf.gather(arrays["target"], i), convert),
                num_parallel_calls=_AUTOTUNE, deterministic=True)
    return ds.prefetch(_AUTOTUNE)


def _estimate_blocks(shape, square, max_side, d):
  h, w = shape
  if square:
    s = min(h, w, square)
    h = w = s
  if max_side and max(h, w) > max_side:
    scale = max_side / max(h, w)
    h, w = max(1, round(h * scale)), max(1, round(w * scale))
  return -(-h // d) * -(-w // d)


def blocks_from_images(named_images: Iterable[Tuple[str, np.ndarray]],
                       codec: str = "jpeg", *,
                       bpp_range=blocks_dataset.DEFAULT_BPP_RANGE,
                       quality: Optional[float] = None, patch_size: int = 8,
                       strategy: str = "paper", seed: int = 0,
                       max_side: Optional[int] = None,
                       square: int = 0,
                       rate_search: bool = True) -> BlockArrays:
  """Blocks of in-memory gray images, exactly as the TFDS builders make them.

  Args:
    named_images: (image_id, uint8 gray (H, W)) pairs; the id seeds the rate.
    codec: "jpeg" or "jp2".
    bpp_range: per-image target rate range (uniform, seeded by the id).
    quality: fixed codec setting instead of a rate.
    patch_size, strategy, seed, max_side: see `tf_hbd.data.blocks_dataset.
      BlockSpec`.
    square: centre-crop to a square of at most this side (0: keep).
    rate_search: see `tf_hbd.data.blocks_dataset.BlockSpec`; False (jp2 only)
      gives the blocks of the registered ``jp2``/``jp2_16`` configs (one
      encode per image); the default True searches the rate.
  """
  spec = blocks_dataset.BlockSpec(codec=codec, patch_size=patch_size,
                                  strategy=strategy, bpp_range=bpp_range,
                                  quality=quality, seed=seed,
                                  max_side=max_side, rate_search=rate_search)
  parts = collections.defaultdict(list)
  ids = []
  for image_id, gray in named_images:
    gray = blocks_dataset.prepare_image(gray, square, spec.max_side)
    blocks, enc = blocks_dataset.image_blocks(image_id, gray, spec)
    n = len(blocks)
    parts["context"].append(blocks.context)
    parts["position"].append(blocks.position.astype(np.int32))
    parts["target"].append(blocks.target)
    parts["bpp"].append(np.full(n, enc.bpp, np.float32))
    parts["codec_setting"].append(np.full(n, enc.setting, np.float32))
    parts["image_index"].append(np.full(n, len(ids), np.int32))
    parts["coords"].append(blocks.coords.astype(np.int32))
    ids.append(image_id)
  if not ids:
    raise ValueError("no images given")
  return BlockArrays(**{k: np.concatenate(v) for k, v in parts.items()},
                     image_ids=ids, strategy=strategy)


def _warn(message: str) -> None:
  print(message, file=sys.stderr, flush=True)


def blocks_from_folder(folder: str, codec: str = "jpeg", *,
                       bpp_range=blocks_dataset.DEFAULT_BPP_RANGE,
                       quality: Optional[float] = None, patch_size: int = 8,
                       strategy: str = "paper", seed: int = 0,
                       max_side: Optional[int] = None, square: int = 0,
                       limit: Optional[int] = None,
                       max_bytes: int = 4 << 30,
                       rate_search: bool = True,
                       on_skip: Callable[[str], None] = _warn) -> BlockArrays:
  """Blocks of every image of a folder (recursive) or glob, in memory.

  Gives the same blocks as ``tfds build data_builders/folder_patches`` with
  the same settings, where the image id is the path relative to `folder` (for
  a glob: the file name).

  Args:
    folder: a folder, a glob, or one file.
    limit: use only the first `limit` images (sorted by path).
    max_bytes: refuse (`ResourceLimitError`) when the blocks would need more
      memory than this (estimated from the image headers first).
    on_skip: called with a one-line warning for every unreadable image,
      which is skipped (default: printed to stderr), once the blocks are
      built; none readable raises `ImageReadError` (one message, no
      warnings).
    Other args: as `blocks_from_images`.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  files = images.list_images(folder)
  if limit is not None:
    files = files[:limit]
  base = folder if os.path.isdir(folder) else None
  estimate, readable, skipped = 0, [], []  # skipped: (file, why)
  for f in files:
    try:
      with Image.open(f) as img:
        estimate += _estimate_blocks((img.height, img.width), square,
                                     max_side, patch_size)
      readable.append(f)
    except (OSError, SyntaxError, ValueError, EOFError,
            Image.DecompressionBombError) as e:
      skipped.append((f, images.pillow_reason(e)))
  files = readable
  if not files:
    raise none_readable(folder, skipped)
  need = estimate * (10 * patch_size * patch_size + 24)
  if need > max_bytes:
    raise errors.ResourceLimitError(
        f"{len(files)} images of {folder} make about {estimate} blocks "
        f"({need / 2**30:.2f} GiB in memory), over max_bytes="
        f"{max_bytes / 2**30:.2f} GiB; build them with `tfds build "
        f"data_builders/folder_patches` instead, or raise max_bytes/limit")
  read = []

  def named():
    for f in files:
      name = (os.path.relpath(f, base).replace(os.sep, "/") if base else
              os.path.basename(f))
      try:
        gray = images.load_image(f).gray
      except errors.ImageReadError as e:  # header fine, pixels corrupt
        skipped.append((f, e.reason))
        continue
      read.append(f)
      yield name, gray

  try:
    arrays = blocks_from_images(named(), codec, bpp_range=bpp_range,
                                quality=quality, patch_size=patch_size,
                                strategy=strategy, seed=seed,
                                max_side=max_side, square=square,
                                rate_search=rate_search)
  except ValueError:
    if read:
      raise
    raise none_readable(folder, skipped) from None
  for f, why in skipped:  # only when some image was read: else one line
    on_skip(skipped_line(f, why))
  return arrays


def skipped_line(path: str, why: str) -> str:
  """The warning for a training image that is skipped (unreadable)."""
  return f"warning: skipping the unreadable training image {path} ({why})"


def none_readable(folder: str, skipped: Sequence[Tuple[str, str]]
                  ) -> errors.ImageReadError:
  """The one error of a folder none of whose images can be read.

  Args:
    folder: the folder (or sources) given.
    skipped: (file, why) of every unreadable image, at least one.
  """
  f, why = skipped[0]
  more = f"; {len(skipped) - 1} more" if len(skipped) > 1 else ""
  return errors.ImageReadError(
      folder, f"none of its {len(skipped)} image files can be read "
      f"({f}: {why}{more}); replace them or give another folder")


# ------------------------------------------------------------ whole images

@dataclasses.dataclass
class EvalImage:
  """An image for evaluation.

  Attributes:
    name: path relative to the folder (file name for a glob or a list).
    gray: uint8 (H, W) working image (16-bit sources divided by 257).
    original: the samples as read (uint8 or uint16; may have channels), or
      None for an image made in memory.
    bit_depth: 8 or 16.
    decoded: the codec's reconstruction of `gray` (uint8) or None.
    encoded: the `tf_hbd.codecs.legacy.Encoded` stream or None.
  """
  name: str
  gray: np.ndarray
  original: Optional[np.ndarray] = None
  bit_depth: int = 8
  decoded: Optional[np.ndarray] = None
  encoded: Optional[codecs.Encoded] = None


def load_images(folder_or_glob: Union[str, Sequence[str]], *,
                codec: Optional[str] = None,
                bpp: Optional[float] = None, quality: Optional[float] = None,
                max_side: Optional[int] = None,
                limit: Optional[int] = None) -> Iterator[EvalImage]:
  """Yields the images of a folder (recursive), a glob or one file, sorted.

  Args:
    folder_or_glob: where the images are (8- or 16-bit, any Pillow format),
      or a list of image files.
    codec: if given, each image is also compressed and decoded with it, at
      the target `bpp` or the fixed `quality` (exactly one of them).
    max_side: downsample (Lanczos) so that the longer side is at most this.
    limit: stop after this many images.

  Raises:
    ImageReadError: no images, or an unreadable file (naming it).
  """
  if codec is not None and (bpp is None) == (quality is None):
    raise ValueError("with a codec, give exactly one of bpp= or quality=")
  if codec is None and (bpp is not None or quality is not None):
    raise ValueError("bpp=/quality= need a codec")
  if isinstance(folder_or_glob, (list, tuple)):
    files, base = list(folder_or_glob), None
  else:
    files = images.list_images(folder_or_glob)
    spec = os.fspath(folder_or_glob)
    base = spec if os.path.isdir(spec) else None
  if limit is not None:
    files = files[:limit]
  for f in files:
    loaded = images.load_image(f)
    gray = images.maybe_resize_max(loaded.gray, max_side)
    name = (os.path.relpath(f, base).replace(os.sep, "/") if base else
            os.path.basename(f))
    out = EvalImage(name, gray, loaded.original, loaded.bit_depth)
    if codec is not None:
      out.decoded, out.encoded = codecs.roundtrip(gray, codec, bpp=bpp,
                                                  quality=quality)
    yield out
