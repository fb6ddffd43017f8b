"""State functions of the hybrid neural iterative decoder (paper, section 2.1).

Every cell implements the paper's recurrent state function
``s_k = s(e, s_{k-1}; Theta_s)`` with the transformation output ``e`` (the
embedding of the 9 decoded patches, see `tf_hbd.model.decoder`) as its input. The
same ``e`` is fed at every refinement step k = 1..K.

Cells (``CELLS`` registry key -> class):

* ``delta``: Delta-RNN, eqs. 1-3::

      d1 = alpha * (V s_{k-1}) * e,   d2 = beta1 * (V s_{k-1}) + beta2 * e
      s~ = tanh(d1 + d2 + b),         r = sigmoid(e + b_r)
      s_k = tanh((1 - r) * s~ + r * s_{k-1})          (Phi = phi_s = tanh)

* ``elman``: Elman RNN, eq. 4: ``s_k = phi_s(e + V s_{k-1} + b)``, phi_s one of
  tanh (default), sigmoid, relu.
* ``lstm``: LSTM without peepholes, eqs. 5-7 (eq. 6's ``c_t = f * c_t`` is read
  as ``f * c_{t-1}``)::

      f = sigmoid(e_f + V_f s + b_f),  i = sigmoid(e_i + V_i s + b_i)
      c~ = tanh(e_c + V_c s + b_c),    c_k = f * c_{k-1} + i * c~
      o = sigmoid(e_o + V_o s + b_o),  s_k = o * tanh(c_k)

  With ``tied=True`` (the paper's weight tying) ``e_f = e_i = e_c = e_o = e``;
  with ``tied=False`` the cell input has 4 * units entries, one slice per gate,
  i.e. each gate gets its own input matrix in the transformation function.
* ``gru``: GRU, eqs. 8-9::

      z = sigmoid(e_z + V_z s + b_z),  r = sigmoid(e_r + V_r s + b_r)
      s~ = tanh(e_s + V_s (r * s) + b_s),  s_k = z * s~ + (1 - z) * s_{k-1}

  ``tied`` works as for the LSTM (3 slices when untied).
* ``mlp``: stateless, eq. 10: ``s_k = phi_s(e + b)``.

Interfaces. Every cell is a Keras RNN cell (``state_size``, ``output_size``,
``call(inputs, states)``, ``get_initial_state``, full ``get_config``,
registered Keras-serializable under package ``tf_hbd``), so
``tf.keras.layers.RNN(cell)`` runs it over a sequence of inputs. For the
forward-mode learning algorithms (RTRL, UORO) each cell also exposes the
**pure step function** ``step(e, states, params) -> (s, new_states)`` where
``params`` is a list of tensors ordered as ``step_variables``; it touches no
variable, so it can be differentiated with respect to any substituted params
(``call`` is ``step(inputs, states, self.step_variables)``). ``states`` is a
tuple: ``(s,)`` for delta/elman/gru, ``(s, c)`` for the LSTM. The MLP is
stateless but keeps a one-tensor state ``(s,)`` holding its last output, which
``step`` ignores: its state Jacobian is zero, so RTRL/UORO run unchanged.

Initialisation (paper, section 3.2): every matrix ~ U(-0.054, 0.054) drawn
from a seeded NumPy generator (`SeededUniform`), so a seed gives the same
weights in float32 and float64; biases start at 0; the Delta-RNN gains
alpha, beta1, beta2 start at 1 (not stated in the paper; with these values
eq. 1 starts as the plain sum ``V s * e + V s + e``).

Every cell takes ``dtype`` (e.g. "float64", used by the RTRL-vs-BPTT checks)
and honours it for all its weights and its computation.
"""

import numpy as np
import tensorflow as tf

__all__ = [
    "CELLS",
    "register_cell",
    "get_cell",
    "SeededUniform",
    "derive_seed",
    "StateCell",
    "DeltaRNNCell",
    "ElmanCell",
    "LSTMCell",
    "GRUCell",
    "MLPCell",
    "ACTIVATIONS",
    "output_state_indices",
    "INIT_SCALE",
    "bfloat16_matmul_rounding",
]

INIT_SCALE = 0.054  # paper, section 3.2: weights ~ U(-0.054, 0.054)

ACTIVATIONS = {
    "tanh": tf.math.tanh,
    "sigmoid": tf.math.sigmoid,
    "relu": tf.nn.relu,
}

CELLS = {}


def matmul(a, b, dtype=None):
  """a @ b; with `dtype` (e.g. "bfloat16") both factors are cast to it and
  the product is cast back to a's dtype (mixed precision: the weights, the
  state and the nonlinearities stay in a's dtype)."""
  if dtype is None:
    return tf.matmul(a, b)
  out_dtype = a.dtype
  return tf.cast(tf.matmul(tf.cast(a, dtype), tf.cast(b, dtype)), out_dtype)


def bfloat16_matmul_rounding(m: int = 256, k: int = 576, n: int = 512,
                             seed: int = 0) -> dict:
  """How TF's bfloat16 `matmul` rounds its float32 sums on this CPU.

  TF 2.14 rounds them to nearest where the CPU has AVX512-BF16 (oneDNN) and
  truncates them on others (an AVX2 AMD EPYC: half the products one bfloat16
  step towards zero); `matmul(..., "bfloat16")` inherits this, while the
  NumPy serving runtime always rounds to nearest.

  Returns:
    dict: ``products``; ``truncated``, the fraction equal to the float64
    product truncated to bfloat16; ``off_nearest``, the fraction that differ
    from it rounded to nearest.
  """
  rng = np.random.default_rng(seed)
  a = tf.cast(rng.normal(size=(m, k)).astype(np.float32), tf.bfloat16)
  b = tf.cast(rng.normal(size=(k, n)).astype(np.float32), tf.bfloat16)
  got = tf.cast(tf.matmul(a, b), tf.float32).numpy()
  exact = (tf.cast(a, tf.float32).numpy().astype(np.float64)
           @ tf.cast(b, tf.float32).numpy().astype(np.float64))
  exact = exact.astype(np.float32)  # exact to well below a bfloat16 step
  nearest = tf.cast(tf.cast(exact, tf.bfloat16), tf.float32).numpy()
  truncated = (exact.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
  return {"products": got.size,
          "truncated": float(np.mean(got == truncated)),
          "off_nearest": float(np.mean(got != nearest))}


def register_cell(name):
  """Class decorator: registers a cell in `CELLS` and with Keras."""

  def wrap(cls):
    if name in CELLS:
      raise ValueError(f"cell {name!r} registered twice")
    cls = tf.keras.utils.register_keras_serializable(package="tf_hbd")(cls)
    cls.cell_name = name
    CELLS[name] = cls
    return cls

  return wrap


def get_cell(name):
  """The cell class registered under `name`."""
  try:
    return CELLS[name]
  except KeyError:
    raise ValueError(f"unknown cell {name!r}; choose from "
                     f"{sorted(CELLS)}") from None


def derive_seed(seed, salt):
  """A reproducible per-variable seed from a base seed (None stays None)."""
  if seed is None:
    return None
  return int((int(seed) * 1_000_003 + int(salt) * 7_919 + 17) % (2**31 - 1))


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class SeededUniform(tf.keras.initializers.Initializer):
  """U(-scale, scale) from ``numpy.random.default_rng(seed)``.

  The values depend only on (seed, shape), not on the dtype, so float32 and
  float64 models built with one seed hold the same weights (up to rounding).
  With ``seed=None`` each call draws fresh values.
  """

  def __init__(self, scale=INIT_SCALE, seed=None):
    self.scale = float(scale)
    self.seed = seed

  def __call__(self, shape, dtype=None, **kwargs):
    del kwargs
    rng = np.random.default_rng(self.seed)
    values = rng.uniform(-self.scale, self.scale, size=tuple(shape))
    return tf.constant(values, dtype=dtype or tf.keras.backend.floatx())

  def get_config(self):
    return {"scale": self.scale, "seed": self.seed}


class StateCell(tf.keras.layers.Layer):
  """Base class of the state cells: weights, Keras RNN-cell plumbing.

  Subclasses define `_weight_specs` (name, shape, kind) in step-variable
  order, `state_names` and `step`.

  Args:
    units: state size n (the paper uses 512).
    seed: base seed of the weight initialisation (None: unseeded).
    init_scale: half-width of the uniform initialisation.
    dtype: weight and compute dtype ("float32" or "float64").
    matmul_dtype: dtype of the recurrent matrix products (None: ``dtype``;
      "bfloat16" for mixed precision on CPUs/accelerators that have it).
  """

  state_names = ("s",)
  input_slices = 1  # how many n-sized slices the cell input holds

  def __init__(self, units=512, seed=0, init_scale=INIT_SCALE, dtype=None,
               matmul_dtype=None, **kwargs):
    super().__init__(dtype=dtype, **kwargs)
    self.matmul_dtype = (None if matmul_dtype is None
                         else tf.as_dtype(matmul_dtype).name)
    if int(units) != units or units < 1:
      raise ValueError(f"units must be a positive integer, got {units}")
    self.units = int(units)
    self.seed = seed
    self.init_scale = float(init_scale)
    self._step_variables = []
    with tf.name_scope(self.name):
      for salt, (name, shape, kind) in enumerate(self._weight_specs()):
        if kind == "matrix":
          init = SeededUniform(self.init_scale, derive_seed(seed, salt))
        elif kind == "zeros":
          init = tf.keras.initializers.Zeros()
        elif kind == "ones":
          init = tf.keras.initializers.Ones()
        else:
          raise ValueError(f"unknown initialiser kind {kind!r}")
        self._step_variables.append(
            self.add_weight(name=name, shape=shape, initializer=init,
                            trainable=True))
    self.built = True

  def _weight_specs(self):
    raise NotImplementedError

  def build(self, input_shape):  # weights are made in __init__
    self.built = True

  @property
  def input_size(self) -> int:
    """Length of the cell input e (units, or units per gate when untied)."""
    return self.units * self.input_slices

  @property
  def state_size(self):
    return [self.units] * len(self.state_names)

  @property
  def output_size(self):
    return self.units

  @property
  def step_variables(self):
    """The cell's variables Theta_s, in the order `step` expects them."""
    return list(self._step_variables)

  def step(self, e, states, params):
    """Pure state function: (e, states_{k-1}; params) -> (s_k, states_k)."""
    raise NotImplementedError

  def _prepare(self, e, states, params):
    dtype = self.compute_dtype
    e = tf.cast(e, dtype)
    states = tuple(tf.cast(t, dtype) for t in tf.nest.flatten(states))
    if len(states) != len(self.state_names):
      raise ValueError(f"{type(self).__name__} expects "
                       f"{len(self.state_names)} state tensors "
                       f"{self.state_names}, got {len(states)}")
    params = list(params)
    if len(params) != len(self._step_variables):
      raise ValueError(f"{type(self).__name__}.step expects "
                       f"{len(self._step_variables)} params, got "
                       f"{len(params)}")
    return e, states, params

  def call(self, inputs, states):
    s, new_states = self.step(inputs, states, self._step_variables)
    return s, list(new_states)

  def get_initial_state(self, inputs=None, batch_size=None, dtype=None):
    if batch_size is None:
      if inputs is None:
        raise ValueError("give inputs or batch_size")
      batch_size = tf.shape(inputs)[0]
    dtype = dtype or self.compute_dtype
    return [tf.zeros([batch_size, self.units], dtype=dtype)
            for _ in self.state_names]

  def zero_states(self, batch_size):
    """The initial state s_0 (all zeros) as a tuple."""
    return tuple(self.get_initial_state(batch_size=batch_size))

  def get_config(self):
    config = super().get_config()
    config.update({"units": self.units, "seed": self.seed,
                   "init_scale": self.init_scale,
                   "matmul_dtype": self.matmul_dtype})
    return config


@register_cell("delta")
class DeltaRNNCell(StateCell):
  """Delta-RNN state function, eqs. 1-3 (Phi = phi_s = tanh).

  step_variables: [V (n, n), b (n,), b_r (n,), alpha (n,), beta1 (n,),
  beta2 (n,)].
  """

  def _weight_specs(self):
    n = self.units
    return [("V", (n, n), "matrix"), ("b", (n,), "zeros"),
            ("b_r", (n,), "zeros"), ("alpha", (n,), "ones"),
            ("beta1", (n,), "ones"), ("beta2", (n,), "ones")]

  def step(self, e, states, params):
    e, (s_prev,), (v, b, b_r, alpha, beta1, beta2) = self._prepare(
        e, states, params)
    vs = matmul(s_prev, v, self.matmul_dtype)
    d1 = alpha * vs * e                                 # eq. 1
    d2 = beta1 * vs + beta2 * e                         # eq. 1
    s_tilde = tf.math.tanh(d1 + d2 + b)                 # eq. 2
    r = tf.math.sigmoid(e + b_r)                        # eq. 3
    s = tf.math.tanh((1.0 - r) * s_tilde + r * s_prev)  # eq. 3
    return s, (s,)


class _ActivationCell(StateCell):
  """A cell with an activation phi_s (Elman, MLP): the ``activation``
  argument, its check and its config entry."""

  def __init__(self, units=512, activation="tanh", **kwargs):
    if activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {activation!r}; choose from "
                       f"{sorted(ACTIVATIONS)}")
    self.activation = activation
    super().__init__(units=units, **kwargs)

  def get_config(self):
    config = super().get_config()
    config["activation"] = self.activation
    return config


class _GatedCell(StateCell):
  """A cell whose GATES gates share e (``tied``, the paper) or each read
  their own slice of it (the input then holds GATES * units entries, the
  untied input matrices living in the transformation function)."""

  GATES = 1

  def __init__(self, units=512, tied=True, **kwargs):
    self.tied = bool(tied)
    self.input_slices = 1 if self.tied else self.GATES
    super().__init__(units=units, **kwargs)

  def get_config(self):
    config = super().get_config()
    config["tied"] = self.tied
    return config


@register_cell("elman")
class ElmanCell(_ActivationCell):
  """Elman RNN state function, eq. 4: s_k = phi_s(e + V s_{k-1} + b).

  Args:
    activation: phi_s, "tanh" (default), "sigmoid" or "relu".

  step_variables: [V (n, n), b (n,)].
  """

  def _weight_specs(self):
    n = self.units
    return [("V", (n, n), "matrix"), ("b", (n,), "zeros")]

  def step(self, e, states, params):
    e, (s_prev,), (v, b) = self._prepare(e, states, params)
    s = ACTIVATIONS[self.activation](
        e + matmul(s_prev, v, self.matmul_dtype) + b)  # eq. 4
    return s, (s,)


@register_cell("lstm")
class LSTMCell(_GatedCell):
  """LSTM state function without peepholes, eqs. 5-7.

  Args:
    tied: True (paper): e is shared by the four gates. False: the input holds
      4 * units entries [e_f, e_i, e_c, e_o], one per gate (untied input
      matrices live in the transformation function).

  step_variables: [V (n, 4n) = [V_f V_i V_c V_o], b (4n,) = [b_f b_i b_c b_o]].
  States: (s, c).
  """

  state_names = ("s", "c")

  GATES = 4

  def _weight_specs(self):
    n = self.units
    return [("V", (n, 4 * n), "matrix"), ("b", (4 * n,), "zeros")]

  def step(self, e, states, params):
    e, (s_prev, c_prev), (v, b) = self._prepare(e, states, params)
    pre = matmul(s_prev, v, self.matmul_dtype) + b  # [V_g s + b_g] for g = f, i, c, o
    if self.tied:
      pre = pre + tf.tile(e, [1, 4])
    else:
      pre = pre + e
    zf, zi, zc, zo = tf.split(pre, 4, axis=-1)
    f = tf.math.sigmoid(zf)               # eq. 5
    i = tf.math.sigmoid(zi)               # eq. 5
    c_tilde = tf.math.tanh(zc)            # eq. 6
    c = f * c_prev + i * c_tilde          # eq. 6
    o = tf.math.sigmoid(zo)               # eq. 7
    s = o * tf.math.tanh(c)               # eq. 7
    return s, (s, c)


@register_cell("gru")
class GRUCell(_GatedCell):
  """GRU state function, eqs. 8-9.

  Args:
    tied: True (paper): e shared by z, r and the proposal. False: the input
      holds 3 * units entries [e_z, e_r, e_s].

  step_variables: [V_zr (n, 2n) = [V_z V_r], b_zr (2n,), V_s (n, n), b_s (n,)].
  """

  GATES = 3

  def _weight_specs(self):
    n = self.units
    return [("V_zr", (n, 2 * n), "matrix"), ("b_zr", (2 * n,), "zeros"),
            ("V_s", (n, n), "matrix"), ("b_s", (n,), "zeros")]

  def step(self, e, states, params):
    e, (s_prev,), (v_zr, b_zr, v_s, b_s) = self._prepare(e, states, params)
    e_z, e_r, e_s = (e, e, e) if self.tied else tf.split(e, 3, axis=-1)
    pre = matmul(s_prev, v_zr, self.matmul_dtype) + b_zr
    pz, pr = tf.split(pre, 2, axis=-1)
    z = tf.math.sigmoid(e_z + pz)                                      # eq. 8
    r = tf.math.sigmoid(e_r + pr)                                      # eq. 8
    s_tilde = tf.math.tanh(
        e_s + matmul(r * s_prev, v_s, self.matmul_dtype) + b_s)  # eq. 9
    s = z * s_tilde + (1.0 - z) * s_prev                               # eq. 9
    return s, (s,)


@register_cell("mlp")
class MLPCell(_ActivationCell):
  """Stateless MLP state function, eq. 10: s_k = phi_s(e + b).

  The state tuple ``(s,)`` only carries the last output; `step` ignores it,
  so every step gives the same s and dF/dstate = 0.

  Args:
    activation: phi_s, "tanh" (default), "sigmoid" or "relu".

  step_variables: [b (n,)].
  """

  def _weight_specs(self):
    return [("b", (self.units,), "zeros")]

  def step(self, e, states, params):
    e, _, (b,) = self._prepare(e, states, params)
    s = ACTIVATIONS[self.activation](e + b)  # eq. 10
    return s, (s,)


def output_state_indices(cell):
  """Indices of the state tensors whose concatenation is the cell output s.

  Every cell of `tf_hbd.model.cells` keeps its output as the state named ``s``
  (the LSTM's other state is ``c``); the SNE `SiblingCell` keeps ``s_a`` and
  ``s_b`` and outputs ``[s_a, s_b]``.
  """
  names = tuple(cell.state_names)
  idx = [i for i, n in enumerate(names) if n == "s" or n.startswith("s_")]
  if not idx:
    raise ValueError(f"cannot find the output state among {names}")
  return idx
