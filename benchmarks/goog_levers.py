"""Which training lever moves GOOG's 3-iteration PSNR fastest (issue 13).

  python benchmarks/goog_levers.py --snapshot=campaigns/baselines/goog \
      --cases=l1,l1w,l2,l2w --steps=300

Loads a GOOG campaign snapshot (the campaign's widths,
`campaign.GOOG_WIDTHS`) and, for each case, starts again from its weights,
trains --steps steps of a fresh Adam whose rate is ramped to
--learning_rate over the first --ramp of them (the same batches and
binarizer seed in every case) and prints one JSON line: the case, its
loss, the median seconds per step (the first, tracing step left out) and
`goog.validation_metrics` on the first --val_images images of --val_dir
(PSNR after each of 1..16 iterations, and JPEG at the rate of 3
iterations of raw bits). The snapshot itself is measured first (case
"snapshot"). A case is ``name=iterations:norm:weights`` (weights as
`goog.iteration_weights` reads them, "-" for uniform) or one of `CASES`.
"""

import json
import time

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from tf_hbd.baselines import campaign
from tf_hbd.baselines import goog
from tf_hbd.baselines import training

# name -> (iterations unrolled, loss norm, loss weights)
CASES = {"l1": (16, "l1", None), "l1w": (16, "l1", "4,4,4,1"),
         "l2": (16, "l2", None), "l2w": (16, "l2", "4,4,4,1"),
         "l1i8": (8, "l1", None), "l1i4": (4, "l1", None),
         "l2i8w": (8, "l2", "4,4,4,1")}

_SNAPSHOT = flags.DEFINE_string("snapshot", "campaigns/baselines/goog",
                                "Snapshot folder of the GOOG model.")
_TRAIN_DIR = flags.DEFINE_string("train_dir", "../shared/data/train400",
                                 "Training images (the batches).")
_VAL_DIR = flags.DEFINE_string("val_dir", "../shared/data/bsd68",
                               "Validation images (never training ones).")
_VAL_IMAGES = flags.DEFINE_integer("val_images", 4, "Validation images.")
_CASES = flags.DEFINE_list("cases", "l1,l1w,l2", "Cases (see CASES).")
_STEPS = flags.DEFINE_integer("steps", 300, "Training steps per case.")
_RAMP = flags.DEFINE_integer("ramp", 50, "Steps over which the rate rises.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 2e-4, "Adam's rate.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Crops per step.")
_SKIP_SNAPSHOT = flags.DEFINE_bool("skip_snapshot", False,
                                   "Do not measure the snapshot itself.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "TensorFlow's log lines.")


def parse_case(text: str) -> tuple:
  """(name, iterations, norm, weights) of a --cases entry."""
  if text in CASES:
    return (text, *CASES[text])
  name, _, spec = text.partition("=")
  parts = spec.split(":")
  if len(parts) != 3:
    raise ValueError(f"case {text!r}: a name of {sorted(CASES)} or "
                     "name=iterations:norm:weights")
  weights = None if parts[2] == "-" else parts[2]
  return name, int(parts[0]), parts[1], weights


def _train(model, weights, sampler, case, step_fns):
  """Trains `case` from `weights`; (loss of the last 20 steps, s/step)."""
  _, iterations, norm, loss_weights = case
  for v, w in zip(model.variables, weights):
    v.assign(w)
  tf.random.set_seed(0)
  optimizer = tf.keras.optimizers.Adam(learning_rate=_LEARNING_RATE.value,
                                       global_clipnorm=1.0)
  optimizer.build(model.trainable_variables)
  step_fn = training.make_step_fn(
      model, optimizer, _BATCH.value, 32,
      {"iterations": iterations, "loss_norm": norm,
       "loss_weights": loss_weights})
  step_fns.append(step_fn)  # keeps the traced function alive
  step_fn = training.with_warmup(step_fn, optimizer, _LEARNING_RATE.value,
                                 _RAMP.value)
  losses, times = [], []
  for i in range(_STEPS.value):
    t0 = time.time()
    losses.append(float(step_fn(tf.constant(
        sampler.batch(i, _BATCH.value)))["loss"]))
    times.append(time.time() - t0)
  return float(np.mean(losses[-20:])), float(np.median(times[1:]))


def main(argv):
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  cases = [parse_case(c) for c in _CASES.value]
  model = goog.GoogModel(goog.GoogConfig(**campaign.GOOG_WIDTHS))
  tf.train.Checkpoint(model=model).read(
      tf.train.latest_checkpoint(_SNAPSHOT.value)).expect_partial()
  weights = [v.numpy() for v in model.variables]
  val = training.load_validation_images(_VAL_DIR.value, _VAL_IMAGES.value)
  sampler = training.crop_sampler(_TRAIN_DIR.value, 32, None, "train", 0)
  if not _SKIP_SNAPSHOT.value:
    print(json.dumps({"case": "snapshot",
                      **goog.validation_metrics(model, val)}), flush=True)
  step_fns = []
  for case in cases:
    t0 = time.process_time()
    loss, s_per_step = _train(model, weights, sampler, case, step_fns)
    record = {"case": case[0], "iterations": case[1], "norm": case[2],
              "weights": case[3], "steps": _STEPS.value,
              "learning_rate": _LEARNING_RATE.value, "loss": round(loss, 6),
              "s_per_step": round(s_per_step, 3),
              "cpu_s": round(time.process_time() - t0, 1),
              **goog.validation_metrics(model, val)}
    print(json.dumps(record), flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
