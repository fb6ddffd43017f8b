"""Export a trained decoder as a serving SavedModel (graph-only signatures).

  python scripts/export.py --model_dir=runs/bptt --out=exports/hbd-jpeg

Rebuilds the run's decoder from <model_dir>/log.json (its flags: codec,
algorithm, sizes) and restores the weights of its final checkpoint
(<model_dir>/checkpoints; with --ema, the weight average) or, with
--source=best, of the best validation epoch's checkpoint that --export_best
keeps (<model_dir>/checkpoints/best; exportable while the run goes on);
tf_hbd.training.run_decoder. Run dirs of earlier versions are read from their
export/ and best/ decoder SavedModels. Writes a SavedModel with the
signatures documented in BUILD.md ("Serving"): refine, refine_k,
decode_and_refine (JPEG), refine_blocks, plus hbd_model.json; the export and
its metadata are the ones a training run writes to <model_dir>/serving
(tf_hbd.training.exports.export_run). TensorFlow's own log lines are off
unless --verbose.
"""

import sys

from tf_hbd import quiet  # first: TF's log lines off unless --verbose

quiet.quiet_tensorflow(quiet.verbose_in_argv())

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags

from tf_hbd.training import algorithms  # pylint: disable=unused-import (registers SAB)
from tf_hbd.training import calibration
from tf_hbd.evaluation import systems as evaluation
from tf_hbd.training import exports
from tf_hbd.training import run_decoder

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Training model dir.")
_OUT = flags.DEFINE_string("out", None, "Output SavedModel directory.")
_BATCH = flags.DEFINE_integer("batch_size", 4096, "Targets per model call "
                              "inside the graph (bounds memory).")
_NOTE = flags.DEFINE_string("note", "", "Free text stored in hbd_model.json.")
_SOURCE = flags.DEFINE_enum(
    "source", "final", ["final", "best", "export"], "Which decoder of the "
    "model dir: the final checkpoint's or the best validation epoch's so far "
    "(kept by --export_best; averaged weights; exportable while training "
    "runs). 'export' is the former name of 'final'.")
_PROJECT = flags.DEFINE_bool(
    "project", True, "JPEG models with the setting input: project the output "
    "onto the quantization constraint (tf_hbd.codecs.jpeg_constraint).")
_CAL_IMAGES = flags.DEFINE_string(
    "calibrate_images", "", "Validation images on which to fit the residual "
    "correction scale (tf_hbd.training.calibration); empty: no calibration.")
_CAL_BPP = flags.DEFINE_float("calibrate_bpp", 0.37, "Codec rate of the "
                              "calibration images.")
_CAL_MAX = flags.DEFINE_integer("calibrate_max_images", 8, "At most N "
                                "calibration images.")
_GUARD = flags.DEFINE_bool(
    "flat_guard", True, "Keep the decoded patch where a block is constant "
    "(tf_hbd.inference.guards).")
_JPEG_MIN_NOISE = flags.DEFINE_float(
    "jpeg_min_noise", 0.0, "Return JPEG images as decoded when the table's "
    "RMS quantization noise is below this many gray levels (0: never; "
    "tf_hbd.inference.guards.passthrough).")
_JP2_MAX_BPP = flags.DEFINE_float(
    "jp2_max_bpp", 0.0, "Return JPEG 2000 images as decoded at or above this "
    "rate (0: never).")
_JPEG_MIN_CODED = flags.DEFINE_float(
    "jpeg_min_coded_noise", 0.0, "Return JPEG images as decoded when the "
    "quantization noise of their nonzero DCT coefficients is below this RMS "
    "in gray levels (0: never; tf_hbd.inference.guards.jpeg_coded_noise_rms).")
_JP2_MAX_FLAT = flags.DEFINE_float(
    "jp2_max_flat_fraction", 0.0, "Return JPEG 2000 images as decoded when "
    "at least this fraction of their 8 x 8 tiles is constant (graphics, "
    "documents; 0: never; tf_hbd.inference.guards.flat_tile_fraction).")
_JP2_MIN_ACTIVITY = flags.DEFINE_float(
    "jp2_min_activity_per_bpp", 0.0, "Return JPEG 2000 images as decoded "
    "when the mean absolute Laplacian of the decoded image is below this "
    "many gray levels per bit per pixel of the codestream (content coded "
    "more finely than the photographs the decoder learned from: gradients, "
    "low-contrast and smooth images; 0: never; "
    "tf_hbd.inference.guards.laplacian_activity).")
_JP2_FULL_ACTIVITY = flags.DEFINE_float(
    "jp2_full_activity_per_bpp", 0.0, "JPEG 2000: above "
    "--jp2_min_activity_per_bpp and below this (gray levels per bpp), scale "
    "the correction linearly from 0 to 1 (tf_hbd.inference.guards."
    "activity_weight); 0 or <= the minimum: no ramp, a hard threshold.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show TensorFlow's own log "
                              "lines.")
flags.mark_flags_as_required(["model_dir", "out"])


def _calibrate(model, codec):
  """--calibrate_images: fits and applies the correction scale; the
  metadata entry ({} without calibration)."""
  if not _CAL_IMAGES.value:
    return {}
  imgs = [im.gray for im in evaluation.load_eval_images(
      _CAL_IMAGES.value, limit=_CAL_MAX.value)]
  gamma = calibration.fit_correction_scale(model, imgs, codec,
                                           bpp=_CAL_BPP.value)
  calibration.apply_correction_scale(model, gamma)
  print(f"correction scale gamma = {gamma:.4f} (fitted on "
        f"{len(imgs)} images of {_CAL_IMAGES.value})")
  return {"calibration": {"gamma": gamma, "images": _CAL_IMAGES.value,
                          "max_images": _CAL_MAX.value,
                          "bpp": _CAL_BPP.value}}


def main(argv):
  del argv
  quiet.quiet_tensorflow(_VERBOSE.value)
  log = exports.read_log(_MODEL_DIR.value)
  source = "final" if _SOURCE.value == "export" else _SOURCE.value
  try:
    model, where = run_decoder.load(_MODEL_DIR.value, source, log)
  except run_decoder.RunDecoderError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"decoder: {source}, weights from {where}")
  if source == "final" and log.get("status", "finished") != "finished":
    print(f"note: the run is not finished (status {log.get('status')}); "
          "these are its newest checkpoint's weights")
  codec = log.get("flags", {}).get("codec", "jpeg")
  meta = exports.export_run(
      model, log, _OUT.value, source, _NOTE.value,
      extra=_calibrate(model, codec), batch_size=_BATCH.value,
      project=_PROJECT.value, guard=_GUARD.value, passthrough={
          "jpeg_min_noise": _JPEG_MIN_NOISE.value,
          "jp2_max_bpp": _JP2_MAX_BPP.value,
          "jpeg_min_coded_noise": _JPEG_MIN_CODED.value,
          "jp2_max_flat_fraction": _JP2_MAX_FLAT.value,
          "jp2_min_activity_per_bpp": _JP2_MIN_ACTIVITY.value,
          "jp2_full_activity_per_bpp": _JP2_FULL_ACTIVITY.value})
  print(f"exported {meta['label']} to {_OUT.value}")
  return 0


if __name__ == "__main__":
  app.run(main)
