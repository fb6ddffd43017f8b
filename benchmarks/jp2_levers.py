"""What the JPEG 2000 training levers cost per step, and their gradient scale.

Two measurements for planning a JPEG 2000 campaign (issue 12):

1. **Step time** of the real BPTT train step (`tf_hbd.training.algorithms`,
   clip, Adam; LSTM-n tied, K steps, bfloat16 products, setting input) for
   the loss variants of ``--loss_norm`` (none, ratio per image, ratio per
   patch, log_ratio) at d = 8, and the plain loss at d = 16 (and any
   ``--patch_sizes``). Timings alternate between the variants so a shared
   machine's load hits all alike; medians, blocks/s and *pixels*/s (a d = 16
   block corrects 4x the pixels of a d = 8 one).
2. **Gradient norms** at given weights (``--init_from``, e.g. the shipped
   `hbd-lstm-jp2`) on real JPEG 2000 batches of the training stream
   (`tf_hbd.data.recompress`, train400 at ``--jp2_bpp``): the median global
   norm of each loss variant's gradient before clipping, against
   ``--clip_norm`` (13 in every shipped recipe), to choose the clip of a
   normalised-loss run.

  python benchmarks/jp2_levers.py --train=../shared/data/train400 \\
      --init_from=tf_hbd/pretrained/hbd-lstm-jp2
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd.data import recompress  # pylint: disable=g-import-not-at-top
from tf_hbd.data import train_inputs  # pylint: disable=g-import-not-at-top
from tf_hbd.model import decoder as decoder_lib  # pylint: disable=g-import-not-at-top
from tf_hbd.training import algorithms  # pylint: disable=g-import-not-at-top
from tf_hbd.training import trainer as training  # pylint: disable=g-import-not-at-top

import train_step  # pylint: disable=g-import-not-at-top  # benchmarks/, the script's folder

# name -> (loss_norm, loss_norm_scope)
LOSSES = {"plain": ("none", "patch"), "ratio_image": ("ratio", "image"),
          "ratio_patch": ("ratio", "patch"), "log_ratio": ("log_ratio",
                                                           "patch")}


def _algo(loss, n, k, d, eps):
  norm, scope = LOSSES[loss]
  model = decoder_lib.build_decoder(
      "lstm", units=n, patch_size=d, K=k, boundary="replicate",
      center_inputs=True, setting_size=1, matmul_dtype="bfloat16", seed=1)
  return algorithms.make_algorithm("bptt", model, K=k, alpha=1.0,
                                   loss_norm=norm, loss_norm_scope=scope,
                                   loss_norm_eps=eps)


def _random_batch(b, d, rng):
  target = rng.uniform(0, 1, (b, d, d))
  context = np.clip(target[:, None] + rng.normal(0, 0.05, (b, 9, d, d)), 0, 1)
  return {"context": tf.constant(context, tf.float32),
          "position": tf.constant(np.full(b, 4), tf.int32),
          "target": tf.constant(target, tf.float32),
          "setting": tf.constant(rng.uniform(-1, 0, (b, 1)), tf.float32),
          "codec_error": tf.constant(np.tile([0.02, 0.001], (b, 1)),
                                     tf.float32)}


def _step_fn(algo, batch, clip):
  opt = training.make_optimizer("adam", 1e-4)
  opt.build(algo.variables)

  def apply(grads):
    grads, _ = tf.clip_by_global_norm(grads, clip)
    opt.apply_gradients(zip(grads, algo.variables))

  step = tf.function(lambda x: algo.train_step(x, apply))
  return lambda: step(batch)["loss"].numpy()


def step_times(args, rng):
  """Prints the step time of each variant (module docstring, 1)."""
  b, n, k = args.batch_size, args.units, args.K
  variants = [(loss, 8) for loss in args.losses.split(",")]
  variants += [("plain", int(d)) for d in args.patch_sizes.split(",") if d]
  fns = [_step_fn(_algo(loss, n, k, d, args.eps), _random_batch(b, d, rng),
                  args.clip_norm) for loss, d in variants]
  times = train_step.interleaved_medians(fns, args.repeats)
  print(f"step time, LSTM-{n} tied, K={k}, batch {b}, bfloat16, BPTT; load "
        f"average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
  print(f"{'loss':12s} {'d':>3s} {'step ms':>8s} {'x plain d=8':>11s} "
        f"{'blocks/s':>9s} {'kpixels/s':>10s}")
  for (loss, d), t in zip(variants, times):
    print(f"{loss:12s} {d:3d} {1e3 * t:8.1f} {t / times[0]:11.2f} "
          f"{b / t:9.0f} {b * d * d / t / 1e3:10.0f}")


def grad_norms(args):
  """Prints the gradient norm of each loss at `--init_from` (docstring, 2)."""
  images = train_inputs.source_images(args.train)
  cfg = recompress.RecompressConfig(
      codec="jp2", patch_size=8, synthetic_fraction=0.0, tone_fraction=0.0,
      bpp_range=recompress.parse_bpp_range(args.jp2_bpp), codec_error=True)
  stream = recompress.RecompressStream(images, cfg, args.batch_size, seed=1)
  batches = []
  for i, x in enumerate(stream.numpy_batches(0)):
    if i == args.batches:
      break
    batches.append({"context": tf.constant(x["context"] / 255.0, tf.float32),
                    "position": tf.constant(x["position"]),
                    "target": tf.constant(x["target"] / 255.0, tf.float32),
                    "setting": tf.constant(x["setting"]),
                    "codec_error": tf.constant(x["codec_error"])})
  print(f"gradient norm before clipping at {args.init_from or 'fresh'} "
        f"weights, {len(batches)} train400 batches of {args.batch_size} at "
        f"{args.jp2_bpp} bpp (clip {args.clip_norm})")
  print(f"{'loss':12s} {'loss':>9s} {'median norm':>11s} {'max norm':>9s} "
        f"{'x plain':>8s}")
  first = None
  for loss in args.losses.split(","):
    algo = _algo(loss, args.units, args.K, 8, args.eps)
    if args.init_from:
      decoder_lib.warm_start(algo.model, args.init_from)
    norms, values = [], []
    for batch in batches:
      grads, metrics = algo.gradients(batch)
      norms.append(float(tf.linalg.global_norm(grads)))
      values.append(float(metrics["loss"]))
    med = statistics.median(norms)
    first = first or med
    print(f"{loss:12s} {np.mean(values):9.4f} {med:11.3f} {max(norms):9.3f} "
          f"{med / first:8.1f}")


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--units", type=int, default=512)
  p.add_argument("--K", type=int, default=4)
  p.add_argument("--batch_size", type=int, default=256)
  p.add_argument("--losses", default="plain,ratio_image,ratio_patch,log_ratio")
  p.add_argument("--patch_sizes", default="16",
                 help="plain-loss patch sizes timed besides d=8")
  p.add_argument("--eps", type=float, default=1.0,
                 help="--loss_norm_eps (8-bit levels squared)")
  p.add_argument("--clip_norm", type=float, default=13.0)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--train", default="",
                 help="training images for the gradient norms (empty: skip)")
  p.add_argument("--init_from", default="")
  p.add_argument("--jp2_bpp", default="0.15-1")
  p.add_argument("--batches", type=int, default=4)
  p.add_argument("--skip_times", action="store_true")
  args = p.parse_args(argv)
  if not args.skip_times:
    step_times(args, np.random.default_rng(0))
  if args.train:
    grad_norms(args)
  return 0


if __name__ == "__main__":
  sys.exit(main())
