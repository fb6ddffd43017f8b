"""Quick measurement of the decoder options against the paper's plain form.

Trains small LSTM decoders briefly with BPTT (Adam, eq. 17 in its batch-mean
form, gradient norm clipped to 13 as in the paper) on JPEG blocks of
``train400`` and reports the validation PSNR of `tf_hbd.inference.refine` on a few
``bsd68`` images next to the PSNR of the JPEG input. Every configuration
sees the same data in the same order for the same wall-clock budget.

Configurations: use_position x residual under the ``paper`` boundary rule
(plain = neither option, the paper's form), and the plain and residual forms
under ``replicate`` for reference (there the target is always at position 4,
so the position input is a constant).

This is a smoke-scale measurement (minutes of CPU, a 128-unit LSTM), not a
reproduction of the paper's training; the real training algorithms live in
`tf_hbd.training.algorithms`.

Usage (nice'd, in the background, from the repository root):
  nice -n 19 .venv/bin/python benchmarks/decoder_options.py \
      --seconds 90 --out runs/decoder_options.json
  # or the same number of updates for every configuration:
  nice -n 19 .venv/bin/python benchmarks/decoder_options.py \
      --steps 9000 --out runs/decoder_options_steps.json
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_hbd.codecs import legacy as codecs  # pylint: disable=g-import-not-at-top
from tf_hbd.model import decoder
from tf_hbd.codecs import images
from tf_hbd.model import losses
from tf_hbd.evaluation import metrics
from tf_hbd.codecs import patches
from tf_hbd.inference import refine

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "shared", "data")

CONFIGS = {  # name: (boundary, use_position, residual)
    "plain": ("paper", False, False),
    "position": ("paper", True, False),
    "residual": ("paper", False, True),
    "position+residual": ("paper", True, True),
    "replicate-plain": ("replicate", False, False),
    "replicate-residual": ("replicate", False, True),
}


def jpeg_pairs(folder, quality, limit=None):
  paths = images.list_images(folder)[:limit]
  out = []
  for path in paths:
    img = images.load_image(path).gray
    decoded, enc = codecs.roundtrip(img, "jpeg", quality=quality)
    out.append((img, decoded, enc.bpp))
  return out


def training_blocks(pairs, d, strategy):
  ctx, pos, tgt = [], [], []
  for img, decoded, _ in pairs:
    blocks = patches.blocks_from_image(decoded, d, strategy, original=img)
    ctx.append(blocks.context)
    pos.append(blocks.position)
    tgt.append(blocks.target)
  return (np.concatenate(ctx), np.concatenate(pos).astype(np.int32),
          np.concatenate(tgt))


def train(model, data, seconds, batch_size, lr, seed, max_steps=None):
  ctx, pos, tgt = data
  opt = tf.keras.optimizers.Adam(lr, global_clipnorm=13.0)
  d2 = model.pixels

  @tf.function
  def step(c, p, t):
    c = tf.cast(c, tf.float32) / 255.0
    t = tf.reshape(tf.cast(t, tf.float32) / 255.0, [-1, d2])
    with tf.GradientTape() as tape:
      recons = model({"context": c, "position": p}, training=True)
      loss = losses.distortion(t, recons, form="batch_mean")
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  rng = np.random.default_rng(seed)
  order = rng.permutation(len(ctx))
  steps, recent, start = 0, [], time.perf_counter()
  while (steps < max_steps if max_steps else
         time.perf_counter() - start < seconds):
    i = (steps * batch_size) % (len(order) - batch_size)
    idx = order[i:i + batch_size]
    recent.append(float(step(ctx[idx], pos[idx], tgt[idx])))
    recent = recent[-50:]
    steps += 1
  return steps, float(np.mean(recent)), time.perf_counter() - start


def evaluate(model, pairs, K):
  refined = [metrics.psnr(img, refine.refine(dec, model, K=K))
             for img, dec, _ in pairs]
  jpeg = [metrics.psnr(img, dec) for img, dec, _ in pairs]
  return float(np.mean(refined)), float(np.mean(jpeg))


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seconds", type=float, default=90.0,
                      help="training wall-clock budget per configuration")
  parser.add_argument("--steps", type=int, default=None,
                      help="train for this many steps instead (same number "
                      "of updates for every configuration)")
  parser.add_argument("--units", type=int, default=128)
  parser.add_argument("--K", type=int, default=4)
  parser.add_argument("--quality", type=int, default=20)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--lr", type=float, default=1e-3)
  parser.add_argument("--train_images", type=int, default=400)
  parser.add_argument("--val_images", type=int, default=4)
  parser.add_argument("--configs", default=",".join(CONFIGS))
  parser.add_argument("--data", default=DATA)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default=None, help="JSON file for the results")
  args = parser.parse_args(argv)

  tf.random.set_seed(args.seed)
  d = 8
  train_pairs = jpeg_pairs(os.path.join(args.data, "train400"), args.quality,
                           args.train_images)
  val_pairs = jpeg_pairs(os.path.join(args.data, "bsd68"), args.quality,
                         args.val_images)
  data_by_strategy = {}
  rows = []
  print(f"train400: {len(train_pairs)} images; bsd68 validation: "
        f"{len(val_pairs)} images; JPEG q={args.quality} (mean bpp "
        f"{np.mean([p[2] for p in val_pairs]):.3f} on validation); "
        f"LSTM-{args.units}, K={args.K}, "
        f"{f'{args.steps} steps' if args.steps else f'{args.seconds:.0f} s'}"
        " each",
        flush=True)
  for name in args.configs.split(","):
    strategy, use_position, residual = CONFIGS[name]
    if strategy not in data_by_strategy:
      data_by_strategy[strategy] = training_blocks(train_pairs, d, strategy)
    model = decoder.build_decoder(cell="lstm", units=args.units, patch_size=d,
                                  K=args.K, use_position=use_position,
                                  residual=residual, boundary=strategy,
                                  seed=args.seed)
    before, jpeg = evaluate(model, val_pairs, args.K)
    steps, loss, spent = train(model, data_by_strategy[strategy],
                               args.seconds, args.batch_size, args.lr,
                               args.seed, args.steps)
    after, jpeg = evaluate(model, val_pairs, args.K)
    row = {"config": name, "boundary": strategy, "use_position": use_position,
           "residual": residual, "steps": steps, "seconds": round(spent, 1),
           "train_loss": loss, "psnr_untrained": before, "psnr": after,
           "psnr_jpeg": jpeg, "gain_db": after - jpeg}
    rows.append(row)
    print(json.dumps(row), flush=True)

  print()
  print("| config | boundary | position | residual | steps | train loss | "
        "PSNR untrained | PSNR refined | PSNR JPEG | gain (dB) |")
  print("|---|---|---|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['config']} | {r['boundary']} | {r['use_position']} | "
          f"{r['residual']} | {r['steps']} | {r['train_loss']:.4f} | "
          f"{r['psnr_untrained']:.2f} | {r['psnr']:.2f} | "
          f"{r['psnr_jpeg']:.2f} | {r['gain_db']:+.2f} |")
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
      json.dump({"args": vars(args), "results": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
