"""What the first steps of a fresh optimizer do to a warm-started baseline.

  python benchmarks/warm_start_fresh_adam.py \
      --snapshot=campaigns/baselines/e2e-l0.005 \
      --train_dir=../shared/data/train400 --val_dir=../shared/data/bsd68

Loads a campaign snapshot (`tf_hbd.baselines.campaign.snapshot`, E2E at the
campaign's width and lambda unless --num_filters / --lmbda say otherwise)
and prints the validation metrics (`e2e.validation_metrics`, the first
--val_images images) of: the snapshot; one step of a fresh Adam at
--learning_rate (what a campaign warm start does: its first step moves
every weight by the full rate); one step at a hundredth of it; and
--steps steps of a fresh Adam whose moments were first filled from
--prime batches at learning rate 0 (weights unchanged); and --ramp steps
of a fresh Adam whose rate rises linearly to --learning_rate over those
steps (`training.with_warmup`, what `training.fit` does for a fresh
optimizer over `training.WARMUP_STEPS` updates). Each case starts again
from the snapshot's weights.
"""

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
import tensorflow as tf

from tf_hbd.baselines import campaign
from tf_hbd.baselines import e2e
from tf_hbd.baselines import training

_SNAPSHOT = flags.DEFINE_string("snapshot", None, "Snapshot folder of one "
                                "E2E model (campaigns/baselines/<name>).")
_TRAIN_DIR = flags.DEFINE_string("train_dir", "../shared/data/train400",
                                 "Training images (the batches).")
_VAL_DIR = flags.DEFINE_string("val_dir", "../shared/data/bsd68",
                               "Validation images.")
_VAL_IMAGES = flags.DEFINE_integer("val_images", 2, "Validation images.")
_NUM_FILTERS = flags.DEFINE_integer("num_filters", 128, "E2E width.")
_LMBDA = flags.DEFINE_float("lmbda", campaign.E2E_BASE_LAMBDA, "E2E lambda.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 2e-4, "Adam's rate.")
_STEPS = flags.DEFINE_integer("steps", 3, "Steps after priming.")
_PRIME = flags.DEFINE_integer("prime", 20, "Batches that fill the moments "
                              "before those steps (learning rate 0).")
_RAMP = flags.DEFINE_integer("ramp", 300, "Steps of the ramped case (0: "
                             "skip it).")
_VERBOSE = flags.DEFINE_bool("verbose", False, "TensorFlow's log lines.")
flags.mark_flag_as_required("snapshot")


def _case(model, weights, sampler, step0, rate, prime, steps, val,
          ramp=False):
  """Validation metrics after `steps` steps of a fresh Adam at `rate`
  (ramped over them if `ramp`)."""
  for v, w in zip(model.variables, weights):
    v.assign(w)
  optimizer = tf.keras.optimizers.Adam(learning_rate=rate,
                                       global_clipnorm=1.0)
  optimizer.build(model.trainable_variables)
  step_fn = training.make_step_fn(model, optimizer, 8, 128)
  optimizer.learning_rate.assign(0.0)
  for i in range(prime):  # moments only: the weights do not move
    step_fn(tf.constant(sampler.batch(step0 + i, 8)))
  optimizer.learning_rate.assign(rate)
  if ramp:
    step_fn = training.with_warmup(step_fn, optimizer, rate, steps)
  for i in range(steps):
    step_fn(tf.constant(sampler.batch(step0 + i, 8)))
  return e2e.validation_metrics(model, val)


def main(argv):
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  model = e2e.E2EModel(num_filters=_NUM_FILTERS.value, lmbda=_LMBDA.value)
  state = training.TrainState()
  tf.train.Checkpoint(model=model, state=state).read(
      tf.train.latest_checkpoint(_SNAPSHOT.value)).expect_partial()
  weights = [v.numpy() for v in model.variables]
  step0 = int(state.step.numpy())
  val = training.load_validation_images(_VAL_DIR.value, _VAL_IMAGES.value)
  sampler = training.crop_sampler(_TRAIN_DIR.value, 128, None, "train", 0)
  rate = _LEARNING_RATE.value
  print(f"snapshot at step {step0}: {e2e.validation_metrics(model, val)}")
  cases = [(f"1 step, fresh Adam {rate:g}", rate, 0, 1, False),
           (f"1 step, fresh Adam {rate / 100:g}", rate / 100, 0, 1, False),
           (f"{_STEPS.value} step(s), Adam {rate:g} primed on "
            f"{_PRIME.value} batches", rate, _PRIME.value, _STEPS.value, False)]
  if _RAMP.value:
    cases.append((f"{_RAMP.value} steps, fresh Adam ramped to {rate:g}",
                  rate, 0, _RAMP.value, True))
  for label, r, prime, steps, ramp in cases:
    metrics = _case(model, weights, sampler, step0, r, prime, steps, val, ramp)
    print(f"{label}: {metrics}", flush=True)
  return 0


if __name__ == "__main__":
  app.run(main)
