"""SAB's model: a decoder whose state attends sparsely over its past states.

Sparse attentive backtracking (SAB; Ke et al., NeurIPS 2018) changes both
the forward pass (this model) and the backward pass (the learning algorithm,
`tf_hbd.training.algorithms.sab`). Forward (sparse retrieval), at refinement
step k = 1..K:

1. the cell gives the provisional state ``h^_k, c_k = F(e, (s_{k-1}, c_{k-1}))``;
2. raw attention scores over the memories m_i (past states, below) come from
   an MLP on the pair [h^_k; m_i] (the SAB paper's Figure 1)::

       a_i = v . tanh(W_q h^_k + W_m m_i + b)

3. the sparsifier keeps the k_top largest scores and zeroes the rest:
   ``w_i = relu(a_i - tau) / (sum_j relu(a_j - tau) + eps)`` with tau the
   (k_top + 1)-th largest score;
4. the summary ``sum_i w_i m_i`` is added to the state,
   ``s_k = h^_k + sum_i w_i m_i`` (the cell's other state, c, is unchanged);
5. every k_attn steps s_k is appended to the memory, which starts as [s_0].

Where the forward pass follows the paper rather than the reference code
(github.com/nke001/sparse_attentive_backtracking_release, ``layers_torch.py``;
the backward pass's choices are in `tf_hbd.training.algorithms.sab`):

* threshold: the reference subtracts the k_top-th largest score (plus eps),
  which keeps only k_top - 1 non-zero weights; we subtract the
  (k_top + 1)-th, keeping k_top, as the paper states;
* small memories: when the memory holds <= k_top entries the reference
  returns the raw scores (not sparse, not normalised, possibly negative); we
  keep every entry, normalised, with tau = min_i a_i - 1 (as if a (k_top+1)-th
  memory scored one below the worst), so weights stay positive and
  differentiable in the scores;
* scores: the reference scores with ``w . tanh([h^; m_i])`` (no hidden
  layer), so the h^ part is the same for every memory and cancels in the
  threshold: the selection ignores the current state. We use the paper's MLP
  (hidden size ``attn_units``), which makes the selection depend on h^;
* readout: the reference's output layer reads the concatenation [s_k;
  summary_k] (``fc`` on 2n inputs, s_k = h^_k + summary_k); ours reads s_k
  alone (the decoder's own readout, so a SAB model reconstructs like the
  others). ``readout="reference"`` (flag ``--sab_readout=reference``) gives
  the reference's: the base readout plus ``summary_k U_attn``, which is
  ``fc([s_k; summary_k])`` with fc = [U; U_attn];
* As in the reference, s_0 (zeros) is the first memory: attending to it
  shrinks the summary (a learned "attend to nothing").

The attention is part of the model: a SAB-trained decoder runs it at
inference too. `SABDecoder` wraps any `HybridDecoder` (or SNE) and has the
decoder interface `tf_hbd.inference.refine` and
`tf_hbd.model.decoder.export_saved_model` use (``predict_last``,
``serving_function`` (shared with the decoder through
`tf_hbd.model.decoder.DecoderServing`), ``patch_size``, ``boundary``, ``K``),
so refinement and export run the attention without knowing about SAB.
`tf_hbd.model.decoder.load_decoder` loads its exports.
"""

import numpy as np
import tensorflow as tf

from tf_hbd.model import cells as cells_lib
from tf_hbd.model import decoder as decoder_lib

__all__ = ["SABDecoder", "sparsify", "REFERENCE_SETTINGS", "DEFAULTS"]

# The SAB reference code's defaults (copying.py), kept for reference.
REFERENCE_SETTINGS = {"k_top": 10, "k_attn": 2, "k_trunc": 10}
# Our defaults for the K = 4 refinement horizon (see module docstring).
DEFAULTS = {"k_top": 2, "k_attn": 1, "k_trunc": 2}
EPS = 1e-7


def sparsify(scores, k_top, eps=EPS):
  """Top-k_top sparse normalised weights from raw scores (B, M).

  ``w = relu(a - tau) / (sum relu(a - tau) + eps)``, tau the (k_top+1)-th
  largest score, or ``min(a) - 1`` when M <= k_top. M may be dynamic.
  """
  scores = tf.convert_to_tensor(scores)
  m = scores.shape[-1]
  if m is not None:
    if m > k_top:
      tau = tf.math.top_k(scores, k_top + 1).values[:, -1:]
    else:
      tau = tf.reduce_min(scores, axis=-1, keepdims=True) - 1.0
  else:
    m_dyn = tf.shape(scores)[-1]
    kth = tf.math.top_k(scores, tf.minimum(k_top + 1, m_dyn)).values[:, -1:]
    low = tf.reduce_min(scores, axis=-1, keepdims=True) - 1.0
    tau = tf.where(m_dyn > k_top, kth, low)
  w = tf.nn.relu(scores - tau)
  return w / (tf.reduce_sum(w, axis=-1, keepdims=True) + eps)


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class SABDecoder(decoder_lib.DecoderServing,
                 tf.keras.Model):
  """A decoder whose state attends sparsely over its past states (SAB).

  Args:
    base: the wrapped `HybridDecoder` / `SiblingDecoder` (or its Keras
      config when loading).
    k_top: memories kept by the sparsifier.
    k_attn: a state is stored in the memory every k_attn steps.
    attn_units: hidden size of the score MLP (default: the state size).
    seed: seed of the attention weights (U(-init_scale, init_scale)).
    readout: what the reconstruction reads: "state" (default, ours:
      ``readout(s_k)`` with ``s_k = h^_k + summary_k``) or "reference" (the
      SAB reference code's output layer on ``[s_k; summary_k]``: the base
      readout plus ``summary_k U_attn``, U_attn (n, d*d) a new weight).
  """

  READOUTS = ("state", "reference")

  def __init__(self, base, k_top=DEFAULTS["k_top"], k_attn=DEFAULTS["k_attn"],
               attn_units=None, seed=0, readout="state", name=None, **kwargs):
    if isinstance(base, dict):
      base = tf.keras.utils.deserialize_keras_object(base)
    super().__init__(name=name, dtype=base.dtype_policy.name, **kwargs)
    if int(k_top) < 1 or int(k_attn) < 1:
      raise ValueError(f"k_top and k_attn must be >= 1, got {k_top}, "
                       f"{k_attn}")
    if readout not in self.READOUTS:
      raise ValueError(f"unknown SAB readout {readout!r}; choose from "
                       f"{self.READOUTS}")
    self.base = base
    self.readout_mode = readout
    self.k_top = int(k_top)
    self.k_attn = int(k_attn)
    self.seed = seed
    n = int(base.cell.output_size)
    self.attn_units = int(attn_units or n)
    self._out_idx = cells_lib.output_state_indices(base.cell)
    self._out_sizes = [int(base.cell.state_size[i]) for i in self._out_idx]
    scale = float(getattr(base, "init_scale", cells_lib.INIT_SCALE))
    init = lambda salt: cells_lib.SeededUniform(
        scale, cells_lib.derive_seed(seed, 200 + salt))
    a = self.attn_units
    with tf.name_scope(self.name):
      self._attn_vars = [
          self.add_weight(name="attn_Wq", shape=(n, a), initializer=init(0)),
          self.add_weight(name="attn_Wm", shape=(n, a), initializer=init(1)),
          self.add_weight(name="attn_b", shape=(a,), initializer="zeros"),
          self.add_weight(name="attn_v", shape=(a,), initializer=init(2)),
      ]
      self._summary_readout = []
      if readout == "reference":
        pixels = int(base.patch_size) ** 2
        self._summary_readout.append(self.add_weight(
            name="attn_U", shape=(n, pixels), initializer=init(3)))

  # ---- the decoder interface (delegated) ---------------------------------

  @property
  def cell(self):
    return self.base.cell

  @property
  def K(self):  # pylint: disable=invalid-name
    return self.base.K

  @property
  def patch_size(self):
    return self.base.patch_size

  @property
  def boundary(self):
    return self.base.boundary

  @property
  def units(self):
    return self.base.units

  @property
  def setting_size(self):
    return self.base.setting_size

  @property
  def attention_variables(self):
    """[W_q, W_m, b, v] of the score MLP."""
    return list(self._attn_vars)

  def embed(self, context, position, params=None, setting=None):
    return self.base.embed(context, position, params, setting=setting)

  def readout(self, s, context, position, params=None):
    return self.base.readout(s, context, position, params)

  def initial_state(self, batch_size):
    return self.base.initial_state(batch_size)

  def _read(self, s, summary, context, position):
    """The reconstruction of one step (see ``readout`` in the class doc)."""
    p = self.base.readout(s, context, position)
    if self._summary_readout and summary is not None:
      p = p + tf.matmul(summary, self._summary_readout[0])
    return p

  # ---- SAB forward -------------------------------------------------------

  def attend(self, h, memory, keys=None, params=None):
    """Sparse retrieval: (summary (B, n), weights (B, M)).

    Args:
      h: provisional state (B, n).
      memory: (B, M, n) stored states.
      keys: (B, M, a) = memory W_m, if already computed (each memory's
        projection is computed once, when it is stored).
      params: [W_q, W_m, b, v] (default: the variables).
    """
    wq, wm, b, v = self._attn_vars if params is None else params
    if keys is None:
      keys = tf.einsum("bmn,na->bma", memory, wm)
    hidden = tf.math.tanh(tf.matmul(h, wq)[:, None, :] + keys + b)
    scores = tf.einsum("bma,a->bm", hidden, v)
    weights = sparsify(scores, self.k_top)
    return tf.einsum("bm,bmn->bn", weights, memory), weights

  def _store(self, memory, keys, s):
    """Appends s (and its key s W_m) to the memory."""
    return (tf.concat([memory, s[:, None, :]], axis=1),
            tf.concat([keys, tf.matmul(s, self._attn_vars[1])[:, None, :]],
                      axis=1))

  def _with_output(self, states, s):
    """The state tuple with its output entries replaced by s."""
    states = list(states)
    for i, part in zip(self._out_idx, tf.split(s, self._out_sizes, axis=-1)):
      states[i] = part
    return tuple(states)

  def sab_step(self, k, e, states, memory, k_trunc=None):
    """Refinement step k (1-based): (s_k, states_k, memory_k, summary_k).

    summary_k is None at step 1 (the memory holds only s_0 = 0).

    ``memory`` is the pair (stored states (B, M, n), their keys (B, M, a)).
    """
    if k_trunc is not None and k > 1 and (k - 1) % k_trunc == 0:
      states = tuple(tf.stop_gradient(t) for t in states)
    h, states = self.base.cell.step(e, states, self.base.step_variables)
    summary = None
    if k == 1:
      # The memory holds only s_0 = 0: the summary is exactly zero, and so
      # is its gradient; skip the attention.
      s = h
    else:
      summary, _ = self.attend(h, *memory)
      s = h + summary
    states = self._with_output(states, s)
    if k % self.k_attn == 0:
      memory = self._store(*memory, s)
    return s, states, memory, summary

  def unroll(self, context, position, K=None, last_only=False, k_trunc=None,
             setting=None):
    """Runs the K SAB steps: (B, K, d*d), or (B, d*d) with ``last_only``.

    ``k_trunc`` (training only) cuts the recurrent gradient between chunks
    of k_trunc steps; values are the same with or without it. A tensor K
    (serving) runs a `tf.while_loop`.
    """
    K = self.K if K is None else K
    e = self.base.embed(context, position, setting=setting)
    bsz = tf.shape(e)[0]
    states = tuple(self.base.initial_state(bsz))
    n = int(self.base.cell.output_size)
    s0 = tf.concat([states[i] for i in self._out_idx], axis=-1)
    dtype = self.compute_dtype
    memory = self._store(tf.zeros([bsz, 0, n], dtype),
                         tf.zeros([bsz, 0, self.attn_units], dtype), s0)
    if isinstance(K, (int, np.integer)):
      outs = []
      for k in range(1, int(K) + 1):
        s, states, memory, summary = self.sab_step(k, e, states, memory,
                                                   k_trunc)
        if not last_only or k == K:
          outs.append(self._read(s, summary, context, position))
      return outs[-1] if last_only else tf.stack(outs, axis=1)
    K = tf.cast(K, tf.int32)
    tf.debugging.assert_positive(K, message="K must be >= 1")
    pixels = self.base.patch_size ** 2
    out = tf.TensorArray(self.compute_dtype, size=K)

    def body(k, states, memory, keys, out):
      h, states = self.base.cell.step(e, states, self.base.step_variables)
      summary, _ = self.attend(h, memory, keys)
      s = h + summary
      states = self._with_output(states, s)
      memory, keys = tf.cond(
          tf.equal(tf.math.floormod(k + 1, self.k_attn), 0),
          lambda: self._store(memory, keys, s),
          lambda: (memory, keys))
      return (k + 1, states, memory, keys,
              out.write(k, self._read(s, summary, context, position)))

    _, _, _, _, out = tf.while_loop(
        lambda k, *_: k < K, body,
        (tf.constant(0), states) + tuple(memory) + (out,),
        shape_invariants=(tf.TensorShape([]),
                          tuple(tf.TensorShape([None, t.shape[-1]])
                                for t in states),
                          tf.TensorShape([None, None, n]),
                          tf.TensorShape([None, None, self.attn_units]),
                          tf.TensorShape(None)))
    recons = tf.transpose(out.stack(), [1, 0, 2])
    recons = tf.reshape(recons, [bsz, -1, pixels])
    return recons[:, -1] if last_only else recons

  # ---- Keras / serving ---------------------------------------------------

  def call(self, inputs, K=None, training=False, k_trunc=None):
    """{'context', 'position'} -> (B, K, d*d) (k_trunc: see `unroll`)."""
    del training
    context, position, setting = self._unpack(inputs)
    return self.unroll(context, position, K, k_trunc=k_trunc,
                       setting=setting)

  def dummy_inputs(self, batch_size=1):
    return self.base.dummy_inputs(batch_size)

  def get_config(self):
    return {"base": tf.keras.utils.serialize_keras_object(self.base),
            "k_top": self.k_top, "k_attn": self.k_attn,
            "attn_units": self.attn_units, "seed": self.seed,
            "readout": self.readout_mode, "name": self.name}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(**config)
