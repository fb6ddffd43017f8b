"""SnAp-1: the sparse one-step approximation of RTRL (Menick et al., ICLR 2021).

RTRL (`tf_hbd.training.algorithms.rtrl`) carries the whole influence ``J_k =
dz_k/dtheta`` (|z| x |theta| numbers per example: 4 GiB per example for the
paper's LSTM-512). SnAp-n keeps only the entries of J that a parameter can
reach within n steps; SnAp-1 keeps the entries that are non-zero in the
immediate Jacobian ``I_k = dF/dtheta`` and drops every other entry after each
step::

    J~_k = mask(I_k + D_k J~_{k-1}),  D_k = dF/dz_{k-1},   J~_0 = 0
    dl_k/dtheta ~= dl_k/dz_k J~_k  (+ the direct readout gradient)

Which entries are kept ("unit ownership"). Every cell of `tf_hbd.model.cells` is a
layer of n units; unit u owns its state components (s_u, and c_u for the
LSTM) and every parameter that enters its own pre-activations in one step:
column g*n + u of a recurrent matrix (gate g of unit u), entry g*n + u of a
bias or gain vector. SnAp-1 keeps, for each parameter, the influence on the
components of its unit only, so ``mask(D_k J~_{k-1})`` needs only the C x C
diagonal block of D_k of each unit (C = 2 for the LSTM, 1 otherwise; the
exact diagonal entries of D, including paths through other units). The cell
input e (the transformation parameters act only through e, as in RTRL) is
treated the same way: entry g*n + u of e belongs to unit u, and the embed
parameters get their gradient from ``dl_k/dz_k J~^e_k`` by one vector-Jacobian
product of ``embed``. This is exactly SnAp-1's pattern for the LSTM (tied and
untied), Elman, Delta-RNN and MLP cells. Two documented exceptions:

* GRU: the reset gate r_u multiplies s_u *before* the matrix V_s, so in one
  step its parameters (and, tied, e_u) reach every unit through V_s. Their
  full one-step pattern costs O(n^3) per example (RTRL's cost); we keep their
  own unit only (the paper's GRU applies the reset after the matrix, where
  this is exact). At step 1 the state is 0, so nothing is lost there.
* SNE (`SiblingCell`): unit u of the causal and unit u of the non-causal
  sibling are different units; the coupling matrices C_a, C_b feed e of the
  other sibling, so C_a's column g*n + u belongs to unit u of the causal
  sibling (exact), while the cross-sibling entries of D are dropped (SnAp-1).

Structure used (exact, no approximation beyond the mask). A recurrent matrix
W enters as ``y = x W`` with x the step's input (s_{k-1}, or r * s_{k-1} for
the GRU's V_s, or the other sibling's state for C). Its immediate influence
on its unit is ``dz_u/dW[r, col] = G_k[col] x_k[r]`` with ``G_k = dz_u/dy_col``,
so after k steps ``J~[c, r, col] = sum_t M_t[c, col] x_t[r]``: the algorithm
keeps the inputs x_t and the per-unit coefficients M_t (propagated by the
unit's diagonal block, ``M_t <- A_k M_t``), i.e. O(K (n_in + C m)) numbers
per example instead of O(C n_in m), and the gradient ``sum_t x_t^T Q_t``
(Q_t = dl_k/dz_k contracted with M_t) is K matrix products of BPTT's size.
Vectors (biases, gains) and e keep their influence (B, C, m) directly.
Memory per example: O(K n) for a dense layer of n units, far below
O(params); time: about BPTT's (`benchmarks/algorithms_speed.py`).

The derivatives (A_k, G_k) are written out per cell below (``_LOCAL``); the
tests check them against the exact Jacobians (`tf.GradientTape`) at the kept
entries, and prove that SnAp-1 equals RTRL at K = 1 and, for recurrent
matrices masked to their diagonal (D structurally block-diagonal by unit),
equals RTRL and BPTT for any K.

Why no SnAp-2: for a dense recurrent matrix every parameter reaches every
unit within two steps, so SnAp-2 *is* RTRL (O(n^3) per example); it pays only
for sparse networks (Menick et al., section 4), which the paper's decoder is
not.

Online vs offline (`accumulate`) as for RTRL.
"""

import collections

import tensorflow as tf

from tf_hbd.model import cells as cells_lib
from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import forward_mode

__all__ = ["SnAp1", "Local", "local_step", "snap_footprint"]

Local = collections.namedtuple("Local", ["s", "states", "groups", "params",
                                         "e_parts"])
Local.__doc__ = """One step of a cell with SnAp-1's per-unit derivatives.

Fields:
  s: the output (B, n_out); states: the new state tuple.
  groups: list of (state indices, A) per layer of units (one; two for the
    SNE): A (B, C, C, n), ``A[:, c, d, u] = dz_c[u] / dz_{c'=d, k-1}[u]``
    over the group's C state tensors.
  params: aligned with ``cell.step_variables``: (group, G, x) with
    G (B, C, m) the derivative of the owning unit's components with respect
    to the parameter's column (matrices: to y_col of ``y = x W``; vectors: to
    the entry) and x (B, n_in) the matrix input (None for a vector).
  e_parts: list of (group, G_e (B, C, m_e)); concatenated they cover e.
"""


def _sig_grad(x):
  return x * (1.0 - x)


def _tanh_grad(x):
  return 1.0 - tf.square(x)


def _act_grad(activation, pre, out):
  if activation == "tanh":
    return _tanh_grad(out)
  if activation == "sigmoid":
    return _sig_grad(out)
  if activation == "relu":
    return tf.cast(pre > 0, out.dtype)
  raise ValueError(f"no derivative for activation {activation!r}")


def _diag_blocks(w, n):
  """(m // n, n): entry [g, u] = w[u, g*n + u] (each gate's own-unit weight)."""
  return tf.stack([tf.linalg.diag_part(w[:, g * n:(g + 1) * n])
                   for g in range(int(w.shape[1]) // n)])


def _one(x):
  """(B, n) -> (B, 1, n): one state component."""
  return x[:, None, :]


def _local_elman(cell, e, states, params):
  e, (s_prev,), (v, b) = cell._prepare(e, states, params)  # pylint: disable=protected-access
  pre = e + tf.matmul(s_prev, v) + b
  s = cells_lib.ACTIVATIONS[cell.activation](pre)
  g = _act_grad(cell.activation, pre, s)
  a = g * _diag_blocks(v, cell.units)[0]
  return Local(s, (s,), [((0,), a[:, None, None, :])],
               [(0, _one(g), s_prev), (0, _one(g), None)], [(0, _one(g))])


def _local_mlp(cell, e, states, params):
  e, _, (b,) = cell._prepare(e, states, params)  # pylint: disable=protected-access
  pre = e + b
  s = cells_lib.ACTIVATIONS[cell.activation](pre)
  g = _act_grad(cell.activation, pre, s)
  return Local(s, (s,), [((0,), tf.zeros_like(g)[:, None, None, :])],
               [(0, _one(g), None)], [(0, _one(g))])


def _local_delta(cell, e, states, params):
  e, (s_prev,), (v, b, b_r, alpha, beta1, beta2) = cell._prepare(  # pylint: disable=protected-access
      e, states, params)
  vs = tf.matmul(s_prev, v)
  s_tilde = tf.math.tanh(alpha * vs * e + beta1 * vs + beta2 * e + b)
  r = tf.math.sigmoid(e + b_r)
  s = tf.math.tanh((1.0 - r) * s_tilde + r * s_prev)
  ds_dh = _tanh_grad(s)
  g_t = ds_dh * (1.0 - r) * _tanh_grad(s_tilde)   # ds/d(pre of s~)
  g_r = ds_dh * (s_prev - s_tilde) * _sig_grad(r)  # ds/d(pre of r)
  g_vs = g_t * (alpha * e + beta1)                 # ds/d(V s)
  a = ds_dh * r + g_vs * _diag_blocks(v, cell.units)[0]
  params_out = [(0, _one(g_vs), s_prev), (0, _one(g_t), None),
                (0, _one(g_r), None), (0, _one(g_t * vs * e), None),
                (0, _one(g_t * vs), None), (0, _one(g_t * e), None)]
  g_e = g_t * (alpha * vs + beta2) + g_r
  return Local(s, (s,), [((0,), a[:, None, None, :])], params_out,
               [(0, _one(g_e))])


def _local_lstm(cell, e, states, params):
  e, (s_prev, c_prev), (v, b) = cell._prepare(e, states, params)  # pylint: disable=protected-access
  n = cell.units
  pre = tf.matmul(s_prev, v) + b + (tf.tile(e, [1, 4]) if cell.tied else e)
  zf, zi, zc, zo = tf.split(pre, 4, axis=-1)
  f, i, o = tf.math.sigmoid(zf), tf.math.sigmoid(zi), tf.math.sigmoid(zo)
  c_tilde = tf.math.tanh(zc)
  c = f * c_prev + i * c_tilde
  tc = tf.math.tanh(c)
  s = o * tc
  ds_dc = o * _tanh_grad(tc)
  dc = [c_prev * _sig_grad(f), c_tilde * _sig_grad(i),
        i * _tanh_grad(c_tilde), tf.zeros_like(c)]
  ds = [ds_dc * dc[0], ds_dc * dc[1], ds_dc * dc[2], tc * _sig_grad(o)]
  g = tf.stack([tf.concat(ds, -1), tf.concat(dc, -1)], axis=1)  # (B, 2, 4n)
  vd = _diag_blocks(v, n)
  a_ss = tf.add_n([ds[k] * vd[k] for k in range(4)])
  a_cs = tf.add_n([dc[k] * vd[k] for k in range(4)])
  a = tf.stack([tf.stack([a_ss, ds_dc * f], 1),
                tf.stack([a_cs, f], 1)], 1)                      # (B, 2, 2, n)
  if cell.tied:
    g_e = tf.reduce_sum(tf.reshape(g, [-1, 2, 4, n]), axis=2)
  else:
    g_e = g
  return Local(s, (s, c), [((0, 1), a)], [(0, g, s_prev), (0, g, None)],
               [(0, g_e)])


def _local_gru(cell, e, states, params):
  e, (s_prev,), (v_zr, b_zr, v_s, b_s) = cell._prepare(e, states, params)  # pylint: disable=protected-access
  n = cell.units
  e_z, e_r, e_s = (e, e, e) if cell.tied else tf.split(e, 3, axis=-1)
  pz, pr = tf.split(tf.matmul(s_prev, v_zr) + b_zr, 2, axis=-1)
  z = tf.math.sigmoid(e_z + pz)
  r = tf.math.sigmoid(e_r + pr)
  x_s = r * s_prev
  s_tilde = tf.math.tanh(e_s + tf.matmul(x_s, v_s) + b_s)
  s = z * s_tilde + (1.0 - z) * s_prev
  d_pz = (s_tilde - s_prev) * _sig_grad(z)
  d_ps = z * _tanh_grad(s_tilde)
  vs_diag = tf.linalg.diag_part(v_s)
  d_pr = d_ps * vs_diag * s_prev * _sig_grad(r)   # r_u's own-unit path only
  # The exact diagonal of D: s_u reaches s~_u directly (r_u V_s[u, u]) and
  # through every r_j (V_r[u, j] then V_s[j, u]).
  cross = tf.matmul(s_prev * _sig_grad(r), v_s * tf.transpose(v_zr[:, n:]))
  a = ((1.0 - z) + d_pz * tf.linalg.diag_part(v_zr[:, :n])
       + d_ps * (r * vs_diag + cross))
  g_zr = _one(tf.concat([d_pz, d_pr], -1))
  g_e = (d_pz + d_pr + d_ps) if cell.tied else tf.concat(
      [d_pz, d_pr, d_ps], -1)
  return Local(s, (s,), [((0,), a[:, None, None, :])],
               [(0, g_zr, s_prev), (0, g_zr, None), (0, _one(d_ps), x_s),
                (0, _one(d_ps), None)], [(0, _one(g_e))])


def _local_sibling(cell, e, states, params):
  params = list(params)
  e = tf.cast(e, cell.compute_dtype)
  states = tuple(tf.nest.flatten(states))
  na = len(cell.causal.state_names)
  st_a, st_b = states[:na], states[na:]
  nc = 2 if cell.coupling else 0
  n_a = len(cell.causal.step_variables)
  e_a, e_b = tf.split(e, 2, axis=-1)
  if cell.coupling:
    c_a, c_b = params[:2]
    e_a = e_a + tf.matmul(tf.cast(st_b[0], e.dtype), c_a)
    e_b = e_b + tf.matmul(tf.cast(st_a[0], e.dtype), c_b)
  loc_a = local_step(cell.causal, e_a, st_a, params[nc:nc + n_a])
  loc_b = local_step(cell.noncausal, e_b, st_b, params[nc + n_a:])
  (idx_a, a_a), = loc_a.groups
  (idx_b, a_b), = loc_b.groups
  (_, ge_a), = loc_a.e_parts
  (_, ge_b), = loc_b.e_parts
  coupling = ([(0, ge_a, st_b[0]), (1, ge_b, st_a[0])] if cell.coupling
              else [])
  p_a = [(0, g, x) for _, g, x in loc_a.params]
  p_b = [(1, g, x) for _, g, x in loc_b.params]
  return Local(tf.concat([loc_a.s, loc_b.s], axis=-1),
               tuple(loc_a.states) + tuple(loc_b.states),
               [(idx_a, a_a), (tuple(na + i for i in idx_b), a_b)],
               coupling + p_a + p_b, [(0, ge_a), (1, ge_b)])


_LOCAL = {
    cells_lib.ElmanCell: _local_elman,
    cells_lib.MLPCell: _local_mlp,
    cells_lib.DeltaRNNCell: _local_delta,
    cells_lib.LSTMCell: _local_lstm,
    cells_lib.GRUCell: _local_gru,
    decoder_lib.SiblingCell: _local_sibling,
}


def local_step(cell, e, states, params):
  """One step of `cell` with SnAp-1's per-unit derivatives (a `Local`)."""
  fn = _LOCAL.get(type(cell))
  if fn is None:
    raise ValueError(f"SnAp-1 has no per-unit derivatives for "
                     f"{type(cell).__name__}; known: "
                     f"{sorted(c.__name__ for c in _LOCAL)}")
  return fn(cell, e, states, params)


def _split_units(m, n):
  """M (B, T, C, m) -> C tensors (B, T, m // n, n): column g n + u at [g, u]."""
  shape = tf.shape(m)
  m5 = tf.reshape(m, [shape[0], shape[1], m.shape[2], -1, n])
  return [m5[:, :, c] for c in range(m.shape[2])]


def _propagate(a, m):
  """A (B, C, C, n) applied unit-wise to M (B, T, C, m), m a multiple of n.

  ``out[b, t, c, g n + u] = sum_d A[b, c, d, u] M[b, t, d, g n + u]``
  (broadcast products: the C x C blocks are tiny, a matmul would not pay).
  """
  n = tf.shape(a)[-1]
  parts = _split_units(m, n)
  c_dim = len(parts)
  out = [tf.add_n([a[:, c, d][:, None, None, :] * parts[d]
                   for d in range(c_dim)]) for c in range(c_dim)]
  return tf.reshape(tf.stack(out, axis=2), tf.shape(m))


def _contract(dl, m):
  """dl (B, C, n) with M (B, T, C, m): sum_c dl[c, unit(col)] M[c, col],
  (B, T, m)."""
  parts = _split_units(m, tf.shape(dl)[-1])
  out = tf.add_n([dl[:, c][:, None, None, :] * p
                  for c, p in enumerate(parts)])
  shape = tf.shape(m)
  return tf.reshape(out, [shape[0], shape[1], -1])


def snap_footprint(system, batch_size, K, itemsize):
  """Bytes of SnAp-1's influence state at the end of a K-step episode.

  Args:
    system: a `forward_mode.StateSystem`.
    batch_size, K, itemsize: examples, steps, bytes per number.
  """
  cell = system.cell
  e = tf.zeros([1, system.embed_dim], system.dtype)
  loc = local_step(cell, e, system.cell.zero_states(1), cell.step_variables)
  per_example = 0
  for (_, g, x) in loc.params:
    c_m = int(g.shape[1]) * int(g.shape[2])
    per_example += K * (int(x.shape[-1]) + c_m) if x is not None else c_m
  per_example += sum(int(g.shape[1]) * int(g.shape[2])
                     for _, g in loc.e_parts)
  return float(batch_size) * per_example * itemsize


@base.register_algorithm("snap1")
class SnAp1(forward_mode.ForwardModeAlgorithm):
  """SnAp-1 approximate RTRL, online or offline (see module docstring).

  Options:
    accumulate: False (default, online: one update per step) or True (one
      update per batch from the summed step gradients).
  """

  OPTIONS = {"accumulate": False}
  FLAG_NAMES = {"accumulate": "accumulate"}

  def __init__(self, decoder, **kwargs):
    super().__init__(decoder, **kwargs)
    if type(self.system.cell) not in _LOCAL:
      raise ValueError(f"snap1: no per-unit derivatives for "
                       f"{type(self.system.cell).__name__}")

  def estimate(self, batch_size):
    """{'influence_bytes': ...} of one K-step episode."""
    sysm = self.system
    return {"influence_bytes": snap_footprint(sysm, batch_size, self.K,
                                              sysm.dtype.size)}

  def run(self, batch, apply_gradients=None):
    """One K-step episode of SnAp-1.

    Args:
      batch: dict batch (``context``, ``position``, ``target``).
      apply_gradients: called with each step's gradients (online) or once
        with their sum (accumulate); None: only compute.

    Returns:
      (metrics, step_grads): ``step_grads`` is the list of the K per-step
      gradient lists, each aligned with `variables`.
    """
    sysm = self.system
    cell = sysm.cell
    batch, sink = self.start_episode(batch, apply_gradients)
    states = tuple(self.model.initial_state(tf.shape(batch["context"])[0]))
    # Per step variable: (X (B, t, n_in), M (B, t, C, m)), the inputs and
    # coefficients of steps 1..t, or (None, J~ (B, 1, C, m)) for a vector.
    history = None
    infl_e = None    # per e part: J~^e (B, 1, C, m_e)
    loss = 0.0
    p = None
    for _ in range(self.K):
      embedded = sysm.watched_embed(batch)
      e = embedded[0]
      loc = local_step(cell, e, states, sysm.step_variables)
      amats = [a for _, a in loc.groups]
      if history is None:
        history = [(None if x is None else x[:, None], g[:, None])
                   for _, g, x in loc.params]
        infl_e = [g[:, None] for _, g in loc.e_parts]
      else:
        new = []
        for (xs, ms), (grp, g, x) in zip(history, loc.params):
          ms = _propagate(amats[grp], ms)
          if x is None:
            new.append((None, ms + g[:, None]))
          else:
            new.append((tf.concat([xs, x[:, None]], axis=1),
                        tf.concat([ms, g[:, None]], axis=1)))
        history = new
        infl_e = [_propagate(amats[grp], j) + g[:, None]
                  for j, (grp, g) in zip(infl_e, loc.e_parts)]
      states = tuple(loc.states)
      step_loss, p, ds, dread = sysm.readout_grads(self, batch, loc.s)
      dl_parts = sysm.split_states(sysm.output_cotangent(ds))
      dl = [tf.stack([dl_parts[i] for i in idx], axis=1)
            for idx, _ in loc.groups]                     # (B, C, n) each
      g_params = []
      for (xs, ms), (grp, _, _) in zip(history, loc.params):
        q = _contract(dl[grp], ms)                        # (B, t, m)
        if xs is None:
          g_params.append(tf.reduce_sum(q, axis=[0, 1]))
        else:
          # sum over examples and steps t of x_t^T q_t: one matmul.
          g_params.append(tf.matmul(
              tf.reshape(xs, [-1, tf.shape(xs)[-1]]),
              tf.reshape(q, [-1, tf.shape(q)[-1]]), transpose_a=True))
      g_e = tf.concat([_contract(dl[grp], j)[:, 0]
                       for j, (grp, _) in zip(infl_e, loc.e_parts)], axis=-1)
      g_params = [tf.reshape(g, v.shape)
                  for g, v in zip(g_params, sysm.step_variables)]
      self.add_step(sink, embedded, g_e, g_params, dread)
      loss += step_loss
    metrics, step_grads = self.end_episode(sink, batch, loss, p)
    return metrics, step_grads
