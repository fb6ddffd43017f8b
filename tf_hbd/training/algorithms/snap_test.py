"""Proofs of SnAp-1: its per-unit derivatives are the exact Jacobian entries
it keeps; it equals RTRL within its horizon (K = 1) and, when every recurrent
matrix is diagonal (D block-diagonal by unit), RTRL and BPTT for any K; on
dense cells its gradient stays close to BPTT's (cosine bound)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import decoder as decoder_lib
from tf_hbd.training.algorithms import bptt
from tf_hbd.training.algorithms import rtrl
from tf_hbd.training.algorithms import snap
from tf_hbd.training.algorithms import testing_utils as tu

CELLS = [
    ("lstm", "lstm", {}),
    ("lstm_untied", "lstm", {"cell_options": {"tied": False}}),
    ("gru", "gru", {}),
    ("gru_untied", "gru", {"cell_options": {"tied": False}}),
    ("delta", "delta", {}),
    ("elman", "elman", {}),
    ("elman_relu", "elman", {"cell_options": {"activation": "relu"}}),
    ("mlp", "mlp", {}),
    ("sne_lstm", "lstm", {"sne": True}),
    ("sne_gru", "gru", {"sne": True}),
]

# Cosine between SnAp-1's and BPTT's episode gradients on `_dense_model`
# (4 units, weights U(-0.5, 0.5), K = 4, float64; deterministic), over the
# cell parameters Theta_s / over the embed parameters (the readout gradient
# is exact in every algorithm and is left out), measured:
#   lstm 0.99844 / 0.99844     lstm_untied 0.99886 / 0.99864
#   gru 0.99781 / 0.99746      gru_untied 0.99803 / 0.99830
#   delta 0.99551 / 0.99442    elman 0.93068 / 0.93133
#   elman_relu 0.99210 / 0.99145
#   sne_lstm 0.99126 / 0.97285 sne_gru 0.98536 / 0.96334
# (all parameters: 0.9545 for elman, >= 0.9889 for the others; mlp: exact).
# The test bound for every dense cell:
COSINE_BOUND = 0.9


def _grads(algo, batch):
  rec = tu.Recorder()
  algo.train_step(batch, rec)
  return tu.by_variable(algo.variables, rec.calls[0])


def _bptt(model, batch):
  g, _ = bptt.BPTT(model).gradients(batch)
  return tu.by_variable(model.trainable_variables, g)


def _mask_recurrence_to_diagonal(model):
  """Every recurrent matrix keeps only its own-unit weights (W[u, g n + u]);
  the SNE coupling is zeroed. Then dF/dz is block-diagonal by unit."""
  cell = model.cell
  sne = isinstance(model, decoder_lib.SiblingDecoder)
  subcells = [cell.causal, cell.noncausal] if sne else [cell]
  if sne and cell.coupling:
    for v in cell.step_variables[:2]:
      v.assign(tf.zeros_like(v))
  for sub in subcells:
    n = sub.units
    for v in sub.step_variables:
      if len(v.shape) == 2:
        mask = np.tile(np.eye(n), [1, int(v.shape[1]) // n])
        v.assign(v * mask)


def _dense_model(cell, K=4, **kwargs):
  return tu.small_decoder(cell, units=4, K=K, init_scale=0.5, **kwargs)


def _cosine(a, b):
  keys = sorted(a, key=str)
  va = np.concatenate([a[k].ravel() for k in keys])
  vb = np.concatenate([b[k].ravel() for k in keys])
  return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


class LocalDerivativesTest(tf.test.TestCase, parameterized.TestCase):
  """A, G and G_e against tf.GradientTape Jacobians at a random state."""

  @parameterized.named_parameters(*CELLS)
  def test_kept_entries_are_exact_jacobian_entries(self, cell, kwargs):
    model = tu.small_decoder(cell, units=3, **kwargs)
    c = model.cell
    sizes = [int(n) for n in c.state_size]
    rng = np.random.default_rng(0)
    e = tf.constant(rng.normal(size=(1, c.input_size)) * 0.7)
    states = tuple(tf.constant(rng.normal(size=(1, n)) * 0.6) for n in sizes)
    params = c.step_variables
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([e, *states])
      loc = snap.local_step(c, e, states, params)
      z = tf.concat(loc.states, -1)[0]
    _, ref = c.step(e, states, params)
    self.assertAllClose(z, tf.concat(ref, -1)[0], rtol=0, atol=0)
    offsets = np.cumsum([0] + sizes)
    n = sizes[0]

    def zi(group, comp, unit):
      return offsets[loc.groups[group][0][comp]] + unit

    d_states = [tape.jacobian(z, s, unconnected_gradients="zero")[:, 0].numpy()
                for s in states]
    for grp, (idx, a) in enumerate(loc.groups):
      for ci, i in enumerate(idx):
        for cj, j in enumerate(idx):
          for u in range(n):
            self.assertAllClose(a[0, ci, cj, u],
                                d_states[j][zi(grp, ci, u), u],
                                rtol=1e-12, atol=1e-14)
    for v, (grp, g, x) in zip(params, loc.params):
      jac = tape.jacobian(z, v).numpy()
      cols = int(v.shape[-1])
      checked = 0
      for col in range(cols):
        for ci in range(g.shape[1]):
          row = zi(grp, ci, col % n)
          want = jac[row, :, col] if x is not None else jac[row, col]
          got = (g[0, ci, col] * x[0]).numpy() if x is not None else g[0, ci,
                                                                       col]
          self.assertAllClose(got, want, rtol=1e-12, atol=1e-14)
          checked += 1
      self.assertEqual(checked, cols * g.shape[1])
    d_e = tape.jacobian(z, e)[:, 0].numpy()
    start = 0
    for grp, g in loc.e_parts:
      for col in range(g.shape[2]):
        for ci in range(g.shape[1]):
          self.assertAllClose(g[0, ci, col],
                              d_e[zi(grp, ci, col % n), start + col],
                              rtol=1e-12, atol=1e-14)
      start += g.shape[2]
    self.assertEqual(start, c.input_size)


class SnApProofTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*CELLS)
  def test_equals_rtrl_within_its_horizon_k1(self, cell, kwargs):
    model = _dense_model(cell, K=1, **kwargs)
    batch = tu.random_batch(seed=31)
    got = _grads(snap.SnAp1(model, accumulate=True), batch)
    want = _grads(rtrl.RTRL(model, accumulate=True), batch)
    err = tu.rel_error(want, got)
    self.assertLessEqual(err, 1e-12)

  @parameterized.named_parameters(*CELLS)
  def test_diagonal_recurrence_equals_rtrl_and_bptt_any_k(self, cell,
                                                          kwargs):
    model = _dense_model(cell, K=5, **kwargs)
    _mask_recurrence_to_diagonal(model)
    batch = tu.random_batch(seed=32)
    got = _grads(snap.SnAp1(model, accumulate=True), batch)
    err_rtrl = tu.rel_error(_grads(rtrl.RTRL(model, accumulate=True), batch),
                            got)
    err_bptt = tu.rel_error(_bptt(model, batch), got)
    print(f"SnAp-1 diagonal recurrence {cell}: rel. error vs RTRL "
          f"{err_rtrl:.1e}, vs BPTT {err_bptt:.1e}")
    self.assertLessEqual(err_rtrl, 1e-12)
    self.assertLessEqual(err_bptt, 1e-12)

  @parameterized.named_parameters(*[c for c in CELLS if c[0] != "mlp"])
  def test_dense_cosine_with_bptt(self, cell, kwargs):
    model = _dense_model(cell, **kwargs)
    batch = tu.random_batch(seed=33)
    algo = snap.SnAp1(model, accumulate=True)
    got = _grads(algo, batch)
    want = _bptt(model, batch)
    sysm = algo.system
    cos = {}
    for part, variables in (("step", sysm.step_variables),
                            ("embed", sysm.embed_variables)):
      keys = [v.ref() for v in variables]
      cos[part] = _cosine({k: want[k] for k in keys},
                          {k: got[k] for k in keys})
    err = tu.rel_error(want, got)
    print(f"SnAp-1 dense {cell}: cosine with BPTT, cell params "
          f"{cos['step']:.5f}, embed params {cos['embed']:.5f}, all "
          f"{_cosine(want, got):.5f}; max rel. error {err:.2e}")
    self.assertGreater(cos["step"], COSINE_BOUND)
    self.assertGreater(cos["embed"], COSINE_BOUND)
    self.assertGreater(err, 1e-6)  # dense: an approximation, not exact

  def test_online_step_gradients_equal_rtrl_on_diagonal_recurrence(self):
    model = _dense_model("lstm", K=4)
    _mask_recurrence_to_diagonal(model)
    batch = tu.random_batch(seed=34)
    got, want = tu.Recorder(), tu.Recorder()
    snap.SnAp1(model).train_step(batch, got)
    rtrl.RTRL(model).train_step(batch, want)
    self.assertLen(got.calls, 4)
    for g, w in zip(got.calls, want.calls):
      for a, b in zip(g, w):
        self.assertAllClose(a, b, rtol=1e-12, atol=1e-15)

  def test_float32_online_inside_tf_function(self):
    model = tu.small_decoder("lstm", units=4, K=3, dtype="float32")
    algo = snap.SnAp1(model)
    opt = tf.keras.optimizers.SGD(0.1)
    step = tf.function(lambda b: algo.train_step(
        b, lambda g: opt.apply_gradients(zip(g, algo.variables))))
    before = [v.numpy() for v in algo.variables]
    out = step(tu.random_batch(dtype="float32"))
    self.assertTrue(np.isfinite(out["loss"].numpy()))
    self.assertEqual(int(opt.iterations.numpy()), 3)
    self.assertTrue(any(np.any(v.numpy() != b)
                        for v, b in zip(algo.variables, before)))

  def test_memory_is_order_k_units_per_example(self):
    model = tu.small_decoder("lstm", units=512, K=4, dtype="float32")
    est = snap.SnAp1(model).estimate(256)["influence_bytes"]
    # V: K (n + 2 * 4n); b: 2 * 4n; e: 2n (tied) numbers per example.
    n = 512
    self.assertEqual(est, 256 * 4 * (4 * (n + 8 * n) + 8 * n + 2 * n))
    self.assertLess(est, 0.1 * 2 ** 30)

  def test_unknown_cell_is_refused(self):
    with self.assertRaisesRegex(ValueError, "no per-unit derivatives"):
      snap.local_step(object(), None, None, None)


if __name__ == "__main__":
  tf.test.main()
