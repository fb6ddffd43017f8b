"""E2E: end-to-end optimized image compression (Ballé et al. 2017), gray.

> "End-to-end optimized image compression"
> J. Ballé, V. Laparra, E. P. Simoncelli, ICLR 2017 (arXiv:1611.01704)

One of the two neural codecs that the paper (Mali et al., section 4) compares
the hybrid decoder with. Built from tensorflow-compression (TFC) layers, as in
the original:

* analysis transform g_a: three stages of `tfc.SignalConv2D` + GDN
  (9x9 stride 4, 5x5 stride 2, 5x5 stride 2), one input channel;
* synthesis transform g_s: the mirror image, inverse GDN + transposed
  `SignalConv2D` (5x5 up 2, 5x5 up 2, 9x9 up 4), one output channel;
* a `tfc.NoisyDeepFactorized` prior (one density per latent channel) in a
  `tfc.ContinuousBatchedEntropyModel` with coding rank 3 (one range-coded
  string per image);
* loss = rate (bits per pixel) + lambda * MSE, MSE on the 0..255 scale;
  additive uniform noise replaces rounding during training.

Pixels enter as ``x / 255``. The latent tensor of an H x W image has shape
``ceil(H / 16) x ceil(W / 16) x num_filters`` ("same" zero padding, so any
image size works); the reconstruction is cropped back to H x W.

The exported SavedModel (`export`) has three `tf.function`s with input
signatures: ``compress(image uint8 (H, W, 1)) -> string``,
``decompress(string, image_shape int32 (2,)) -> uint8 (H, W, 1)`` and
``reconstruct(image) -> uint8 (H, W, 1)`` (the same quantized latents
without range coding, i.e. what ``decompress(compress(image))`` must equal).
`E2ECodec` wraps a SavedModel with the package's file format
(`tf_hbd.baselines.container`): ``compress(gray uint8 (H, W)) -> bytes`` and
``decompress(bytes) -> gray uint8 (H, W)``; bpp = 8 * len(bytes) / (H * W).

Default width here is 64 filters instead of the paper's 128 (gray) / 192, so
that training fits a CPU budget; see the shipped models' MODEL.md.
"""

import contextlib
import functools
import math

import numpy as np
import tensorflow as tf
import tensorflow_compression as tfc
from tensorflow_compression.python.distributions import helpers as tfc_helpers

from tf_hbd import errors
from tf_hbd.baselines import codec_base
from tf_hbd.baselines import container
from tf_hbd.baselines import training
from tf_hbd.codecs import images
from tf_hbd.training import checkpoints

__all__ = ["E2EModel", "E2EExport", "E2ECodec", "latent_shape", "export",
           "train", "float32_twin", "stored_twin", "validation_metrics", "FAMILY",
           "DOWNSAMPLING", "COMPUTE_DTYPES", "WEIGHT_DTYPES"]

FAMILY = "e2e"
DOWNSAMPLING = 16  # 4 * 2 * 2


def latent_shape(image_shape):
  """(h, w) of the latent tensor of an image of shape (H, W)."""
  return tuple(int(math.ceil(int(s) / DOWNSAMPLING)) for s in image_shape[:2])


COMPUTE_DTYPES = ("float32", "bfloat16")


def _policy(compute_dtype):
  if compute_dtype not in COMPUTE_DTYPES:
    raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, got "
                     f"{compute_dtype!r}")
  return tf.keras.mixed_precision.Policy(
      "float32" if compute_dtype == "float32" else "mixed_bfloat16")


def _analysis(num_filters, compute_dtype="float32"):
  stages = [(9, 4), (5, 2), (5, 2)]
  layers = []
  policy = _policy(compute_dtype)
  for i, (size, stride) in enumerate(stages):
    layers.append(tfc.SignalConv2D(
        num_filters, (size, size), name=f"conv_{i}", corr=True,
        strides_down=stride, padding="same_zeros", use_bias=True,
        activation=tfc.GDN(name=f"gdn_{i}", dtype=policy), dtype=policy))
  return tf.keras.Sequential(layers, name="analysis")


def _synthesis(num_filters, compute_dtype="float32"):
  stages = [(5, 2, num_filters), (5, 2, num_filters), (9, 4, 1)]
  layers = []
  policy = _policy(compute_dtype)
  for i, (size, stride, filters) in enumerate(stages):
    layers.append(tfc.GDN(name=f"igdn_{i}", inverse=True, dtype=policy))
    layers.append(tfc.SignalConv2D(
        filters, (size, size), name=f"conv_{i}", corr=False,
        strides_up=stride, padding="same_zeros", use_bias=True,
        dtype=policy))
  return tf.keras.Sequential(layers, name="synthesis")


class E2EModel(tf.keras.Model):
  """The trainable E2E model (transforms + prior); see the module docstring.

  The transforms may compute in bfloat16 (``compute_dtype="bfloat16"``,
  Keras' ``mixed_bfloat16`` policy: float32 variables, bfloat16 products) to
  speed up training; the latents enter the entropy model, and the
  reconstruction the loss, in float32. `export` always writes a float32
  codec (the same variables), so files do not depend on this choice.

  Attributes:
    num_filters: channels of every hidden stage and of the latents.
    lmbda: rate-distortion trade-off (loss = bpp + lmbda * MSE_255).
    transform_dtype: "float32" or "bfloat16" (compute dtype of the
      transforms).
    analysis, synthesis: the transforms (Keras models).
    prior: the `tfc.NoisyDeepFactorized` density of the latents.
  """

  def __init__(self, num_filters: int = 64, lmbda: float = 0.01,
               compute_dtype: str = "float32", **kwargs):
    super().__init__(**kwargs)
    self.num_filters = int(num_filters)
    self.lmbda = float(lmbda)
    self.transform_dtype = str(compute_dtype)
    self.analysis = _analysis(self.num_filters, self.transform_dtype)
    self.synthesis = _synthesis(self.num_filters, self.transform_dtype)
    self.prior = tfc.NoisyDeepFactorized(batch_shape=(self.num_filters,))
    self.build((None, None, None, 1))

  def build(self, input_shape):
    self.analysis.build(input_shape)
    self.synthesis.build((None, None, None, self.num_filters))
    super().build(input_shape)

  def entropy_model(self):
    """The training-time entropy model of the prior (no range coder).

    Its `quantize` rounds like the exported codec's (`E2EExport`): to the
    integers shifted by the prior's quantization offsets.
    """
    return tfc.ContinuousBatchedEntropyModel(
        self.prior, coding_rank=3, compression=False, offset_heuristic=True)

  def call(self, images, training=False):
    """Rate and distortion of a batch of uint8 images (B, H, W, 1).

    Args:
      images: uint8 or float (0..255) tensor (B, H, W, 1).
      training: noise (True) or rounding (False) in place of quantization.

    Returns:
      dict of scalars: ``loss``, ``bpp`` (the entropy model's estimate),
      ``mse`` (0..255 scale) and ``psnr``.
    """
    x = tf.cast(images, tf.float32) / 255.0
    # Training perturbs with uniform noise; evaluation rounds to the integer
    # grid shifted by the prior's quantization offsets (its medians), exactly
    # as the exported range coder does (`E2EExport`, TFC's default
    # offset heuristic), so eval PSNR and rate are those of the codec.
    entropy_model = self.entropy_model()
    y = tf.cast(self.analysis(x), tf.float32)
    y_hat, bits = entropy_model(y, training=training)
    x_hat = tf.cast(self.synthesis(y_hat), tf.float32)
    x_hat = x_hat[:, :tf.shape(x)[1], :tf.shape(x)[2], :]
    pixels = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
    bpp = tf.reduce_sum(bits) / pixels
    mse = tf.reduce_mean(tf.math.squared_difference(x, x_hat)) * 255.0**2
    return {"loss": bpp + self.lmbda * mse, "bpp": bpp, "mse": mse,
            "psnr": 10.0 * tf.math.log(255.0**2 / mse) / math.log(10.0)}


@contextlib.contextmanager
def _tails_in_a_graph():
  """Within: TFC estimates tail quantiles in a graph, not op by op.

  A range-coding entropy model (``compression=True``) finds its prior's
  tails and quantization offsets with `tfc_helpers.estimate_tails`, a loop
  of up to a few hundred Adam steps that runs eagerly, op by op (TFC's own
  TODO: "Consider wrapping in tf.function"), the larger part of building a
  small model's codec. Traced, the same loop gives the same tables
  (`e2e_test`). Each call traces a new `functools.partial`: TensorFlow counts
  retracings per function code, and would warn from the second model on.
  """
  eager = tfc_helpers.estimate_tails

  def in_a_graph(func, target, shape, dtype):
    estimate = functools.partial(eager, func, target, shape, dtype)
    return tf.function(estimate, autograph=False)()

  tfc_helpers.estimate_tails = in_a_graph
  try:
    yield
  finally:
    tfc_helpers.estimate_tails = eager


class E2EExport(tf.Module):
  """The coding functions of a trained `E2EModel`, ready for SavedModel.

  The entropy model is instantiated with ``compression=True``: its integer
  range-coding tables are computed once from the prior and saved as
  variables, so encoder and decoder share exactly the same tables.
  """

  def __init__(self, model: E2EModel):
    super().__init__(name="e2e")
    # The functions read the transforms' variables, tracked here; the Keras
    # models themselves stay out of the SavedModel (see `Untracked`).
    self.transform_weights = (list(model.analysis.variables) +
                              list(model.synthesis.variables))
    self._ref = codec_base.Untracked((model.analysis, model.synthesis))
    with _tails_in_a_graph():
      self.entropy_model = tfc.ContinuousBatchedEntropyModel(
          model.prior, coding_rank=3, compression=True)
    self.num_filters = tf.Variable(model.num_filters, trainable=False,
                                   name="num_filters")
    self.lmbda = tf.Variable(model.lmbda, trainable=False, dtype=tf.float32,
                             name="lmbda")

  def _latents(self, image):
    x = tf.cast(image, tf.float32)[None] / 255.0
    y = self._ref.value[0](x)  # analysis
    expected = (tf.shape(image)[:2] + DOWNSAMPLING - 1) // DOWNSAMPLING
    tf.debugging.assert_equal(tf.shape(y)[1:3], expected,
                              message="unexpected latent shape")
    return y

  def _synthesize(self, y_hat, image_shape):
    x_hat = self._ref.value[1](y_hat)  # synthesis
    x_hat = x_hat[0, :image_shape[0], :image_shape[1], :]
    return tf.saturate_cast(tf.round(x_hat * 255.0), tf.uint8)

  # AutoGraph stays on here (not elsewhere, issue 16): tensorflow_compression's
  # GDN layer branches in Python on a tensor (``if ... self.alpha == 1``).
  @tf.function(autograph=True, input_signature=[
      tf.TensorSpec((None, None, 1), tf.uint8, name="image")])
  def compress(self, image):
    """Range-codes an image (H, W, 1) uint8 into one string."""
    return self.entropy_model.compress(self._latents(image))[0]

  @tf.function(autograph=True, input_signature=[
      tf.TensorSpec((), tf.string, name="string"),
      tf.TensorSpec((2,), tf.int32, name="image_shape")])
  def decompress(self, string, image_shape):
    """Decodes a string of `compress` back to uint8 (H, W, 1)."""
    y_shape = (image_shape + DOWNSAMPLING - 1) // DOWNSAMPLING
    y_hat = self.entropy_model.decompress(string[None], y_shape)
    return self._synthesize(y_hat, image_shape)

  @tf.function(autograph=True, input_signature=[
      tf.TensorSpec((None, None, 1), tf.uint8, name="image")])
  def reconstruct(self, image):
    """The reconstruction from rounded latents, without range coding."""
    y_hat = self.entropy_model.quantize(self._latents(image))
    return self._synthesize(y_hat, tf.shape(image)[:2])


def float32_twin(model: E2EModel) -> E2EModel:
  """`model` itself if it computes in float32, else a float32 copy of it."""
  if model.transform_dtype == "float32":
    return model
  twin = E2EModel(num_filters=model.num_filters, lmbda=model.lmbda)
  twin.set_weights(model.get_weights())
  return twin


# How an exported SavedModel stores the transforms' large parameters (`export`).
WEIGHT_DTYPES = ("float32", "float16")


def _large_parameters(layer) -> list:
  """The convolution kernels (RDFT) and GDN gamma matrices of a layer of
  the transforms: nearly all of the model's bytes."""
  out = []
  for obj in (layer, getattr(layer, "activation", None)):
    for attr in ("kernel_parameter", "gamma_parameter"):
      param = getattr(obj, attr, None)
      if param is not None and not isinstance(param, (str, tf.Tensor)):
        out.append(param)
  return out


def stored_twin(model: E2EModel, weights: str = "float32") -> E2EModel:
  """A float32-computing copy of `model` whose large parameters are stored
  as `weights` ("float32": `float32_twin`).

  "float16": every convolution kernel (its RDFT real and imaginary parts)
  and GDN gamma becomes a float16 variable, cast back to float32 where the
  layer uses it (TFC's parameters cast to the compute dtype); biases, GDN
  betas and the prior (its range-coding tables) stay float32. The
  SavedModel is then about half the size; the codec computes in float32 with
  the rounded weights, the same in every process.
  """
  if weights not in WEIGHT_DTYPES:
    raise ValueError(f"weights must be one of {WEIGHT_DTYPES}, got "
                     f"{weights!r}")
  if weights == "float32":
    return float32_twin(model)
  twin = E2EModel(num_filters=model.num_filters, lmbda=model.lmbda)
  twin.set_weights(model.get_weights())
  half = lambda v: tf.Variable(tf.cast(v, tf.float16), trainable=False,
                               name=v.name.split(":")[0].split("/")[-1])
  for layer in twin.analysis.layers + twin.synthesis.layers:
    for param in _large_parameters(layer):
      if isinstance(param, tfc.RDFTParameter):
        param.real, param.imag = half(param.real), half(param.imag)
      else:
        param.variable = half(param.variable)
  return twin


def export(model: E2EModel, path: str, weights: str = "float32"):
  """Writes the SavedModel of a trained model to `path`.

  It always computes in float32; `weights` is how the large parameters are
  stored (see `stored_twin`).
  """
  module = E2EExport(stored_twin(model, weights))
  return codec_base.save_module(module, path)


def validation_metrics(model: E2EModel, gray_images, name: str = "e2e-val"
                       ) -> dict:
  """The codec's real rate and quality on gray images, and JPEG's there.

  The model is range coded as `export` would write it (a file of model name
  `name`, header included); the reconstruction is `E2EExport.reconstruct`
  (what decoding the file gives). See `training.score_at_rate`.
  """
  module = E2EExport(float32_twin(model))
  pairs = []
  for gray in gray_images:
    image = tf.constant(np.asarray(gray, np.uint8)[..., None])
    string = module.compress(image).numpy()
    data = container.pack(name, gray.shape, b"", string)
    decoded = module.reconstruct(image).numpy()[..., 0]
    pairs.append((gray, decoded, codec_base.bpp_of(data, gray.shape)))
  return training.score_at_rate(pairs)


class E2ECodec(codec_base.NeuralCodec):
  """A trained E2E model (SavedModel) as a codec of real files.

  Files hold the range-coded latents and no codec parameters; the latent
  shape follows from the image shape (`latent_shape`).
  """

  family = FAMILY

  def __init__(self, path, name: str = None):
    super().__init__(path, name)
    self.num_filters = int(self.module.num_filters.numpy())
    self.lmbda = float(self.module.lmbda.numpy())

  def compress(self, image) -> bytes:
    """Compresses a gray uint8 image (H, W) into a file's bytes."""
    image = images.check_gray(image, errors.CodecError)
    string = self.module.compress(tf.constant(image[..., None])).numpy()
    return container.pack(self.name, image.shape, b"", string)

  def reconstruct(self, image) -> np.ndarray:
    """What `decompress(compress(image))` gives, computed without coding."""
    image = images.check_gray(image, errors.CodecError)
    return self.module.reconstruct(tf.constant(image[..., None])).numpy()[
        ..., 0]

  def decompress(self, data, name: str = "<bytes>") -> np.ndarray:
    """Decodes a file's bytes to a gray uint8 image (H, W).

    Raises:
      BitstreamError: not an intact file of this model.
    """
    box = self.unpack(data, name)
    if box.params:
      raise errors.BitstreamError(f"{name}: unexpected codec parameters")
    try:
      out = self.module.decompress(
          tf.constant(box.payload, tf.string),
          tf.constant(box.shape, tf.int32)).numpy()
    except tf.errors.InvalidArgumentError as e:
      raise errors.BitstreamError(
          f"{name}: range decoder rejected the payload "
          f"({e.message.splitlines()[0]})") from e
    return out[..., 0]


def train(*, train_dir: str, checkpoint_dir: str, export_dir: str,
          lmbda: float, num_filters: int = 64, patch_size: int = 128,
          batch_size: int = 8, learning_rate: float = 3e-4,
          clipnorm: float = 1.0,
          max_steps: int = 1_000_000, max_seconds: float = None,
          init_from: str = None, seed: int = 0, log_every: int = 50,
          checkpoint_every_s: float = 120.0, max_images: int = None,
          compute_dtype: str = "float32", sample_split: str = None,
          validation_images=None, eval_every: int = 0,
          continue_from: str = None, log=print) -> dict:
  """Trains (or resumes) an E2E model and exports its SavedModel.

  Args:
    train_dir: folder of training images (gray; colour is converted).
    checkpoint_dir: checkpoints and ``history.jsonl``; resumes from here.
    export_dir: where the SavedModel goes at the end (None: no export).
    lmbda: rate-distortion trade-off.
    num_filters: width of the transforms.
    patch_size: side of the random training crops.
    batch_size: crops per step.
    learning_rate: Adam's step size.
    clipnorm: clip the global gradient norm to this (guards against the
      occasional spike that drives GDN to NaN); 0 or None: no clipping.
    max_steps: total steps (over all restarts).
    max_seconds: total training seconds (over all restarts), or None.
    init_from: a checkpoint folder of another E2E run of the same width to
      start from (a warm start, e.g. to move a trained model to another
      lambda); ignored when resuming.
    seed: seed of the crops and of the initialization.
    log_every, checkpoint_every_s: progress and checkpoint intervals.
    max_images: use only the first this-many training images.
    compute_dtype: "float32" or "bfloat16" (the transforms; see `E2EModel`).
    sample_split: also train on this split of `tf_hbd.data.sample_images`
      (e.g. "train"; see `training.load_campaign_images`); None: only
      `train_dir`, which may then be any folder.
    validation_images: gray images for the learning curve
      (`validation_metrics` every `eval_every` steps and at the end, into
      ``curve.jsonl``); None: no curve.
    eval_every: steps between validations (0: only at the end).
    continue_from: a campaign snapshot of this run (model and step /
      seconds, no optimizer; `tf_hbd.baselines.campaign.snapshot`) to
      continue from when `checkpoint_dir` has no checkpoint; it takes
      precedence over `init_from` (see `training.train_loop`).
    log: where progress lines go.

  Returns:
    dict with the final ``step``, ``seconds`` and the last logged losses.
  """
  tf.random.set_seed(seed)
  sampler = training.crop_sampler(train_dir, patch_size, max_images,
                                  sample_split, seed)
  model = E2EModel(num_filters=num_filters, lmbda=lmbda,
                   compute_dtype=compute_dtype)
  optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate,
                                       global_clipnorm=clipnorm or None)
  optimizer.build(model.trainable_variables)  # slots outside tf.function
  # Checkpoint files on disk, not the state file (it may be empty or garbled:
  # the training loop sets it aside and restores the newest intact one).
  resuming = bool(checkpoints.checkpoints_on_disk(checkpoint_dir))
  if init_from and not resuming and not continue_from:
    source = checkpoints.readable_latest(init_from) or (
        checkpoints.checkpoints_on_disk(init_from) or [None])[-1]
    if source is None:
      raise ValueError(f"no checkpoint in {init_from!r}")
    tf.train.Checkpoint(model=model).restore(source).expect_partial()
    log(f"warm start from {source}")

  return training.fit(
      model, optimizer, sampler, batch_size, patch_size, checkpoint_dir,
      export_fn=export, export_dir=export_dir, max_steps=max_steps,
      max_seconds=max_seconds, log_every=log_every,
      checkpoint_every_s=checkpoint_every_s,
      evaluate=None if validation_images is None else
      lambda: validation_metrics(model, validation_images),
      eval_every=eval_every, continue_from=continue_from, log=log)
