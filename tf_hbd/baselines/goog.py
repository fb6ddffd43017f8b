"""GOOG: full-resolution image compression with recurrent networks, gray.

> "Full Resolution Image Compression with Recurrent Neural Networks"
> G. Toderici, D. Vincent, N. Johnston, S. J. Hwang, D. Minnen, J. Shor,
> M. Covell, CVPR 2017 (arXiv:1608.05148)

One of the two neural codecs that the paper (Mali et al., section 4) compares
the hybrid decoder with. The architecture follows Toderici et al., Figure 1,
with narrower layers (see `GoogConfig`; the paper's widths are
64 / 256 / 512 / 512 and 512 / 512 / 512 / 256 / 128):

* encoder E: a 3x3 stride-2 convolution, then three convolutional LSTMs whose
  input convolution (3x3) has stride 2 and whose hidden convolution is 1x1;
  an H x W input gives an (H/16) x (W/16) code grid;
* binarizer B: 1x1 convolution to 32 channels, tanh, then sign. While
  training, the sign is stochastic (+1 with probability (1 + x) / 2) and the
  gradient passes straight through; at test time it is ``sign`` (0 -> +1).
  32 bits per code position = 32 bits per 16 x 16 pixels = 1/8 bpp;
* decoder D: a 1x1 convolution, four convolutional LSTMs (the first with a
  2x2 input / 1x1 hidden kernel, the others 3x3 / 3x3), each followed by a
  depth-to-space 2x upsampling, and a 1x1 convolution to one channel;
* additive reconstruction over iterations t = 1..T: the encoder codes the
  residual r_{t-1} = x - x^_{t-1}; x^_t = x^_{t-1} + D(B(E(r_{t-1}))); the
  recurrent states carry over from one iteration to the next. The loss is the
  mean over iterations of the mean absolute residual |r_t| (Toderici et al.);
  training may weight the iterations unequally (`iteration_weights`) and
  use the mean squared residual instead (``loss_norm``), neither of which
  touches the model's variables, its export or its files.

Pixels enter as ``x / 255 - 0.5``. An image of any size is padded (edge
replication) to a multiple of 32 and the reconstruction is cropped back.

The bitstream of k iterations holds the first k code tensors inside the
package's file format (`tf_hbd.baselines.container`), in one of two forms:

* raw bits (1 parameter byte: k): the packed bits, ``k * Hp * Wp / 8`` bits
  for a padded Hp x Wp image, no entropy coding;
* entropy coded (2 parameter bytes: k, 1), for a model exported with
  tables (`export` with ``fit_images``): each iteration's bits range coded
  (tensorflow-compression's range coder) under a fixed context model fitted
  on training codes: each bit's probability depends on its iteration, its
  channel and 8 parent bits at the same position, chosen per (iteration,
  channel) among the lower channels of the same iteration and the channels
  of the previous iteration (`tf_hbd.baselines.goog_bits`); each iteration
  is a segment with its 4-byte length. Toderici et al. entropy code with a
  spatially adaptive BinaryRNN context model instead; this one decodes with
  32 vectorised coder calls per iteration.

`GoogCodec.compress` writes the smaller of the two; the rate counts every
byte either way. Since the encoder runs the decoder in its loop, the first
k iterations of a 16-iteration stream decode to exactly the encoder's
k-iteration reconstruction, so one compression serves every rate.

The exported SavedModel (`export`) stores the convolution kernels in float32
or, with ``weights="float16"`` (`stored_twin`), in float16, cast to float32
where each convolution uses them: the codec computes in float32 with the
rounded kernels either way (the biases, widths and bit tables are stored as
they are). It has `tf.function`s with input signatures:
``compress(image uint8 (H, W, 1), iterations int32) -> uint8 (k, bytes)``,
``decompress(codes uint8 (k, bytes), image_shape int32 (2,)) -> uint8
(H, W, 1)`` and ``reconstruct(image, iterations) -> uint8 (H, W, 1)``.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.baselines import codec_base
from tf_hbd.baselines import container
from tf_hbd.baselines import goog_bits
from tf_hbd.baselines import training
from tf_hbd.codecs import images

__all__ = ["GoogConfig", "ConvLSTMCell", "GoogModel", "GoogExport",
           "GoogCodec", "export", "train", "FAMILY", "BITS", "ALIGN",
           "MAX_ITERATIONS", "padded_shape", "code_bytes", "unpack_bits",
           "fit_bit_tables", "stored_twin", "WEIGHT_DTYPES",
           "bit_source_of", "BIT_SOURCE_KEY",
           "iteration_reconstructions", "bits_of", "validation_metrics",
           "iteration_weights", "LOSS_NORMS"]

FAMILY = "goog"
BITS = 32  # bits per code position
ALIGN = 32  # images are padded to a multiple of this
CODE_STRIDE = 16  # pixels per code position along each axis
MAX_ITERATIONS = 16


def padded_shape(image_shape):
  """(Hp, Wp): the image shape rounded up to a multiple of 32."""
  return tuple(-(-int(s) // ALIGN) * ALIGN for s in image_shape[:2])


def code_bytes(image_shape) -> int:
  """Bytes of one iteration's packed code for an image of shape (H, W)."""
  hp, wp = padded_shape(image_shape)
  return (hp // CODE_STRIDE) * (wp // CODE_STRIDE) * BITS // 8


@dataclasses.dataclass(frozen=True)
class GoogConfig:
  """Layer widths (Toderici et al.'s: 64, (256, 512, 512), 512,
  (512, 512, 256, 128))."""
  encoder_conv: int = 32
  encoder_rnn: tuple = (48, 64, 64)
  decoder_conv: int = 64
  decoder_rnn: tuple = (64, 64, 32, 16)


class ConvLSTMCell(tf.keras.layers.Layer):
  """Convolutional LSTM with a (possibly strided) input convolution.

  ``z = W_x * x + W_h * h``; ``i, f, o, g = split(z)``;
  ``c' = sigmoid(f) c + sigmoid(i) tanh(g)``; ``h' = sigmoid(o) tanh(c')``
  (Toderici et al. 2017, section 2.2). The forget-gate bias starts at 1.
  """

  def __init__(self, filters, kernel_size, hidden_kernel_size, strides=1,
               **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.kernel_size = kernel_size
    self.hidden_kernel_size = hidden_kernel_size
    self.strides = strides
    bias = np.zeros(4 * self.filters, np.float32)
    bias[self.filters:2 * self.filters] = 1.0  # forget gate
    self.input_conv = tf.keras.layers.Conv2D(
        4 * self.filters, kernel_size, strides=strides, padding="same",
        bias_initializer=tf.keras.initializers.Constant(bias), name="input")
    self.hidden_conv = tf.keras.layers.Conv2D(
        4 * self.filters, hidden_kernel_size, padding="same", use_bias=False,
        name="hidden")

  def build(self, input_shape):
    self.input_conv.build(input_shape)
    self.hidden_conv.build((None, None, None, self.filters))
    super().build(input_shape)

  def call(self, inputs, states):
    h, c = states
    z = self.input_conv(inputs) + self.hidden_conv(h)
    i, f, o, g = tf.split(z, 4, axis=-1)
    c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
    h = tf.sigmoid(o) * tf.tanh(c)
    return h, (h, c)

  def get_config(self):
    return {**super().get_config(), "filters": self.filters,
            "kernel_size": self.kernel_size,
            "hidden_kernel_size": self.hidden_kernel_size,
            "strides": self.strides}


def _binarize(x, stochastic):
  """Sign of x in {-1, +1}; stochastic rounding with straight-through grads."""
  if stochastic:
    prob_one = (1.0 + x) / 2.0
    b = tf.where(tf.random.uniform(tf.shape(x)) < prob_one, 1.0, -1.0)
  else:
    b = tf.where(x >= 0.0, 1.0, -1.0)
  return x + tf.stop_gradient(b - x)


class GoogModel(tf.keras.Model):
  """Encoder, binarizer and decoder of GOOG; see the module docstring."""

  def __init__(self, config: GoogConfig = GoogConfig(), **kwargs):
    super().__init__(**kwargs)
    self.config = config
    c = config
    self.encoder_conv = tf.keras.layers.Conv2D(
        c.encoder_conv, 3, strides=2, padding="same", name="e_conv")
    self.encoder_rnns = [
        ConvLSTMCell(n, 3, 1, strides=2, name=f"e_rnn_{i}")
        for i, n in enumerate(c.encoder_rnn)]
    self.binarizer = tf.keras.layers.Conv2D(BITS, 1, name="binarizer")
    self.decoder_conv = tf.keras.layers.Conv2D(c.decoder_conv, 1,
                                               name="d_conv")
    self.decoder_rnns = [
        ConvLSTMCell(n, 2 if i == 0 else 3, 1 if i == 0 else 3,
                     name=f"d_rnn_{i}")
        for i, n in enumerate(c.decoder_rnn)]
    self.output_conv = tf.keras.layers.Conv2D(1, 1, name="d_out")
    self._build()

  def _build(self):
    c = self.config
    self.encoder_conv.build((None, None, None, 1))
    channels = c.encoder_conv
    for cell, n in zip(self.encoder_rnns, c.encoder_rnn):
      cell.build((None, None, None, channels))
      channels = n
    self.binarizer.build((None, None, None, channels))
    self.decoder_conv.build((None, None, None, BITS))
    channels = c.decoder_conv
    for cell, n in zip(self.decoder_rnns, c.decoder_rnn):
      cell.build((None, None, None, channels))
      channels = n // 4
    self.output_conv.build((None, None, None, channels))
    self.built = True

  def initial_state(self, batch, height, width):
    """Zero LSTM states for a batch of padded (height, width) images."""
    def zeros(cells, strides):
      return [(tf.zeros((batch, height // s, width // s, cell.filters)),) * 2
              for cell, s in zip(cells, strides)]
    return (zeros(self.encoder_rnns, (4, 8, 16)),
            zeros(self.decoder_rnns, (16, 8, 4, 2)))

  def encode_step(self, residual, states, stochastic=False):
    """One iteration of E then B: (codes in {-1, +1} (B, h, w, 32), states)."""
    x = self.encoder_conv(residual)
    new_states = []
    for cell, state in zip(self.encoder_rnns, states):
      x, state = cell(x, state)
      new_states.append(state)
    return _binarize(tf.tanh(self.binarizer(x)), stochastic), new_states

  def decode_step(self, codes, states):
    """One iteration of D: (residual estimate (B, H, W, 1), states)."""
    x = self.decoder_conv(codes)
    new_states = []
    for cell, state in zip(self.decoder_rnns, states):
      x, state = cell(x, state)
      new_states.append(state)
      x = tf.nn.depth_to_space(x, 2)
    return self.output_conv(x), new_states

  def call(self, images, iterations=MAX_ITERATIONS, training=False,
           loss_norm="l1", loss_weights=None):
    """Training losses of a batch of uint8 images (B, H, W, 1), H, W % 32 == 0.

    Args:
      images: uint8 (B, H, W, 1).
      iterations: iterations unrolled.
      training: stochastic binarization (with straight-through gradients).
      loss_norm: "l1" (Toderici et al.: mean |r_t|) or "l2" (mean r_t^2,
        the loss PSNR measures); see `LOSS_NORMS`.
      loss_weights: per-iteration weights of the loss
        (`iteration_weights`); None: the mean over iterations.

    Returns:
      dict of scalars: ``loss`` (the weighted sum over iterations of the
      mean |r_t| or r_t^2, in [0, 1] pixel units; uniform weights: the
      mean) and ``psnr_<t>`` of the additive reconstruction after t
      iterations (t = 1, 2, 3, 4, 8, 16 where run).
    """
    weights = iteration_weights(loss_weights, iterations)
    error = _LOSS_FUNCTIONS[_check_norm(loss_norm)]
    x = tf.cast(images, tf.float32) / 255.0 - 0.5
    shape = tf.shape(x)
    enc_states, dec_states = self.initial_state(shape[0], shape[1], shape[2])
    x_hat = tf.zeros_like(x)
    residual = x
    losses = []
    out = {}
    for t in range(1, iterations + 1):
      codes, enc_states = self.encode_step(residual, enc_states,
                                           stochastic=training)
      delta, dec_states = self.decode_step(codes, dec_states)
      x_hat = x_hat + delta
      residual = x - x_hat
      losses.append(tf.reduce_mean(error(residual)))
      if t in (1, 2, 3, 4, 8, 16):
        mse = tf.reduce_mean(tf.square(
            tf.clip_by_value(x_hat, -0.5, 0.5) - x))
        out[f"psnr_{t}"] = -10.0 * tf.math.log(mse) / np.log(10.0)
    if loss_weights is None:
      out["loss"] = tf.add_n(losses) / float(iterations)
    else:
      out["loss"] = tf.add_n([float(w) * l for w, l in zip(weights, losses)])
    return out


# The training losses of a residual (`GoogModel.call`'s ``loss_norm``).
_LOSS_FUNCTIONS = {"l1": tf.abs, "l2": tf.square}
LOSS_NORMS = tuple(_LOSS_FUNCTIONS)


def _check_norm(loss_norm):
  if loss_norm not in _LOSS_FUNCTIONS:
    raise ValueError(f"loss_norm must be one of {LOSS_NORMS}, got "
                     f"{loss_norm!r}")
  return loss_norm


def iteration_weights(spec, iterations: int) -> tuple:
  """The per-iteration weights of the training loss, summing to 1.

  Toderici et al. weight every iteration alike; a rate target of a few
  iterations (issue 13: 0.375 bpp = 3 iterations of raw bits, 3-4 entropy
  coded) gains from weighting the first ones more.

  Args:
    spec: None (every iteration alike), or a sequence of non-negative
      numbers w_1, w_2, ..., w_n (n <= `iterations`; not all 0): iteration
      t gets w_t, the iterations after n get w_n; or such numbers as one
      comma-separated string. E.g. "4,4,4,1": iterations 1-3 weigh 4 times
      as much as each of the later ones.
    iterations: iterations unrolled.

  Returns:
    tuple of `iterations` floats summing to 1.

  Raises:
    ValueError: `spec` is not such a sequence.
  """
  if spec is None:
    return (1.0 / iterations,) * iterations
  if isinstance(spec, str):
    try:
      spec = [float(w) for w in spec.split(",")]
    except ValueError:
      raise ValueError(f"loss weights {spec!r}: not comma-separated "
                       "numbers") from None
  spec = [float(w) for w in spec]
  if (not spec or len(spec) > iterations or min(spec) < 0.0
      or not all(np.isfinite(spec)) or not any(spec)):
    raise ValueError(f"loss weights {spec}: 1..{iterations} non-negative "
                     "finite numbers, not all 0")
  weights = np.array(spec + spec[-1:] * (iterations - len(spec)))
  return tuple(float(w) for w in weights / weights.sum())


def _pad_edge(image, height, width):
  """Pads (H, W, C) to (height, width, C) by repeating the last row/column."""
  h, w = tf.shape(image)[0], tf.shape(image)[1]
  image = tf.concat([image, tf.repeat(image[-1:], height - h, axis=0)], 0)
  return tf.concat([image, tf.repeat(image[:, -1:], width - w, axis=1)], 1)


_BIT_WEIGHTS = tf.constant([128, 64, 32, 16, 8, 4, 2, 1], tf.int32)


def _pack(codes):
  """{-1, +1} codes (1, h, w, 32) -> uint8 (h * w * 4,), MSB first."""
  bits = tf.reshape(tf.cast(codes > 0, tf.int32), (-1, 8))
  return tf.cast(tf.reduce_sum(bits * _BIT_WEIGHTS, axis=1), tf.uint8)


def _unpack(packed, h, w):
  """Inverse of `_pack`."""
  bits = tf.bitwise.right_shift(tf.cast(packed, tf.int32)[:, None],
                                tf.constant([7, 6, 5, 4, 3, 2, 1, 0]))
  bits = tf.bitwise.bitwise_and(bits, 1)
  return tf.reshape(tf.cast(bits, tf.float32) * 2.0 - 1.0, (1, h, w, BITS))


class GoogExport(tf.Module):
  """The coding functions of a trained `GoogModel`, ready for SavedModel."""

  def __init__(self, model: GoogModel, bit_tables=None, bit_source=""):
    super().__init__(name="goog")
    if bit_tables is not None:  # the entropy coder's (`goog_bits.fit`)
      parents, p0 = goog_bits.check_tables(*bit_tables)
      if parents.shape[0] != MAX_ITERATIONS:
        raise ValueError(f"bit tables must cover {MAX_ITERATIONS} iterations")
      self.bit_parents = tf.Variable(parents, trainable=False,
                                     name="bit_parents")
      self.bit_p0 = tf.Variable(p0, trainable=False, name="bit_p0")
      # What the tables were fitted on, for the record (`BIT_SOURCE_KEY`).
      self.bit_source = tf.Variable(str(bit_source), trainable=False,
                                    name="bit_source")
    # The functions read the model's variables, tracked here; the Keras
    # model itself stays out of the SavedModel (see `Untracked`).
    self.weights = list(model.variables)
    self._ref = codec_base.Untracked(model)
    c = model.config
    self.widths = tf.Variable(
        [c.encoder_conv, *c.encoder_rnn, c.decoder_conv, *c.decoder_rnn],
        trainable=False, name="widths")

  @property
  def _model(self):
    return self._ref.value

  def _prepare(self, image):
    shape = tf.shape(image)[:2]
    padded = (shape + ALIGN - 1) // ALIGN * ALIGN
    x = _pad_edge(tf.cast(image, tf.float32) / 255.0 - 0.5,
                  padded[0], padded[1])[None]
    return x, padded

  def _to_image(self, x_hat, shape):
    x_hat = (x_hat[0, :shape[0], :shape[1], :] + 0.5) * 255.0
    return tf.saturate_cast(tf.round(x_hat), tf.uint8)

  def _run_encoder(self, image, iterations):
    x, padded = self._prepare(image)
    enc_states, dec_states = self._model.initial_state(1, padded[0], padded[1])

    def body(t, x_hat, enc_states, dec_states, packed):
      codes, enc_states = self._model.encode_step(x - x_hat, enc_states)
      delta, dec_states = self._model.decode_step(codes, dec_states)
      return (t + 1, x_hat + delta, enc_states, dec_states,
              packed.write(t, _pack(codes)))

    _, x_hat, _, _, packed = tf.while_loop(  # no AutoGraph (issue 16)
        lambda t, *_: t < iterations, body,
        (tf.constant(0), tf.zeros_like(x), enc_states, dec_states,
         tf.TensorArray(tf.uint8, size=iterations)))
    size = padded[0] // CODE_STRIDE * padded[1] // CODE_STRIDE * BITS // 8
    return tf.reshape(packed.stack(), (iterations, size)), x_hat

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec((None, None, 1), tf.uint8, name="image"),
      tf.TensorSpec((), tf.int32, name="iterations")])
  def compress(self, image, iterations):
    """Packed codes uint8 (iterations, bytes) of an image (H, W, 1)."""
    return self._run_encoder(image, iterations)[0]

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec((None, None, 1), tf.uint8, name="image"),
      tf.TensorSpec((), tf.int32, name="iterations")])
  def reconstruct(self, image, iterations):
    """The encoder's own reconstruction after `iterations` iterations."""
    return self._to_image(self._run_encoder(image, iterations)[1],
                          tf.shape(image)[:2])

  @tf.function(autograph=False, input_signature=[
      tf.TensorSpec((None, None), tf.uint8, name="codes"),
      tf.TensorSpec((2,), tf.int32, name="image_shape")])
  def decompress(self, codes, image_shape):
    """Decodes packed codes (k, bytes) to a uint8 image (H, W, 1)."""
    padded = (image_shape + ALIGN - 1) // ALIGN * ALIGN
    h, w = padded[0] // CODE_STRIDE, padded[1] // CODE_STRIDE
    tf.debugging.assert_equal(tf.shape(codes)[1], h * w * BITS // 8,
                              message="code size does not match the shape")
    _, dec_states = self._model.initial_state(1, padded[0], padded[1])

    def body(t, x_hat, dec_states):
      delta, dec_states = self._model.decode_step(_unpack(codes[t], h, w),
                                                 dec_states)
      return t + 1, x_hat + delta, dec_states

    _, x_hat, _ = tf.while_loop(  # no AutoGraph (issue 16)
        lambda t, *_: t < tf.shape(codes)[0], body,
        (tf.constant(0), tf.zeros((1, padded[0], padded[1], 1)), dec_states))
    return self._to_image(x_hat, image_shape)


# How an exported SavedModel stores the convolution kernels (`export`).
WEIGHT_DTYPES = ("float32", "float16")


def _cast_kernel_op(conv):
  """`conv`'s convolution with its kernel cast to float32 first."""
  plain = type(conv).convolution_op
  return lambda inputs, kernel: plain(conv, inputs,
                                      tf.cast(kernel, tf.float32))


def stored_twin(model: GoogModel, weights: str = "float32") -> GoogModel:
  """A copy of `model` whose convolution kernels are stored as `weights`.

  "float16": every kernel (nearly all of the bytes) becomes a float16
  variable, cast to float32 inside each convolution, so the twin computes
  in float32 with the rounded kernels, the same in every process; the
  biases stay float32. "float32": `model` itself.
  """
  if weights not in WEIGHT_DTYPES:
    raise ValueError(f"weights must be one of {WEIGHT_DTYPES}, got "
                     f"{weights!r}")
  if weights == "float32":
    return model
  twin = GoogModel(model.config)
  twin.set_weights(model.get_weights())
  convs = [layer for layer in twin.submodules
           if isinstance(layer, tf.keras.layers.Conv2D)]
  for conv in convs:
    conv.kernel = tf.Variable(tf.cast(conv.kernel, tf.float16),
                              trainable=False, name="kernel")
    conv.convolution_op = _cast_kernel_op(conv)
  return twin


def export(model: GoogModel, path: str, fit_images=None,
           weights: str = "float32", fit_source: str = ""):
  """Writes the SavedModel of a trained model to `path`.

  Args:
    model: a trained `GoogModel`.
    path: the SavedModel folder.
    fit_images: gray uint8 training images (H, W) to fit the entropy
      coder's tables on (`fit_bit_tables`, with the stored kernels), stored
      in the SavedModel; None: no tables (files carry the raw bits).
    weights: how the convolution kernels are stored ("float32" or
      "float16"; see `stored_twin`). The codec computes in float32.
    fit_source: what `fit_images` are (e.g. "400 images of train400"),
      stored with the tables (`bit_source_of`).
  """
  model = stored_twin(model, weights)
  tables = None if fit_images is None else fit_bit_tables(model, fit_images)
  module = GoogExport(model, tables, fit_source)
  return codec_base.save_module(module, path)


BIT_SOURCE_KEY = "bit_source/.ATTRIBUTES/VARIABLE_VALUE"


def bit_source_of(saved_model_dir: str):
  """What a GOOG SavedModel's bit tables were fitted on ("" if not
  recorded), or None: it has no tables (its files carry the raw bits)."""
  try:
    reader = tf.train.load_checkpoint(
        os.path.join(saved_model_dir, "variables", "variables"))
  except (tf.errors.OpError, ValueError):
    return None
  if not reader.has_tensor("bit_p0/.ATTRIBUTES/VARIABLE_VALUE"):
    return None
  if not reader.has_tensor(BIT_SOURCE_KEY):
    return ""
  return reader.get_tensor(BIT_SOURCE_KEY).decode("utf-8")


def unpack_bits(codes, image_shape) -> np.ndarray:
  """Packed codes uint8 (k, bytes) -> bits uint8 (k, h, w, 32) in {0, 1}."""
  hp, wp = padded_shape(image_shape)
  bits = np.unpackbits(np.asarray(codes, np.uint8), axis=1)
  return bits.reshape(-1, hp // CODE_STRIDE, wp // CODE_STRIDE, BITS)


def bits_of(module: "GoogExport", gray, iterations: int) -> np.ndarray:
  """Bits uint8 (iterations, h, w, 32) in {0, 1} of a gray uint8 image, as
  `module.compress` writes them (reuse one module: it traces once)."""
  packed = module.compress(tf.constant(np.asarray(gray, np.uint8)[..., None]),
                           tf.constant(iterations, tf.int32))
  return unpack_bits(packed.numpy(), np.shape(gray))


def fit_bit_tables(model: GoogModel, gray_images,
                   iterations: int = MAX_ITERATIONS) -> tuple:
  """The entropy coder's tables (`goog_bits.fit`) fitted on the codes of
  `iterations` iterations of gray uint8 training images."""
  module = GoogExport(model)
  codes = [bits_of(module, g, iterations) for g in gray_images]
  return goog_bits.fit(codes, iterations)


def iteration_reconstructions(model: GoogModel, image,
                              iterations: int = MAX_ITERATIONS) -> np.ndarray:
  """The decoded image after each of 1..`iterations` iterations, in one pass.

  The same computation as `GoogExport.reconstruct` (and hence as decoding
  the first k iterations of a file) for every k at once.

  Args:
    model: a (possibly training) `GoogModel`.
    image: gray uint8 (H, W).
    iterations: how many iterations to run.

  Returns:
    uint8 array (iterations, H, W).
  """
  module = GoogExport(model)
  image = tf.constant(np.asarray(image, np.uint8)[..., None])
  x, padded = module._prepare(image)  # pylint: disable=protected-access
  enc_states, dec_states = model.initial_state(1, padded[0], padded[1])
  x_hat = tf.zeros_like(x)
  out = []
  for _ in range(iterations):
    codes, enc_states = model.encode_step(x - x_hat, enc_states)
    delta, dec_states = model.decode_step(codes, dec_states)
    x_hat = x_hat + delta
    out.append(module._to_image(x_hat, tf.shape(image)[:2])  # pylint: disable=protected-access
               .numpy()[..., 0])
  return np.stack(out)


def validation_metrics(model: GoogModel, gray_images,
                       name: str = "goog-val",
                       iterations: int = MAX_ITERATIONS,
                       compare_at: int = 3) -> dict:
  """PSNR after every iteration, and the full comparison with JPEG at k =
  `compare_at` iterations (3: 0.375 bpp plus the header), on gray images.

  Rates are those of the real files of a model called `name` (header
  included; `GoogCodec.bpp`).

  Returns:
    dict: ``psnr_<k>`` for k = 1..iterations (means over images) and, from
    `training.score_at_rate` at k = compare_at, ``bpp``, ``psnr``,
    ``ms_ssim``, ``jpeg_bpp``, ``jpeg_psnr``, ``vs_jpeg_db``.
  """
  from tf_hbd.evaluation import metrics  # pylint: disable=g-import-not-at-top
  per_k = np.zeros(iterations)
  pairs = []
  for gray in gray_images:
    recs = iteration_reconstructions(model, gray, iterations)
    per_k += [metrics.psnr(gray, r) for r in recs]
    pairs.append((gray, recs[compare_at - 1],
                   GoogCodec.bpp(gray.shape, compare_at, len(name))))
  out = {f"psnr_{k + 1}": round(float(v) / len(gray_images), 4)
         for k, v in enumerate(per_k)}
  return {**training.score_at_rate(pairs), **out}


class GoogCodec(codec_base.NeuralCodec):
  """A trained GOOG model (SavedModel) as a codec of real files.

  Two kinds of files, told apart by their parameter bytes:

  * raw bits: one parameter byte, the number of iterations k (1..16); the
    payload is the k packed code tensors;
  * entropy coded (`ENTROPY_CODED`; only with a model exported with
    tables, see `export`): two parameter bytes, k and 1; the payload is k
    segments, each a 4-byte big-endian length and the range-coded bits of
    one iteration (`goog_bits`).

  `compress` writes the smaller of the two (entropy coded whenever the model
  has tables and that is not larger); `decompress` reads both.
  """

  family = FAMILY
  ENTROPY_CODED = 1  # the second parameter byte of entropy-coded files

  @property
  def bit_tables(self):
    """(parents, range coder lookup) of the entropy coder (`goog_bits`), or
    None: the model has no tables (raw bits only)."""
    if not hasattr(self, "_tables"):
      self._tables = None
      if hasattr(self.module, "bit_p0"):
        parents, p0 = goog_bits.check_tables(self.module.bit_parents.numpy(),
                                             self.module.bit_p0.numpy())
        if parents.shape[0] != MAX_ITERATIONS:
          raise errors.HbdError(f"{self.path}: bit tables of "
                                f"{parents.shape[0]} iterations")
        self._tables = parents, goog_bits.lookup_of(p0)
        self._p0 = p0
    return self._tables

  @staticmethod
  def _check_iterations(iterations):
    if not 1 <= int(iterations) <= MAX_ITERATIONS:
      raise errors.CodecError(f"iterations must be in 1..{MAX_ITERATIONS}, "
                              f"got {iterations}")
    return int(iterations)

  @staticmethod
  def bpp(image_shape, iterations, name_length: int) -> float:
    """The bit rate of a raw-bit file of `iterations` iterations (header
    included); an entropy-coded file (`pack`) is never larger."""
    size = container.header_bytes("x" * name_length, b"\0") + (
        iterations * code_bytes(image_shape))
    return 8.0 * size / float(image_shape[0] * image_shape[1])

  def codes(self, image, iterations=MAX_ITERATIONS) -> np.ndarray:
    """Packed codes uint8 (iterations, bytes) of a gray image (H, W)."""
    image = images.check_gray(image, errors.CodecError)
    return self.module.compress(
        tf.constant(image[..., None]),
        tf.constant(self._check_iterations(iterations), tf.int32)).numpy()

  def pack(self, image_shape, codes, iterations=None,
           entropy_coded=None) -> bytes:
    """The file of the first `iterations` rows of `codes`.

    Args:
      image_shape: (H, W) of the image.
      codes: packed codes uint8 (T, bytes) (`codes`).
      iterations: how many rows to keep (None: all).
      entropy_coded: True: range-code the bits (the model needs tables);
        False: raw bits; None: the smaller file.
    """
    k = codes.shape[0] if iterations is None else self._check_iterations(
        iterations)
    if k > codes.shape[0]:
      raise ValueError(f"only {codes.shape[0]} iterations were coded")
    raw = container.pack(self.name, image_shape[:2], bytes([k]),
                         np.ascontiguousarray(codes[:k]).tobytes())
    if entropy_coded is False or (entropy_coded is None
                                  and self.bit_tables is None):
      return raw
    if self.bit_tables is None:
      raise errors.CodecError(f"model {self.name!r} has no entropy-coder "
                              "tables (export it with fit_images)")
    coded = container.pack(self.name, image_shape[:2],
                           bytes([k, self.ENTROPY_CODED]),
                           self._encode_bits(image_shape, codes[:k]))
    return raw if entropy_coded is None and len(raw) < len(coded) else coded

  def _encode_bits(self, image_shape, codes) -> bytes:
    bits = unpack_bits(codes, image_shape)
    out = []
    for t in range(bits.shape[0]):
      segment = goog_bits.encode_iteration(
          t, bits[t], bits[t - 1] if t else None, *self.bit_tables)
      out += [len(segment).to_bytes(4, "big"), segment]
    return b"".join(out)

  @staticmethod
  def _segments(payload, k, name) -> list:
    """The k segments of an entropy-coded payload, lengths checked."""
    pos, out = 0, []
    for t in range(k):
      size = int.from_bytes(payload[pos:pos + 4], "big")
      if pos + 4 > len(payload) or size < 1 or pos + 4 + size > len(payload):
        raise errors.BitstreamError(f"{name}: bad segment length of "
                                    f"iteration {t + 1}")
      out.append(payload[pos + 4:pos + 4 + size])
      pos += 4 + size
    if pos != len(payload):
      raise errors.BitstreamError(f"{name}: {len(payload) - pos} bytes after "
                                  "the last segment")
    return out

  def _decode_bits(self, box, k, name) -> np.ndarray:
    """Packed codes (k, bytes) of an entropy-coded payload."""
    if self.bit_tables is None:
      raise errors.BitstreamError(f"{name}: entropy-coded file, but model "
                                  f"{self.name!r} has no tables")
    segments = self._segments(box.payload, k, name)
    hp, wp = padded_shape(box.shape)
    shape = (hp // CODE_STRIDE, wp // CODE_STRIDE)
    least = goog_bits.min_segment_bytes(self._p0, shape[0] * shape[1] * BITS)
    if min(len(s) for s in segments) < least:
      raise errors.BitstreamError(f"{name}: a segment is too short for a "
                                  f"{box.shape[0]} x {box.shape[1]} image")
    bits = []
    for t, segment in enumerate(segments):
      bits.append(goog_bits.decode_iteration(
          t, segment, bits[-1] if t else None, shape, *self.bit_tables,
          name=name))
    return np.packbits(np.stack(bits).reshape(k, -1), axis=1)

  def compress(self, image, iterations=MAX_ITERATIONS) -> bytes:
    """Compresses a gray uint8 image (H, W) with `iterations` iterations."""
    image = images.check_gray(image, errors.CodecError)
    return self.pack(image.shape, self.codes(image, iterations))

  def reconstruct(self, image, iterations=MAX_ITERATIONS) -> np.ndarray:
    """What `decompress(compress(image, iterations))` gives."""
    image = images.check_gray(image, errors.CodecError)
    return self.module.reconstruct(
        tf.constant(image[..., None]),
        tf.constant(self._check_iterations(iterations), tf.int32)).numpy()[
            ..., 0]

  def decompress(self, data, name: str = "<bytes>") -> np.ndarray:
    """Decodes a file's bytes to a gray uint8 image (H, W).

    Raises:
      BitstreamError: not an intact file of this model.
    """
    box = self.unpack(data, name)
    if (len(box.params) not in (1, 2)
        or not 1 <= box.params[0] <= MAX_ITERATIONS):
      raise errors.BitstreamError(f"{name}: bad iteration count")
    k = box.params[0]
    if len(box.params) == 2:
      if box.params[1] != self.ENTROPY_CODED:
        raise errors.BitstreamError(f"{name}: unknown coding mode "
                                    f"{box.params[1]}")
      codes = self._decode_bits(box, k, name)
    else:
      per = code_bytes(box.shape)
      if len(box.payload) != k * per:
        raise errors.BitstreamError(f"{name}: payload of {len(box.payload)} "
                                    f"bytes, expected {k} x {per}")
      codes = np.frombuffer(box.payload, np.uint8).reshape(k, per)
    out = self.module.decompress(tf.constant(codes),
                                  tf.constant(box.shape, tf.int32)).numpy()
    return out[..., 0]


def train(*, train_dir: str, checkpoint_dir: str, export_dir: str,
          config: GoogConfig = GoogConfig(), patch_size: int = 32,
          batch_size: int = 32, iterations: int = MAX_ITERATIONS,
          learning_rate: float = 5e-4, max_steps: int = 1_000_000,
          max_seconds: float = None, seed: int = 0, log_every: int = 50,
          checkpoint_every_s: float = 120.0, max_images: int = None,
          sample_split: str = None, validation_images=None,
          eval_every: int = 0, continue_from: str = None,
          decay_from: float = None, loss_norm: str = "l1",
          loss_weights=None, warmup_steps: int = None, log=print) -> dict:
  """Trains (or resumes) a GOOG model and exports its SavedModel.

  Args:
    train_dir: folder of training images (gray; colour is converted).
    checkpoint_dir: checkpoints and ``history.jsonl``; resumes from here.
    export_dir: where the SavedModel goes at the end (None: no export).
    config: layer widths.
    patch_size: side of the random training crops (a multiple of 32).
    batch_size: crops per step.
    iterations: iterations unrolled in training.
    learning_rate: Adam's step size.
    max_steps: total steps (over all restarts).
    max_seconds: total training seconds (over all restarts), or None.
    seed: seed of the crops, initialization and binarizer noise.
    log_every, checkpoint_every_s: progress and checkpoint intervals.
    max_images: use only the first this-many training images.
    sample_split: also train on this split of `tf_hbd.data.sample_images`
      (see `training.load_campaign_images`); None: only `train_dir`.
    validation_images: gray images for the learning curve
      (`validation_metrics` every `eval_every` steps and at the end, into
      ``curve.jsonl``); None: no curve.
    eval_every: steps between validations (0: only at the end).
    continue_from: a campaign snapshot of this run to continue from when
      `checkpoint_dir` has no checkpoint (see `training.train_loop`).
    decay_from: the fraction of `max_seconds` after which the rate decays
      (a cosine, `training.fit`); None: a constant rate.
    loss_norm, loss_weights: the training loss (`GoogModel.call`,
      `iteration_weights`); default: Toderici et al.'s mean over
      iterations of the mean |r_t|.
    warmup_steps: updates over which a fresh optimizer's rate is ramped
      (None: `training.WARMUP_STEPS`).
    log: where progress lines go.

  Returns:
    dict with the final ``step`` and ``seconds``.
  """
  if patch_size % ALIGN:
    raise ValueError(f"patch_size must be a multiple of {ALIGN}")
  _check_norm(loss_norm)
  iteration_weights(loss_weights, iterations)  # bad weights fail here
  tf.random.set_seed(seed)
  sampler = training.crop_sampler(train_dir, patch_size, max_images,
                                  sample_split, seed)
  model = GoogModel(config)
  optimizer = tf.keras.optimizers.Adam(learning_rate=learning_rate,
                                       global_clipnorm=1.0)
  optimizer.build(model.trainable_variables)  # slots outside tf.function

  return training.fit(
      model, optimizer, sampler, batch_size, patch_size, checkpoint_dir,
      export_fn=export, export_dir=export_dir,
      call_kwargs={"iterations": iterations, "loss_norm": loss_norm,
                   "loss_weights": _hashable(loss_weights)},
      max_steps=max_steps,
      max_seconds=max_seconds, log_every=log_every,
      checkpoint_every_s=checkpoint_every_s,
      evaluate=None if validation_images is None else
      lambda: validation_metrics(model, validation_images),
      eval_every=eval_every, continue_from=continue_from, log=log,
      decay_from=decay_from, warmup_steps=warmup_steps)


def _hashable(loss_weights):
  """Loss weights as a call argument (a string or tuple, or None)."""
  if loss_weights is None or isinstance(loss_weights, str):
    return loss_weights
  return tuple(float(w) for w in loss_weights)
