"""The hybrid neural iterative decoder (HBD) and the sibling neural estimator.

`HybridDecoder` is the estimator of the paper's section 2. For a block of 9
decoded patches q_1..q_9 (each d x d, flattened row-major, pixels in [0, 1]),
the target's index ``position`` in the block (0..8, see `tf_hbd.codecs.patches`)
and k = 1..K::

    e     = W_1 q_1 + ... + W_9 q_9  [+ b_e]  [+ P[position]]     (phi_e = id)
    s_k   = cell(e, s_{k-1})          s_0 = 0   (eqs. 1-10, `tf_hbd.model.cells`)
    p~_k  = U s_k + c  [+ q_position]                              (phi_d = id)

The bracketed terms are options; the paper's plain form has none of them:

* ``use_position`` (default True): a learned table P (9, m), row ``position``
  added to e. Under the paper's boundary rule the same 9 patches serve up to 9
  targets, so the model must be told which one to reconstruct. Because the
  position acts only through e, "the input weights act only through e" still
  holds for RTRL/UORO.
* ``residual`` (default True): the decoded target patch (the context patch at
  ``position``) is added to the output, so U s_k + c learns the correction.
  With U = 0 and c = 0 the output is exactly the decoded patch.
* ``embed_bias`` (default False): b_e in the transformation function.
* ``center_inputs`` (default False here, True in ``scripts/train.py``): the
  transformation sees q - 0.5 instead of q. Mathematically this is only a
  constant shift of e (a bias -0.5 W 1), but it changes optimisation a lot:
  with all-positive inputs every W update moves e coherently and, with Adam,
  quickly saturates the gates. Measured (JPEG 2000, d = 16, LSTM-128, Adam
  1e-3, 1500 steps on 60 train400 images): loss / identity loss 0.983
  centred vs 1.002 (stuck at the codec's output) uncentred.

The K reconstructions are returned stacked, (B, K, d*d), unclipped, in [0, 1]
pixel units; inference uses the last one. Defaults follow the paper (section
3.2): 512 units, weights ~ U(-0.054, 0.054) (seeded), K = 4, LSTM cell.

**Pure pieces for the learning algorithms.** Every piece takes its
parameters explicitly (``params=None`` means the model's own variables):
``embed(context, position, params) -> e`` over ``embed_variables``;
``cell.step(e, states, params) -> (s, states)`` over ``step_variables``;
``readout(s, context, position, params) -> (B, d*d)`` over
``readout_variables``; ``initial_state(batch_size)``; and
``unroll(context, position, K, embed_params, step_params, readout_params)``.
e is computed once and reused at every step.

**SNE (`SiblingDecoder`, the paper's "SNE-RNN", Mali et al., DCC 2020).** The
original's details are not public; our interpretation:

* Two sibling estimators, each with its own transformation function (W, P,
  b_e), its own state cell and its own readout (U, c). The *causal* sibling
  sees the block patches that precede the target in raster order plus the
  target (block index j <= position); the *non-causal* sibling sees the target
  and the patches that follow it (j >= position). The other patches are
  zeroed. For an interior target (position 4) these are the upper-left and
  lower-right halves of the block, both including the target.
* Gradient communication: each sibling's cell input at step k is its own e plus
  a learned projection of the other sibling's previous state,
  ``x^a_k = e^a + C_a s^b_{k-1}``, ``x^b_k = e^b + C_b s^a_{k-1}`` (C_a, C_b ~
  U(-0.054, 0.054)). The loss on either sibling's output thus back-propagates
  into the other sibling's parameters and states, and the two are trained
  jointly as one recurrent system.
* Fusion: a learned per-pixel gate g = sigmoid(gamma) (gamma = 0 at start, an
  even mix) combines the siblings' reconstructions,
  ``p~_k = g * (U_a s^a_k + c_a) + (1 - g) * (U_b s^b_k + c_b) [+ q_position]``.
  The loss is applied to the fused output (``sibling_readouts`` gives the two
  sibling reconstructions for auxiliary losses).
* For the learning algorithms the SNE is one estimator with the same
  interface: e = [e^a, e^b]; the cell is a `SiblingCell` whose state is the
  concatenated tuple (states^a + states^b), whose output is s = [s^a, s^b], and
  whose step function runs over one parameter list
  ``[C_a, C_b] + cell_a.step_variables + cell_b.step_variables``.
"""

import numpy as np
import tensorflow as tf

from tf_hbd.model import cells as cells_lib
from tf_hbd.codecs import patches as patches_lib

__all__ = [
    "BLOCK_SIZE",
    "DecoderServing",
    "HybridDecoder",
    "SiblingCell",
    "SiblingDecoder",
    "build_decoder",
    "export_saved_model",
    "load_decoder",
    "param_counts",
    "warm_start",
]

BLOCK_SIZE = 9  # patches per block (3 x 3)


def _uniform(scale, seed, salt):
  return cells_lib.SeededUniform(scale, cells_lib.derive_seed(seed, salt))


def _dtype_name(dtype):
  return tf.as_dtype(dtype or tf.keras.backend.floatx()).name


class DecoderServing:
  """What inference and export ask of a decoder, for every decoder class.

  Written against the class's ``unroll(context, position, K, last_only=,
  setting=)``, ``patch_size``, ``setting_size`` and ``compute_dtype``:
  `HybridDecoder` (and SNE) and `tf_hbd.model.sab_decoder.SABDecoder` share
  it.
  """

  @staticmethod
  def _unpack(inputs):
    if isinstance(inputs, dict):
      return inputs["context"], inputs["position"], inputs.get("setting")
    context, position, *setting = inputs
    return context, position, (setting[0] if setting else None)

  def predict_last(self, context, position, K=None, setting=None):
    """The K-th reconstruction only (what inference uses), (B, d*d)."""
    return self.unroll(context, position, K, last_only=True, setting=setting)

  def serving_function(self):
    """A `tf.function` with input signature (context, position, K[,
    setting])."""
    d = self.patch_size
    spec = [tf.TensorSpec([None, BLOCK_SIZE, d, d], self.compute_dtype,
                          name="context"),
            tf.TensorSpec([None], tf.int32, name="position"),
            tf.TensorSpec([], tf.int32, name="K")]
    if self.setting_size:
      spec.append(tf.TensorSpec([None, self.setting_size], self.compute_dtype,
                                name="setting"))

    @tf.function(autograph=False, input_signature=spec)
    def serve(context, position, K, setting=None):
      recons = self.unroll(context, position, K, setting=setting)
      return {"reconstructions": recons, "refined": recons[:, -1]}

    return serve


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class HybridDecoder(DecoderServing, tf.keras.Model):
  """The hybrid neural iterative decoder (paper, section 2).

  Args:
    cell: state function, a key of `tf_hbd.model.cells.CELLS`.
    units: state size n.
    patch_size: d (8 for JPEG, 64 for JPEG 2000 in the paper).
    K: default number of refinement steps (any K can be asked for at call).
    use_position: add a learned position table to e (see module docstring).
    residual: add the decoded target patch to every reconstruction.
    embed_bias: add a bias b_e to e.
    boundary: the block boundary strategy this model is meant for ("paper"
      or "replicate", see `tf_hbd.codecs.patches`); `tf_hbd.inference.refine` reads it.
    cell_options: extra cell arguments (``tied``, ``activation``).
    seed: base seed of the initialisation (None: unseeded).
    init_scale: weights ~ U(-init_scale, init_scale).
    dtype: "float32" or "float64", for every weight and the computation.
    setting_size: length S of the codec-setting input (0: none), see
      `tf_hbd.codecs.codec_setting`; its matrix starts at zero.
    matmul_dtype: dtype of the matrix products (None: ``dtype``;
      "bfloat16": bfloat16 products, float32 weights, state and loss).
  """

  def __init__(self, cell="lstm", units=512, patch_size=8, K=4,
               use_position=True, residual=True, embed_bias=False,
               boundary="paper", cell_options=None, seed=0,
               init_scale=cells_lib.INIT_SCALE, dtype="float32", name=None,
               center_inputs=False, setting_size=0, matmul_dtype=None,
               **kwargs):
    dtype = _dtype_name(dtype)
    super().__init__(name=name, dtype=dtype, **kwargs)
    cells_lib.get_cell(cell)  # validates the name
    if boundary not in patches_lib.BOUNDARY_STRATEGIES:
      raise ValueError(f"unknown boundary strategy {boundary!r}; choose from "
                       f"{patches_lib.BOUNDARY_STRATEGIES}")
    if int(K) != K or K < 1:
      raise ValueError(f"K must be a positive integer, got {K}")
    if int(patch_size) != patch_size or patch_size < 1:
      raise ValueError(f"patch_size must be a positive integer, got "
                       f"{patch_size}")
    self.cell_type = cell
    self.units = int(units)
    self.patch_size = int(patch_size)
    self.K = int(K)
    self.use_position = bool(use_position)
    self.residual = bool(residual)
    self.embed_bias = bool(embed_bias)
    self.center_inputs = bool(center_inputs)
    if int(setting_size) != setting_size or setting_size < 0:
      raise ValueError(f"setting_size must be >= 0, got {setting_size}")
    self.setting_size = int(setting_size)
    self.matmul_dtype = (None if matmul_dtype in (None, dtype)
                         else tf.as_dtype(matmul_dtype).name)
    self.boundary = boundary
    self.cell_options = dict(cell_options or {})
    self.seed = seed
    self.init_scale = float(init_scale)
    self._dtype_str = dtype
    self.cell = self._make_cell()
    with tf.name_scope(self.name):
      self._make_weights()

  # ---- construction --------------------------------------------------------

  @property
  def pixels(self) -> int:
    """d * d, the length of a flattened patch."""
    return self.patch_size * self.patch_size

  def _make_cell(self):
    cls = cells_lib.get_cell(self.cell_type)
    return cls(units=self.units, seed=cells_lib.derive_seed(self.seed, 100),
               init_scale=self.init_scale, dtype=self._dtype_str,
               matmul_dtype=self.matmul_dtype, **self.cell_options)

  def _embed_weights(self, tag, salt):
    """W (9 d^2, m) [, b_e (m,)] [, P (9, m)] for one transformation fn."""
    m = self.embed_size
    out = [self.add_weight(name=f"W{tag}", shape=(BLOCK_SIZE * self.pixels, m),
                           initializer=_uniform(self.init_scale, self.seed,
                                                salt))]
    if self.embed_bias:
      out.append(self.add_weight(name=f"b_e{tag}", shape=(m,),
                                 initializer="zeros"))
    if self.use_position:
      out.append(self.add_weight(name=f"P{tag}", shape=(BLOCK_SIZE, m),
                                 initializer=_uniform(self.init_scale,
                                                      self.seed, salt + 1)))
    if self.setting_size:
      out.append(self.add_weight(name=f"S{tag}", shape=(self.setting_size, m),
                                 initializer="zeros"))
    return out

  def _readout_weights(self, tag, salt):
    return [self.add_weight(name=f"U{tag}", shape=(self.units, self.pixels),
                            initializer=_uniform(self.init_scale, self.seed,
                                                 salt)),
            self.add_weight(name=f"c{tag}", shape=(self.pixels,),
                            initializer="zeros")]

  def _make_weights(self):
    self._embed_vars = self._embed_weights("", 1)
    self._readout_vars = self._readout_weights("", 3)

  @property
  def embed_size(self) -> int:
    """Length m of one transformation output (the cell's input size)."""
    return self.cell.input_size

  # ---- variables -----------------------------------------------------------

  @property
  def embed_variables(self):
    """Theta_t: [W, (b_e), (P), (S)] in the order `embed` expects."""
    return list(self._embed_vars)

  @property
  def step_variables(self):
    """Theta_s: the cell's step variables."""
    return self.cell.step_variables

  @property
  def readout_variables(self):
    """Theta_d: [U, c] in the order `readout` expects."""
    return list(self._readout_vars)

  @property
  def param_variables(self):
    """embed_variables + step_variables + readout_variables."""
    return self.embed_variables + self.step_variables + self.readout_variables

  # ---- pure pieces ---------------------------------------------------------

  def _context(self, context):
    context = tf.cast(context, self.compute_dtype)
    return tf.reshape(context, [-1, BLOCK_SIZE, self.pixels])

  @staticmethod
  def _position(position):
    return tf.cast(tf.reshape(position, [-1]), tf.int32)

  def _setting(self, setting):
    """(B, S) codec setting in the compute dtype; None without one."""
    if not self.setting_size:
      return None
    if setting is None:
      raise ValueError(f"this decoder takes a codec setting of length "
                       f"{self.setting_size} (tf_hbd.codecs.codec_setting); none "
                       "was given")
    setting = tf.cast(setting, self.compute_dtype)
    return tf.reshape(setting, [-1, self.setting_size])

  def _mm(self, a, b):
    """a @ b, in ``matmul_dtype`` when set (result in the compute dtype)."""
    return cells_lib.matmul(a, b, self.matmul_dtype)

  def _transform(self, ctx, position, params, setting=None):
    """One transformation function: e = W q (+ b_e) (+ P[position])
    (+ S setting)."""
    params = list(params)
    x = tf.reshape(ctx, [-1, BLOCK_SIZE * self.pixels])
    if self.center_inputs:
      x = x - tf.constant(0.5, x.dtype)
    e = self._mm(x, params.pop(0))
    if self.embed_bias:
      e = e + params.pop(0)
    if self.use_position:
      onehot = tf.one_hot(position, BLOCK_SIZE, dtype=e.dtype)
      e = e + tf.matmul(onehot, params.pop(0))
    if self.setting_size:
      e = e + tf.matmul(setting, params.pop(0))
    assert not params, "too many embed params"
    return e

  def _embed(self, ctx, position, params, setting=None):
    return self._transform(ctx, position, params, setting)

  def embed(self, context, position, params=None, setting=None):
    """Transformation function e(q_1..q_9; Theta_t) (section 2).

    Args:
      context: (B, 9, d, d) or (B, 9, d*d), decoded patches in [0, 1].
      position: (B,) int, the target's index in the block.
      params: tensors ordered as `embed_variables` (default: the variables).
      setting: (B, S) codec setting (decoders with ``setting_size`` > 0).

    Returns:
      e, (B, cell.input_size).
    """
    params = self.embed_variables if params is None else list(params)
    self._check_count("embed", params, self._embed_vars)
    return self._embed(self._context(context), self._position(position),
                       params, self._setting(setting))

  @staticmethod
  def _own_patch(ctx, position):
    return tf.gather(ctx, position, axis=1, batch_dims=1)

  def _readout(self, s, ctx, position, params):
    u, c = params
    p = self._mm(s, u) + c
    if self.residual:
      p = p + self._own_patch(ctx, position)
    return p

  def readout(self, s, context, position, params=None):
    """Reconstruction function p~ = U s + c (+ decoded target) (section 2).

    Args:
      s: (B, cell.output_size) state.
      context, position: as for `embed` (used by the residual option).
      params: tensors ordered as `readout_variables`.

    Returns:
      (B, d*d) reconstruction in [0, 1] pixel units (unclipped).
    """
    params = self.readout_variables if params is None else list(params)
    self._check_count("readout", params, self._readout_vars)
    return self._readout(tf.cast(s, self.compute_dtype),
                         self._context(context), self._position(position),
                         params)

  @staticmethod
  def _check_count(what, params, variables):
    if len(params) != len(variables):
      raise ValueError(f"{what} expects {len(variables)} params, got "
                       f"{len(params)}")

  def step(self, e, states, params=None):
    """The state function s_k = F(e, s_{k-1}; Theta_s) (the cell's step)."""
    params = self.step_variables if params is None else list(params)
    return self.cell.step(e, states, params)

  def initial_state(self, batch_size):
    """s_0 = 0, a tuple shaped like the cell's state."""
    return self.cell.zero_states(batch_size)

  def unroll(self, context, position, K=None, embed_params=None,
             step_params=None, readout_params=None, states=None,
             last_only=False, setting=None):
    """Runs k = 1..K refinement steps.

    Args:
      context, position: as for `embed`.
      K: steps; a Python int unrolls the graph, a scalar tensor runs a
        `tf.while_loop` (used by the exported serving function). None: self.K.
      embed_params, step_params, readout_params: explicit parameters.
      states: initial state tuple (default zeros).
      last_only: return only the K-th reconstruction (B, d*d).
      setting: (B, S) codec setting (decoders with ``setting_size`` > 0).

    Returns:
      (B, K, d*d) reconstructions, or (B, d*d) with ``last_only``.
    """
    ep = self.embed_variables if embed_params is None else list(embed_params)
    sp = self.step_variables if step_params is None else list(step_params)
    rp = (self.readout_variables if readout_params is None
          else list(readout_params))
    K = self.K if K is None else K
    ctx = self._context(context)
    position = self._position(position)
    e = self._embed(ctx, position, ep, self._setting(setting))
    if states is None:
      states = self.initial_state(tf.shape(ctx)[0])
    states = tuple(states)
    if isinstance(K, (int, np.integer)):
      if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
      outs = []
      s = None
      for k in range(int(K)):
        s, states = self.cell.step(e, states, sp)
        if not last_only or k == K - 1:
          outs.append(self._readout(s, ctx, position, rp))
      return outs[-1] if last_only else tf.stack(outs, axis=1)
    return self._unroll_dynamic(e, ctx, position, tf.cast(K, tf.int32),
                                states, sp, rp, last_only)

  def _unroll_dynamic(self, e, ctx, position, K, states, sp, rp, last_only):
    tf.debugging.assert_positive(K, message="K must be >= 1")
    if last_only:
      s0 = tf.zeros([tf.shape(ctx)[0], self.cell.output_size],
                    self.compute_dtype)

      def body(k, s, st):
        s, st = self.cell.step(e, st, sp)
        return k + 1, s, tuple(st)

      _, s, _ = tf.while_loop(lambda k, s, st: k < K, body,
                              (tf.constant(0), s0, states))
      return self._readout(s, ctx, position, rp)

    out = tf.TensorArray(self.compute_dtype, size=K)

    def body2(k, st, out):
      s, st = self.cell.step(e, st, sp)
      return k + 1, tuple(st), out.write(k, self._readout(s, ctx, position,
                                                          rp))

    _, _, out = tf.while_loop(lambda k, st, out: k < K, body2,
                              (tf.constant(0), states, out))
    return tf.transpose(out.stack(), [1, 0, 2])

  # ---- Keras ---------------------------------------------------------------

  def call(self, inputs, K=None, training=False):
    """{'context': (B, 9, d, d), 'position': (B,)[, 'setting': (B, S)]}
    -> (B, K, d*d)."""
    del training  # no dropout or normalisation: same in training/inference
    context, position, setting = self._unpack(inputs)
    return self.unroll(context, position, K, setting=setting)

  def get_config(self):
    return {
        "cell": self.cell_type,
        "units": self.units,
        "patch_size": self.patch_size,
        "K": self.K,
        "use_position": self.use_position,
        "residual": self.residual,
        "embed_bias": self.embed_bias,
        "center_inputs": self.center_inputs,
        "setting_size": self.setting_size,
        "matmul_dtype": self.matmul_dtype,
        "boundary": self.boundary,
        "cell_options": dict(self.cell_options),
        "seed": self.seed,
        "init_scale": self.init_scale,
        "dtype": self._dtype_str,
        "name": self.name,
    }

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(**config)

  def dummy_inputs(self, batch_size=1):
    """Zero inputs of the right shapes (builds/traces the model)."""
    d = self.patch_size
    out = {"context": tf.zeros([batch_size, BLOCK_SIZE, d, d],
                               self.compute_dtype),
           "position": tf.fill([batch_size], BLOCK_SIZE // 2)}
    if self.setting_size:
      out["setting"] = tf.zeros([batch_size, self.setting_size],
                                self.compute_dtype)
    return out


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class SiblingCell(tf.keras.layers.Layer):
  """The joint state function of the two SNE siblings.

  Input e = [e^a, e^b] (2 m), state tuple states^a + states^b, output
  s = [s^a, s^b] (2 n). With ``coupling`` each sibling's input is
  ``e^x + C_x s^y_{k-1}`` (see `tf_hbd.model.decoder` docstring).

  step_variables: [C_a (n, m), C_b (n, m)] (when coupled) +
  causal.step_variables + noncausal.step_variables.
  """

  def __init__(self, cell="lstm", units=512, cell_options=None, coupling=True,
               seed=0, init_scale=cells_lib.INIT_SCALE, dtype=None, **kwargs):
    super().__init__(dtype=dtype, **kwargs)
    cls = cells_lib.get_cell(cell)
    self.cell_type = cell
    self.units = int(units)
    self.cell_options = dict(cell_options or {})
    self.coupling = bool(coupling)
    self.seed = seed
    self.init_scale = float(init_scale)
    common = dict(units=self.units, init_scale=self.init_scale, dtype=dtype,
                  **self.cell_options)
    self.causal = cls(seed=cells_lib.derive_seed(seed, 1),
                      name=f"{self.name}_causal", **common)
    self.noncausal = cls(seed=cells_lib.derive_seed(seed, 2),
                         name=f"{self.name}_noncausal", **common)
    m = self.causal.input_size
    self._coupling_vars = []
    if self.coupling:
      with tf.name_scope(self.name):
        for tag, salt in (("C_a", 3), ("C_b", 4)):
          self._coupling_vars.append(self.add_weight(
              name=tag, shape=(self.units, m),
              initializer=_uniform(self.init_scale, seed, salt)))
    self.built = True

  def build(self, input_shape):
    self.built = True

  @property
  def input_size(self):
    return 2 * self.causal.input_size

  @property
  def state_size(self):
    return list(self.causal.state_size) + list(self.noncausal.state_size)

  @property
  def output_size(self):
    return 2 * self.units

  @property
  def state_names(self):
    return (tuple(f"{n}_a" for n in self.causal.state_names)
            + tuple(f"{n}_b" for n in self.noncausal.state_names))

  @property
  def step_variables(self):
    return (list(self._coupling_vars) + self.causal.step_variables
            + self.noncausal.step_variables)

  def step(self, e, states, params):
    """Joint pure step over `step_variables`."""
    params = list(params)
    if len(params) != len(self.step_variables):
      raise ValueError(f"SiblingCell.step expects {len(self.step_variables)} "
                       f"params, got {len(params)}")
    e = tf.cast(e, self.compute_dtype)
    states = tuple(tf.nest.flatten(states))
    na = len(self.causal.state_names)
    st_a, st_b = states[:na], states[na:]
    nc = len(self._coupling_vars)
    n_a = len(self.causal.step_variables)
    p_a = params[nc:nc + n_a]
    p_b = params[nc + n_a:]
    e_a, e_b = tf.split(e, 2, axis=-1)
    if self.coupling:
      c_a, c_b = params[:2]
      e_a = e_a + tf.matmul(tf.cast(st_b[0], e.dtype), c_a)
      e_b = e_b + tf.matmul(tf.cast(st_a[0], e.dtype), c_b)
    s_a, new_a = self.causal.step(e_a, st_a, p_a)
    s_b, new_b = self.noncausal.step(e_b, st_b, p_b)
    return tf.concat([s_a, s_b], axis=-1), tuple(new_a) + tuple(new_b)

  def call(self, inputs, states):
    s, new_states = self.step(inputs, states, self.step_variables)
    return s, list(new_states)

  def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
    return (self.causal.get_initial_state(inputs, batch_size, dtype)
            + self.noncausal.get_initial_state(inputs, batch_size, dtype))

  def zero_states(self, batch_size):
    return tuple(self.get_initial_state(batch_size=batch_size))

  def get_config(self):
    config = super().get_config()
    config.update({"cell": self.cell_type, "units": self.units,
                   "cell_options": dict(self.cell_options),
                   "coupling": self.coupling, "seed": self.seed,
                   "init_scale": self.init_scale})
    return config


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class SiblingDecoder(HybridDecoder):
  """The sibling neural estimator (SNE-RNN); interface of `HybridDecoder`.

  embed_variables: [W_a, (b_e_a), (P_a), W_b, (b_e_b), (P_b)];
  readout_variables: [U_a, c_a, U_b, c_b, gamma]; step_variables: those of
  the `SiblingCell`. See the module docstring for the interpretation.

  Args:
    coupling: cross-sibling state coupling (gradient communication).
    **kwargs: as for `HybridDecoder`.
  """

  def __init__(self, coupling=True, **kwargs):
    self.coupling = bool(coupling)
    super().__init__(**kwargs)

  def _make_cell(self):
    return SiblingCell(cell=self.cell_type, units=self.units,
                       cell_options=self.cell_options, coupling=self.coupling,
                       seed=cells_lib.derive_seed(self.seed, 100),
                       init_scale=self.init_scale, dtype=self._dtype_str,
                       name="siblings")

  @property
  def embed_size(self):
    return self.cell.causal.input_size

  def _make_weights(self):
    self._embed_a = self._embed_weights("_a", 1)
    self._embed_b = self._embed_weights("_b", 11)
    self._embed_vars = self._embed_a + self._embed_b
    self._readout_vars = (self._readout_weights("_a", 3)
                          + self._readout_weights("_b", 13)
                          + [self.add_weight(name="gamma",
                                             shape=(self.pixels,),
                                             initializer="zeros")])

  def sibling_masks(self, position):
    """(B, 9) masks: causal j <= position, non-causal j >= position."""
    j = tf.range(BLOCK_SIZE)[None, :]
    pos = self._position(position)[:, None]
    dtype = self.compute_dtype
    return tf.cast(j <= pos, dtype), tf.cast(j >= pos, dtype)

  def _embed(self, ctx, position, params, setting=None):
    half = len(self._embed_a)
    mask_a, mask_b = self.sibling_masks(position)
    e_a = self._transform(ctx * mask_a[..., None], position, params[:half],
                          setting)
    e_b = self._transform(ctx * mask_b[..., None], position, params[half:],
                          setting)
    return tf.concat([e_a, e_b], axis=-1)

  def _sibling_outputs(self, s, ctx, position, params):
    u_a, c_a, u_b, c_b, _ = params
    s_a, s_b = tf.split(s, 2, axis=-1)
    p_a = self._mm(s_a, u_a) + c_a
    p_b = self._mm(s_b, u_b) + c_b
    if self.residual:
      own = self._own_patch(ctx, position)
      p_a, p_b = p_a + own, p_b + own
    return p_a, p_b

  def _readout(self, s, ctx, position, params):
    p_a, p_b = self._sibling_outputs(s, ctx, position, params)
    g = tf.math.sigmoid(params[4])
    return g * p_a + (1.0 - g) * p_b

  def sibling_readouts(self, s, context, position, params=None):
    """The two siblings' own reconstructions (p^a, p^b), each (B, d*d)."""
    params = self.readout_variables if params is None else list(params)
    return self._sibling_outputs(tf.cast(s, self.compute_dtype),
                                 self._context(context),
                                 self._position(position), params)

  def get_config(self):
    config = super().get_config()
    config["coupling"] = self.coupling
    return config


def build_decoder(cell="lstm", units=512, patch_size=8, K=4,
                  use_position=True, residual=True, sne=False, seed=0,
                  dtype="float32", **kwargs):
  """The factory scripts use: a `HybridDecoder` or (sne=True) SNE.

  Extra keyword arguments go to the class (``boundary``, ``embed_bias``,
  ``cell_options``, ``init_scale``, ``coupling`` for SNE, ``name``).
  """
  cls = SiblingDecoder if sne else HybridDecoder
  return cls(cell=cell, units=units, patch_size=patch_size, K=K,
             use_position=use_position, residual=residual, seed=seed,
             dtype=dtype, **kwargs)


def param_counts(model):
  """Trainable parameter counts {'embed', 'cell', 'readout', 'total'}."""
  count = lambda vs: int(sum(np.prod(v.shape) for v in vs))
  out = {"embed": count(model.embed_variables),
         "cell": count(model.step_variables),
         "readout": count(model.readout_variables)}
  out["total"] = out["embed"] + out["cell"] + out["readout"]
  return out


def export_saved_model(model, path):
  """Saves `model` as a SavedModel with a K-selectable serving signature.

  The directory loads back either as the Python class
  (`load_decoder` / `tf.keras.models.load_model`, K chosen per call) or with
  plain `tf.saved_model.load`: its ``signatures["serving_default"]`` takes
  ``context`` (B, 9, d, d), ``position`` (B,) int32 and ``K`` (int32 scalar)
  and returns ``reconstructions`` (B, K, d*d) and ``refined`` (B, d*d).
  """
  model(model.dummy_inputs())  # sets the Keras save spec
  model.save(path, save_format="tf", include_optimizer=False,
             signatures={"serving_default": model.serving_function()})
  return path


def load_decoder(path):
  """Loads a decoder saved by `export_saved_model` as its Python class
  (`HybridDecoder`, `SiblingDecoder` or SAB's `SABDecoder`)."""
  from tf_hbd.model import sab_decoder  # pylint: disable=g-import-not-at-top,unused-import
  return tf.keras.models.load_model(path, compile=False)


def _short_name(variable):
  return variable.name.split("/")[-1].split(":")[0]


def warm_start(model, path):
  """Copies the weights of a saved decoder into `model`, by name and shape.

  `path` is any decoder export: a decoder SavedModel (`export_saved_model`)
  or a serving export (`tf_hbd.inference.serving.export_serving`, e.g. a
  training run's ``serving/`` or a shipped model); or a decoder object
  (e.g. a run's decoder from `tf_hbd.training.run_decoder.load`). Variables
  of `model` that the source lacks (a new option such as the setting matrix
  ``S``, which starts at zero) keep their initial values.

  Returns:
    (copied names, names kept at their initial values).

  Raises:
    ValueError: a variable exists in both with different shapes.
  """
  loaded = tf.saved_model.load(path) if isinstance(path, str) else path
  source = getattr(loaded, "model", loaded)
  by_name = {_short_name(v): v for v in source.variables}
  copied, kept = [], []
  for v in model.trainable_variables:
    name = _short_name(v)
    src = by_name.get(name)
    if src is None:
      kept.append(name)
      continue
    if tuple(src.shape) != tuple(v.shape):
      raise ValueError(f"{path}: variable {name} has shape {src.shape}, the "
                       f"model needs {v.shape}")
    v.assign(tf.cast(src, v.dtype))
    copied.append(name)
  if not copied:
    raise ValueError(f"{path}: no variable matches the model")
  return copied, kept
