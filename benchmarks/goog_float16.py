"""What does storing GOOG's kernels in float16 cost? (issue 13)

Exports a GOOG model (a campaign snapshot or run, `tf_hbd.baselines.folders`)
twice, with its convolution kernels stored in float32 and in float16
(`tf_hbd.baselines.goog.stored_twin`; both compute in float32), prints both
SavedModels' sizes (with --fit_dir: with entropy-coder tables fitted on that
many training images, whose size does not depend on the image count) and the
mean PSNR over the gray images of --images after every iteration k = 1..16
for each (what decoding the first k iterations of a file gives, in one
graph pass), and their difference. It checks on the first image that each
SavedModel's files decode exactly to what was measured.

Usage (Kodak is a test set: measured on, never fitted on):
  python benchmarks/goog_float16.py --model=campaigns/baselines/goog \
      --images=/work/shared/data/kodak --fit_dir=/work/shared/data/train400 \
      --max_fit_images=8

Exit codes: 0 done, 2 bad input (a one-line message says what to do).
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd import errors  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import folders  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import goog  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import ship  # pylint: disable=g-import-not-at-top
from tf_hbd.baselines import training  # pylint: disable=g-import-not-at-top
from tf_hbd.codecs import images  # pylint: disable=g-import-not-at-top
from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top

WEIGHTS = ("float32", "float16")


def parse(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", required=True,
                      help="GOOG campaign snapshot or run folder")
  parser.add_argument("--images", required=True,
                      help="folder or glob of the images to measure on")
  parser.add_argument("--max_images", type=int, default=None)
  parser.add_argument("--fit_dir", default=None,
                      help="training images for the tables (size only)")
  parser.add_argument("--max_fit_images", type=int, default=8)
  return parser.parse_args(argv)


def load(args):
  """(Keras model, gray images, fit images or None); HbdError if bad."""
  found = folders.find(args.model)
  if len(found) != 1 or found[0].family != "goog":
    raise errors.HbdError(f"{args.model}: expected one GOOG model")
  model = folders.build_model(found[0])
  files = images.list_images(args.images)[:args.max_images]
  if not files:
    raise errors.HbdError(f"{args.images}: no image; give a folder of images")
  grays = [images.load_image(f).gray for f in files]
  fit = None
  if args.fit_dir:
    folders.check_fit_dir(args.fit_dir)
    fit = training.load_validation_images(args.fit_dir, args.max_fit_images)
  return model, grays, fit


def sizes(model, fit, work) -> dict:
  """{weights: (SavedModel bytes, variables bytes, path)}."""
  out = {}
  for weights in WEIGHTS:
    path = goog.export(model, os.path.join(work, weights), fit_images=fit,
                       weights=weights)
    out[weights] = (ship.folder_bytes(path),
                    ship.folder_bytes(os.path.join(path, "variables")), path)
  return out


def all_iterations(model):
  """A graph function: gray uint8 (H, W, 1) -> uint8 (16, H, W, 1), the
  reconstruction after each iteration (the computation of `GoogExport`,
  traced as a graph like the SavedModel's; eager execution of a float16
  twin can round differently)."""
  module = goog.GoogExport(model)

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec((None, None, 1), tf.uint8)])
  def run(image):
    x, padded = module._prepare(image)  # pylint: disable=protected-access
    enc, dec = model.initial_state(1, padded[0], padded[1])
    x_hat, out = tf.zeros_like(x), []
    for _ in range(goog.MAX_ITERATIONS):
      codes, enc = model.encode_step(x - x_hat, enc)
      delta, dec = model.decode_step(codes, dec)
      x_hat = x_hat + delta
      out.append(module._to_image(  # pylint: disable=protected-access
          x_hat, tf.shape(image)[:2]))
    return tf.stack(out)
  run.module = module  # keeps it alive
  return run


def psnr_per_k(model, grays) -> np.ndarray:
  """Mean PSNR over `grays` after each of the 16 iterations."""
  run, total = all_iterations(model), np.zeros(goog.MAX_ITERATIONS)
  for gray in grays:
    recs = run(tf.constant(gray[..., None])).numpy()[..., 0]
    total += [metrics.psnr(gray, r) for r in recs]
  return total / len(grays)


def check_export(path, model, gray) -> int:
  """How many of k = 1..16 the SavedModel at `path` decodes (the first k
  iterations of its 16-iteration codes) exactly as measured."""
  module = tf.saved_model.load(path)
  image = tf.constant(gray[..., None])
  codes = module.compress(image, tf.constant(goog.MAX_ITERATIONS))
  recs = all_iterations(model)(image).numpy()
  return sum(np.array_equal(module.decompress(
      codes[:k], tf.constant(gray.shape, tf.int32)).numpy(), recs[k - 1])
             for k in range(1, goog.MAX_ITERATIONS + 1))


def report(size, psnr, exact, n):
  print("SavedModel sizes (bytes; variables in parentheses):")
  for weights in WEIGHTS:
    print(f"  {weights}: {size[weights][0]:,} ({size[weights][1]:,})")
  print(f"\nMean PSNR (dB) over {n} images, gray, after k iterations:\n")
  print("| k | float32 | float16 | float16 - float32 |")
  print("|---|---|---|---|")
  for k in range(goog.MAX_ITERATIONS):
    a, b = psnr["float32"][k], psnr["float16"][k]
    print(f"| {k + 1} | {a:.4f} | {b:.4f} | {b - a:+.4f} |")
  diff = psnr["float16"] - psnr["float32"]
  print(f"\nlargest |difference|: {np.abs(diff).max():.4f} dB; SavedModel "
        f"files decode as measured (first image, k = 1..16): "
        + ", ".join(f"{w} {exact[w]}/16" for w in WEIGHTS))


def main(argv=None):
  args = parse(argv)
  try:
    model, grays, fit = load(args)
  except (errors.HbdError, OSError, ValueError) as e:
    print(f"goog_float16: {e}", file=sys.stderr)
    return 2
  twins = {w: goog.stored_twin(model, w) for w in WEIGHTS}
  with tempfile.TemporaryDirectory(prefix="goog_float16_") as work:
    size = sizes(model, fit, work)
    exact = {w: check_export(size[w][2], twins[w], grays[0])
             for w in WEIGHTS}
  psnr = {w: psnr_per_k(twins[w], grays) for w in WEIGHTS}
  report(size, psnr, exact, len(grays))
  return 0


if __name__ == "__main__":
  sys.exit(main())
