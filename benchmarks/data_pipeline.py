"""Data throughput: records built/s, blocks delivered/s vs blocks trained/s.

In one run, on the machine it runs on:

(a) **build**: `folder_patches` (jpeg, d=8, plain build) over the first
    ``--build_images`` images of ``--images``: records written per second, and
    bytes per stored block;
(b) **pipeline**: `tf_hbd.data.training_dataset` over that build (batch 256,
    two-step shuffle, repeat): blocks delivered per second, in the default
    (parallel, non-deterministic) and in the deterministic mode;
(c) **training**: blocks consumed per second by one BPTT training step of an
    LSTM-512 HBD with K=4 and batch 256 (`tf_hbd.algorithms` BPTT + SGD with
    gradient clipping, compiled with tf.function) on a fixed batch, on the
    default device (a GPU if TensorFlow sees one). If the decoder or the
    algorithms cannot be imported, a plain matmul workload of the same size
    stands in (reported as such).

Prints a table and the ratio (b) / (c); the target is >= 5. ``--json PATH``
also writes the numbers.

  .venv/bin/python benchmarks/data_pipeline.py                # defaults
  .venv/bin/python benchmarks/data_pipeline.py --build_images 20 --json r.json
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

from tf_hbd import data  # pylint: disable=g-import-not-at-top
from tf_hbd import images as images_lib  # pylint: disable=g-import-not-at-top

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_rate(image_folder, n_images, work_dir, config="jpeg"):
  """(a): builds folder_patches on n images; returns stats and the builder."""
  from data_builders.folder_patches import folder_patches_dataset_builder  # pylint: disable=g-import-not-at-top
  files = images_lib.list_images(image_folder)[:n_images]
  manual = os.path.join(work_dir, "images")
  os.makedirs(manual, exist_ok=True)
  for f in files:
    shutil.copy(f, manual)
  builder = folder_patches_dataset_builder.Builder(
      data_dir=os.path.join(work_dir, "tfds"), config=config)
  t0 = time.perf_counter()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual))
  seconds = time.perf_counter() - t0
  size = data.dataset_size(builder, "train")
  return {"images": len(files), "records": size["blocks"],
          "seconds": seconds, "records_per_s": size["blocks"] / seconds,
          "bytes_per_block": size["bytes_per_block"]}, builder


def pipeline_rate(builder_or_name, batch_size, batches, deterministic,
                  data_dir=None, warmup=20):
  """(b): blocks per second delivered by the training pipeline."""
  ds = data.training_dataset(builder_or_name, "train", batch_size,
                             data_dir=data_dir, seed=0, repeat=True,
                             deterministic=deterministic)
  it = iter(ds)
  for _ in range(warmup):
    next(it)
  t0 = time.perf_counter()
  n = 0
  for _ in range(batches):
    b = next(it)
    n += int(b["position"].shape[0])
  seconds = time.perf_counter() - t0
  return {"batches": batches, "seconds": seconds, "blocks_per_s": n / seconds}


def _bptt_step(units, K, patch_size):
  from tf_hbd import algorithms  # pylint: disable=g-import-not-at-top
  from tf_hbd import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
  model = decoder_lib.build_decoder("lstm", units=units, patch_size=patch_size,
                                    K=K)
  algo = algorithms.make_algorithm("bptt", model)
  opt = tf.keras.optimizers.SGD(learning_rate=2e-4)

  def apply(grads):
    grads, _ = tf.clip_by_global_norm(grads, 13.0)
    opt.apply_gradients(zip(grads, algo.variables))

  @tf.function
  def step(batch):
    return algo.train_step(batch, apply)["loss"]
  return step, f"BPTT train_step, HybridDecoder(lstm, {units}), K={K}, SGD"


def _matmul_step(units, K, patch_size):
  """Stand-in: an LSTM-sized forward/backward with plain matmuls."""
  m = 9 * patch_size * patch_size
  w_in = tf.Variable(tf.random.uniform((m, units), -0.05, 0.05))
  w = tf.Variable(tf.random.uniform((2 * units, 4 * units), -0.05, 0.05))
  w_out = tf.Variable(tf.random.uniform((units, patch_size * patch_size),
                                        -0.05, 0.05))
  variables = [w_in, w, w_out]
  opt = tf.keras.optimizers.SGD(learning_rate=2e-4)

  @tf.function
  def step(batch):
    b = tf.shape(batch["context"])[0]
    x = tf.reshape(batch["context"], [b, m])
    target = tf.reshape(batch["target"], [b, -1])
    with tf.GradientTape() as tape:
      e = x @ w_in
      h = tf.zeros([b, units])
      c = tf.zeros([b, units])
      loss = 0.0
      for _ in range(K):
        z = tf.concat([e, h], 1) @ w
        i, f, o, g = tf.split(z, 4, axis=1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        loss += tf.reduce_mean(tf.square(h @ w_out - target))
    grads = tape.gradient(loss, variables)
    opt.apply_gradients(zip(grads, variables))
    return loss
  return step, f"matmul stand-in (LSTM-{units}-sized, K={K})"


def training_rate(batch, units, K, steps, warmup=3):
  """(c): blocks per second consumed by one training step."""
  patch_size = int(batch["target"].shape[-1])
  try:
    step, what = _bptt_step(units, K, patch_size)
  except (ImportError, AttributeError, TypeError, ValueError) as e:
    print(f"[training] BPTT unavailable ({type(e).__name__}: {e}); using the "
          "matmul stand-in")
    step, what = _matmul_step(units, K, patch_size)
  batch = {k: tf.identity(v) for k, v in batch.items()}  # on the device
  for _ in range(warmup):
    step(batch).numpy()
  t0 = time.perf_counter()
  for _ in range(steps):
    loss = step(batch)
  loss.numpy()
  seconds = time.perf_counter() - t0
  b = int(batch["position"].shape[0])
  return {"what": what, "steps": steps, "seconds": seconds,
          "step_ms": 1000 * seconds / steps, "blocks_per_s": b * steps / seconds,
          "device": (tf.config.list_logical_devices("GPU") or
                     tf.config.list_logical_devices("CPU"))[0].name}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--images", default=os.path.join(
      _REPO, "..", "shared", "data", "train400"))
  parser.add_argument("--build_images", type=int, default=50)
  parser.add_argument("--batch_size", type=int, default=256)
  parser.add_argument("--pipeline_batches", type=int, default=300)
  parser.add_argument("--train_steps", type=int, default=20)
  parser.add_argument("--units", type=int, default=512)
  parser.add_argument("--K", type=int, default=4)
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)

  work = tempfile.mkdtemp(prefix="hbd_bench_")
  try:
    built, builder = build_rate(args.images, args.build_images, work)
    print(f"(a) build: {built['records']} records from {built['images']} "
          f"images in {built['seconds']:.1f} s = {built['records_per_s']:.0f} "
          f"records/s; {built['bytes_per_block']:.1f} bytes/block")
    fast = pipeline_rate(builder, args.batch_size, args.pipeline_batches,
                         deterministic=False)
    det = pipeline_rate(builder, args.batch_size, args.pipeline_batches,
                        deterministic=True)
    print(f"(b) pipeline: {fast['blocks_per_s']:.0f} blocks/s (parallel), "
          f"{det['blocks_per_s']:.0f} blocks/s (deterministic)")
    batch = next(iter(data.training_dataset(builder, "train",
                                            args.batch_size, seed=0)))
    train = training_rate(batch, args.units, args.K, args.train_steps)
    print(f"(c) training: {train['what']} on {train['device']}: "
          f"{train['step_ms']:.1f} ms/step = {train['blocks_per_s']:.0f} "
          "blocks/s")
    ratio = fast["blocks_per_s"] / train["blocks_per_s"]
    ratio_det = det["blocks_per_s"] / train["blocks_per_s"]
    verdict = "meets" if ratio >= 5 else "MISSES"
    print(f"ratio pipeline/training = {ratio:.1f}x (deterministic "
          f"{ratio_det:.1f}x); {verdict} the >= 5x target")
    result = {"build": built, "pipeline": fast,
              "pipeline_deterministic": det, "training": train,
              "ratio": ratio, "ratio_deterministic": ratio_det,
              "cpus": os.cpu_count(), "machine": platform.platform(),
              "tensorflow": tf.__version__}
    if args.json:
      with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    return result
  finally:
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  main()
