"""SavedModel export for serving, loading, and the shipped pretrained decoders.

`export_serving(model, path, codec=...)` writes a SavedModel whose signatures
run entirely in the TF graph (patching, blocks, the K steps and re-assembly:
`tf_hbd.inference.graph_refine`), so TF Serving or any `tf.saved_model.load` user needs
no Python code of ours:

| signature | inputs | outputs |
|---|---|---|
| ``serving_default`` = ``refine`` | ``image``: uint8, (H, W) or (H, W, 1) | ``refined``: uint8, same shape |
| ``refine_k`` | ``image`` as above; ``K``: int32 scalar >= 1 | ``refined`` |
| ``refine_steps`` | ``image``, ``K`` as above | ``refined``: uint8 (K,) + image shape, image k - 1 the same as ``refine_k`` at K = k (one K-step pass; the K sweep of the study) |
| ``decode_and_refine`` (JPEG models) | ``jpeg``: string scalar, JPEG file bytes | ``refined``: uint8 (H, W, 1) |
| ``refine_blocks`` | ``context`` (B, 9, d, d) float in [0, 1]; ``position`` (B,) int32; ``K`` int32 | ``reconstructions`` (B, K, d*d), ``refined`` (B, d*d) |

``decode_and_refine`` decodes with `tf.io.decode_jpeg` (one channel, i.e. the
JPEG's own luma; ``dct_method="INTEGER_ACCURATE"``, libjpeg's islow IDCT as
Pillow uses). TF has no JPEG 2000 decoder, so JPEG 2000 models take decoded
pixels through ``refine``. Images larger than
`tf_hbd.inference.graph_refine.DEFAULT_MAX_PIXELS` are refused with an
InvalidArgumentError. Next to ``saved_model.pb`` the export holds
``hbd_model.json`` (codec, patch size, boundary rule, K, cell, algorithm,
label, provenance) and, for decoders `tf_hbd.inference.numpy_serving` can run,
``hbd_numpy.json`` (their TensorFlow-free runtime).
"""

import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from tf_hbd.codecs import codec_setting
from tf_hbd import errors
from tf_hbd.codecs import images
from tf_hbd.inference import graph_refine
from tf_hbd.inference import guards
from tf_hbd.inference import numpy_serving
from tf_hbd.codecs import jpeg_constraint

__all__ = ["export_serving", "ServedModel", "load", "load_pretrained",
           "PRETRAINED", "pretrained_dir", "METADATA_FILE"]

METADATA_FILE = "hbd_model.json"
PRETRAINED = numpy_serving.PRETRAINED  # the shipped decoders' folders


class _Serving(tf.Module):
  """The exported module: the decoder plus graph-only signatures."""

  def __init__(self, model, codec, batch_size, max_pixels, project, guard,
               passthrough):
    super().__init__(name="hbd_serving")
    self.model = model
    self._codec = codec
    self._batch = int(batch_size)
    self._max_pixels = int(max_pixels)
    self._d = int(model.patch_size)
    self._boundary = str(model.boundary)
    self._k = int(model.K)
    self.setting_size = size = int(getattr(model, "setting_size", 0))
    self.project = bool(project and codec == "jpeg" and size)
    self.guard = bool(guard)
    self.passthrough = dict(passthrough or {}) if size else {}

    self._ramp = (
        float(self.passthrough.get("jp2_min_activity_per_bpp", 0.0)),
        float(self.passthrough.get("jp2_full_activity_per_bpp", 0.0)))
    run, run_steps = self._run, self._run_steps

    image_spec = tf.TensorSpec(None, tf.uint8, name="image")
    k_spec = tf.TensorSpec([], tf.int32, name="K")
    setting_spec = ([tf.TensorSpec([size], tf.float32, name="setting")]
                    if size else [])

    @tf.function(autograph=False, input_signature=[image_spec] + setting_spec)
    def refine(image, setting=None):
      return {"refined": run(image, tf.constant(self._k), setting)}

    @tf.function(autograph=False,
                 input_signature=[image_spec, k_spec] + setting_spec)
    def refine_k(image, K, setting=None):  # pylint: disable=invalid-name
      tf.debugging.assert_positive(K, message="K must be >= 1")
      return {"refined": run(image, K, setting)}

    @tf.function(autograph=False,
                 input_signature=[tf.TensorSpec([], tf.string, name="jpeg")])
    def decode_and_refine(jpeg):
      image = tf.io.decode_jpeg(jpeg, channels=1,
                                dct_method="INTEGER_ACCURATE")
      setting = (graph_refine.jpeg_setting_in_graph(jpeg) if size
                 else None)
      return {"refined": run(image, tf.constant(self._k), setting)}

    @tf.function(autograph=False,
                 input_signature=[image_spec, k_spec] + setting_spec)
    def refine_steps(image, K, setting=None):  # pylint: disable=invalid-name
      tf.debugging.assert_positive(K, message="K must be >= 1")
      return {"refined": run_steps(image, K, setting)}

    self.refine = refine
    self.refine_k = refine_k
    self.refine_steps = refine_steps
    self.decode_and_refine = decode_and_refine
    self.refine_blocks = model.serving_function()

  def _run(self, image, k, setting=None):
    """The refined image at K = `k` (every signature's pipeline)."""
    if self.passthrough:  # settings finer than the model's error floor
      return tf.cond(
          guards.passthrough(self._codec, setting, decoded=image,
                             **self.passthrough),
          lambda: tf.identity(image), lambda: self._ramp_of(
              image, self._refine_and_project(image, k, setting), setting))
    return self._refine_and_project(image, k, setting)

  def _ramp_of(self, image, out, setting):
    low, high = self._ramp
    if self._codec == "jp2" and high > low:  # guards.activity_weight
      out = guards.blend(image, out, guards.activity_weight(
          image, setting, low, high))
    return out

  def _refine_and_project(self, image, k, setting):
    out = graph_refine.refine_in_graph(
        image, self._block_fn(k, setting), self._d, self._boundary,
        self._batch, self._max_pixels)
    return self._project_of(image, out, setting)

  def _project_of(self, image, out, setting):
    if self.project:  # JPEG quantization constraint (jpeg_constraint)
      flat_in = tf.reshape(image, tf.shape(image)[:2])
      flat_out = tf.reshape(out, tf.shape(image)[:2])
      table = jpeg_constraint.table_from_setting(setting)
      out = tf.reshape(jpeg_constraint.project(flat_out, flat_in, table),
                       tf.shape(image))
    return out

  def _run_steps(self, image, k, setting=None):
    """`_run` at K = 1..k from one k-step pass: (k,) + image shape."""
    if self.passthrough:
      return tf.cond(
          guards.passthrough(self._codec, setting, decoded=image,
                             **self.passthrough),
          lambda: tf.repeat(image[None], k, axis=0),
          lambda: self._steps_and_finish(image, k, setting, self._ramp_of))
    return self._steps_and_finish(image, k, setting, None)

  def _steps_and_finish(self, image, k, setting, then):
    outs = graph_refine.refine_steps_in_graph(
        image, self._steps_fn(k, setting), self._d, self._boundary,
        self._batch, self._max_pixels)

    def finish(out):  # what `_run` does after refine_in_graph
      out = self._project_of(image, out, setting)
      return then(image, out, setting) if then else out
    return tf.map_fn(finish, outs, fn_output_signature=tf.uint8)

  def _block_fn(self, k, setting):
    """The decoder on one batch of blocks (plus the flat-block guard)."""
    dtype = self.model.compute_dtype

    def fn(context, position):
      ctx = tf.cast(context, dtype)
      st = (None if setting is None else
            tf.tile(tf.cast(setting, dtype)[None], [tf.shape(ctx)[0], 1]))
      p = tf.cast(self.model.predict_last(ctx, position, k, setting=st),
                  tf.float32)
      if self.guard:  # keep constant blocks (tf_hbd.inference.guards)
        p = guards.keep_flat_context(tf.cast(context, tf.float32),
                                     position, p)
      return p
    return fn

  def _steps_fn(self, k, setting):
    """`_block_fn` keeping every step: (B, k, d*d), guarded step by step."""
    dtype = self.model.compute_dtype

    def fn(context, position):
      ctx = tf.cast(context, dtype)
      st = (None if setting is None else
            tf.tile(tf.cast(setting, dtype)[None], [tf.shape(ctx)[0], 1]))
      p = tf.cast(self.model.unroll(ctx, position, k, setting=st),
                  tf.float32)
      if self.guard:  # the same guard on each step's prediction
        flat = tf.cast(context, tf.float32)
        p = tf.transpose(tf.map_fn(
            lambda q: guards.keep_flat_context(flat, position, q),
            tf.transpose(p, [1, 0, 2])), [1, 0, 2])
      return p
    return fn

  def signatures(self):
    sigs = {"serving_default": self.refine, "refine": self.refine,
            "refine_k": self.refine_k, "refine_steps": self.refine_steps,
            "refine_blocks": self.refine_blocks}
    if self._codec == "jpeg":
      sigs["decode_and_refine"] = self.decode_and_refine
    return sigs


def export_serving(model, path: str, codec: str, metadata: Optional[dict] = None,
                   batch_size: int = 4096,
                   max_pixels: int = graph_refine.DEFAULT_MAX_PIXELS,
                   project: bool = True, guard: bool = True,
                   passthrough: Optional[dict] = None) -> str:
  """Exports `model` (a decoder from `tf_hbd.model.decoder` or a SAB decoder).

  Args:
    model: the trained decoder (has patch_size, boundary, K, predict_last,
      serving_function).
    path: output directory (SavedModel).
    codec: "jpeg" or "jp2", the codec whose output the model refines.
    metadata: extra provenance stored in hbd_model.json (label, algorithm,
      data, steps, ...).
    batch_size: targets per model call inside the graph (bounds memory).
    max_pixels: larger images are refused.
    project: JPEG models that take the codec setting project their output
      onto the quantization constraint (`tf_hbd.codecs.jpeg_constraint`).
    guard: keep the decoded patch where a block is constant
      (`tf_hbd.inference.guards`).
    passthrough: `tf_hbd.inference.guards.passthrough` thresholds
      (``jpeg_min_noise``, ``jp2_max_bpp``, ``jpeg_min_coded_noise``) for
      models with the setting.

  Returns:
    `path`.
  """
  if codec not in ("jpeg", "jp2"):
    raise ValueError(f"codec must be 'jpeg' or 'jp2', got {codec!r}")
  model(model.dummy_inputs())
  module = _Serving(model, codec, batch_size, max_pixels, project, guard,
                    passthrough)
  tf.saved_model.save(module, path, signatures=module.signatures())
  meta = {"format": "tf_hbd-serving-1", "codec": codec,
          "patch_size": int(model.patch_size), "boundary": str(model.boundary),
          "K": int(model.K), "cell": getattr(model, "cell_type", None) or
          getattr(getattr(model, "base", None), "cell_type", None),
          "units": int(model.units), "model_class": type(model).__name__,
          "setting_size": module.setting_size,
          "jpeg_projection": module.project,
          "flat_guard": module.guard,
          "passthrough": module.passthrough,
          "signatures": sorted(module.signatures())}
  meta.update(metadata or {})
  with open(os.path.join(path, METADATA_FILE), "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)
  numpy_serving.write_for_model(model, path)  # hbd_numpy.json (fast path)
  return path


class ServedModel(codec_setting.TakesSetting):
  """A loaded export: `refine(gray uint8, K=None) -> uint8` and `metadata`."""

  def __init__(self, path):
    meta_path = os.path.join(path, METADATA_FILE)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      raise errors.HbdError(f"{path!r} is not a SavedModel directory (no "
                            "saved_model.pb)")
    if not os.path.isfile(meta_path):
      raise errors.HbdError(f"{path!r} has no {METADATA_FILE}: not exported "
                            "by tf_hbd.inference.serving.export_serving")
    with open(meta_path) as f:
      self.metadata = json.load(f)
    self.path = path
    self._loaded = tf.saved_model.load(path)

  def refine(self, image, K: Optional[int] = None, setting=None,
             source: Optional[str] = None,
             ensemble: bool = False,
             shifts: Optional[int] = None) -> np.ndarray:
    """Refines a decoded gray uint8 image (H, W) or (H, W, 1).

    Models that take the codec setting (`setting_size` > 0) need either
    `setting` (`tf_hbd.codecs.codec_setting.features`) or `source`, the path of
    the JPEG / JPEG 2000 file the image was decoded from.

    ``ensemble``: geometric self-ensemble -- the mean of the refinements of
    the 8 flips / transposes of the image (padded to the block grid so that
    every symmetry keeps it), 8 times the work.

    ``shifts`` (1, 2 or 4; None: the export's ``grid_shifts``, else 1):
    grid-shift ensemble of JPEG 2000 models -- the mean of the refinements
    of the image shifted by half a patch to that many offsets of the patch
    grid (`tf_hbd.inference.numpy_serving.grid_offsets`; mirrored rows and
    columns fill in above and to the left and are cropped away), each
    guarded as a single refinement; `shifts` times the work (times 8 with
    `ensemble`). An error for JPEG models, whose grid is the JPEG's.
    """
    n = numpy_serving.check_shifts(
        self.metadata.get("grid_shifts", 1) if shifts is None else shifts,
        self.codec)
    if ensemble or n > 1:
      return self._passes(image, K, setting, source, n, ensemble)
    image = np.asarray(image)
    images.check_gray(image)  # the graph takes (H, W) or (H, W, 1) as given
    kwargs = {"image": tf.constant(image)}
    setting = self.setting_for(setting, source, image.shape[:2])
    if setting is not None:
      kwargs["setting"] = tf.constant(setting)
    try:
      if K is None:
        out = self._loaded.signatures["refine"](**kwargs)
      else:
        out = self._loaded.signatures["refine_k"](
            K=tf.constant(int(K), tf.int32), **kwargs)
    except tf.errors.InvalidArgumentError as e:
      raise errors.ResourceLimitError(e.message) from e
    return out["refined"].numpy()

  def refine_steps(self, image, K: int, setting=None,
                   source: Optional[str] = None) -> np.ndarray:
    """`refine` at K = 1..`K`: uint8 (K,) + image shape, from one K-step
    pass where the export has the ``refine_steps`` signature and a single
    grid (image k - 1 is the same as ``refine(image, K=k)``), else K calls
    of `refine` (exports made before it, grid-shift ensembles)."""
    shifts = numpy_serving.check_shifts(self.metadata.get("grid_shifts", 1),
                                        self.codec)
    if shifts > 1 or "refine_steps" not in self._loaded.signatures:
      return np.stack([self.refine(image, K=k, setting=setting,
                                   source=source) for k in range(1, K + 1)])
    image = np.asarray(image)
    images.check_gray(image)
    kwargs = {"image": tf.constant(image), "K": tf.constant(int(K), tf.int32)}
    setting = self.setting_for(setting, source, image.shape[:2])
    if setting is not None:
      kwargs["setting"] = tf.constant(setting)
    try:
      out = self._loaded.signatures["refine_steps"](**kwargs)
    except tf.errors.InvalidArgumentError as e:
      raise errors.ResourceLimitError(e.message) from e
    return out["refined"].numpy()

  def _passes(self, image, K, setting, source, shifts, ensemble):
    """The mean over grid offsets (and, with `ensemble`, symmetries)."""
    image = np.asarray(image)
    shape = image.shape
    gray = image.reshape(shape[:2])
    setting = self.setting_for(setting, source, shape[:2])
    out = numpy_serving.shifted_ensemble(
        gray, int(self.metadata.get("patch_size", 8)),
        lambda t, st: self.refine(t, K, setting=st, shifts=1), setting,
        codec_setting.transpose_setting if self.codec == "jpeg" else None,
        shifts, ensemble)
    return out.reshape(shape)

  def decode_and_refine(self, jpeg_bytes: bytes) -> np.ndarray:
    if "decode_and_refine" not in self._loaded.signatures:
      raise errors.HbdError(f"model {self.path} ({self.codec}) has no "
                            "decode_and_refine signature (JPEG models only)")
    try:
      out = self._loaded.signatures["decode_and_refine"](
          jpeg=tf.constant(jpeg_bytes))
    except tf.errors.InvalidArgumentError as e:
      raise errors.BitstreamError(f"cannot decode JPEG: {e.message}") from e
    return out["refined"].numpy()


def load(path: str) -> ServedModel:
  """Loads an export written by `export_serving`."""
  return ServedModel(os.fspath(path))


# Where the shipped decoder of a codec lives (the NumPy runtime's, which
# needs no TensorFlow, is the one implementation).
pretrained_dir = numpy_serving.pretrained_dir


def load_pretrained(codec: str) -> ServedModel:
  """The decoder shipped in the package for `codec` ("jpeg" or "jp2")."""
  path = pretrained_dir(codec)
  if not os.path.isdir(path):
    raise errors.HbdError(f"the shipped {codec} model is missing from this "
                          f"installation ({path}); reinstall tf_hbd or pass "
                          "--model DIR")
  return load(path)
