"""Tests of tf_hbd.model.cells against independent NumPy implementations."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import cells

N = 6  # units in most tests


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


# ---- NumPy references: the paper's equations, one function per cell -------
# Weight layouts follow each class docstring; e is (B, input_size).


def np_delta(e, states, w):
  (s_prev,) = states
  v, b, b_r, alpha, beta1, beta2 = w
  d1 = alpha * (s_prev @ v) * e
  d2 = beta1 * (s_prev @ v) + beta2 * e
  s_tilde = np.tanh(d1 + d2 + b)
  r = sigmoid(e + b_r)
  s = np.tanh((1 - r) * s_tilde + r * s_prev)
  return s, (s,)


def np_elman(e, states, w, activation="tanh"):
  (s_prev,) = states
  v, b = w
  pre = e + s_prev @ v + b
  s = {"tanh": np.tanh, "sigmoid": sigmoid,
       "relu": lambda x: np.maximum(x, 0)}[activation](pre)
  return s, (s,)


def np_lstm(e, states, w, tied=True):
  s_prev, c_prev = states
  v, b = w
  n = s_prev.shape[1]
  vf, vi, vc, vo = (v[:, g * n:(g + 1) * n] for g in range(4))
  bf, bi, bc, bo = (b[g * n:(g + 1) * n] for g in range(4))
  if tied:
    ef = ei = ec = eo = e
  else:
    ef, ei, ec, eo = (e[:, g * n:(g + 1) * n] for g in range(4))
  f = sigmoid(ef + s_prev @ vf + bf)
  i = sigmoid(ei + s_prev @ vi + bi)
  c_tilde = np.tanh(ec + s_prev @ vc + bc)
  c = f * c_prev + i * c_tilde
  o = sigmoid(eo + s_prev @ vo + bo)
  s = o * np.tanh(c)
  return s, (s, c)


def np_gru(e, states, w, tied=True):
  (s_prev,) = states
  v_zr, b_zr, v_s, b_s = w
  n = s_prev.shape[1]
  if tied:
    ez = er = es = e
  else:
    ez, er, es = e[:, :n], e[:, n:2 * n], e[:, 2 * n:]
  z = sigmoid(ez + s_prev @ v_zr[:, :n] + b_zr[:n])
  r = sigmoid(er + s_prev @ v_zr[:, n:] + b_zr[n:])
  s_tilde = np.tanh(es + (r * s_prev) @ v_s + b_s)
  s = z * s_tilde + (1 - z) * s_prev
  return s, (s,)


def np_mlp(e, states, w, activation="tanh"):
  del states
  (b,) = w
  s = {"tanh": np.tanh, "sigmoid": sigmoid,
       "relu": lambda x: np.maximum(x, 0)}[activation](e + b)
  return s, (s,)


REFERENCES = {"delta": np_delta, "elman": np_elman, "lstm": np_lstm,
              "gru": np_gru, "mlp": np_mlp}

CASES = [
    ("delta", {}),
    ("elman_tanh", {"activation": "tanh"}),
    ("elman_sigmoid", {"activation": "sigmoid"}),
    ("elman_relu", {"activation": "relu"}),
    ("lstm_tied", {"tied": True}),
    ("lstm_untied", {"tied": False}),
    ("gru_tied", {"tied": True}),
    ("gru_untied", {"tied": False}),
    ("mlp_tanh", {"activation": "tanh"}),
    ("mlp_relu", {"activation": "relu"}),
]


def make(case, units=N, **kwargs):
  name = case.split("_")[0]
  options = dict(CASES)[case]
  return cells.CELLS[name](units=units, **options, **kwargs), name, options


def randomize(cell, rng, scale=0.6):
  for v in cell.step_variables:
    v.assign(rng.normal(0, scale, v.shape).astype(v.dtype.as_numpy_dtype))


def random_states(cell, batch, rng):
  return tuple(rng.uniform(-1, 1, (batch, n)) for n in cell.state_size)


class BFloat16RoundingTest(tf.test.TestCase):

  def test_tf_rounds_one_of_the_two_known_ways(self):
    r = cells.bfloat16_matmul_rounding(32, 64, 48)
    self.assertEqual(r["products"], 32 * 48)
    # to nearest (AVX512-BF16) or by truncation (other CPUs), nothing else
    nearest, truncated = 1.0 - r["off_nearest"], r["truncated"]
    self.assertGreater(max(nearest, truncated), 0.99, msg=r)
    # and the two are told apart: about half the products differ
    self.assertLess(min(nearest, truncated), 0.9, msg=r)


class CellEquationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_matches_numpy_float32(self, case):
    rng = np.random.default_rng(1)
    cell, name, options = make(case)
    randomize(cell, rng)
    e = rng.normal(0, 1, (5, cell.input_size))
    states = random_states(cell, 5, rng)
    ref_states = states
    tf_states = tuple(tf.constant(s, tf.float32) for s in states)
    w = [v.numpy().astype(np.float64) for v in cell.step_variables]
    for _ in range(3):  # three steps: the recursion too
      ref_s, ref_states = REFERENCES[name](e, ref_states, w, **options)
      s, tf_states = cell(tf.constant(e, tf.float32), tf_states)
      self.assertEqual(s.dtype, tf.float32)
      self.assertLessEqual(np.abs(s.numpy() - ref_s).max(), 1e-5)
      for got, want in zip(tf_states, ref_states):
        self.assertLessEqual(np.abs(got.numpy() - want).max(), 1e-5)

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_float64_honoured(self, case):
    rng = np.random.default_rng(2)
    cell, name, options = make(case, dtype="float64")
    for v in cell.weights:
      self.assertEqual(v.dtype, tf.float64)
    randomize(cell, rng)
    e = rng.normal(0, 1, (4, cell.input_size))
    states = random_states(cell, 4, rng)
    w = [v.numpy() for v in cell.step_variables]
    ref_s, _ = REFERENCES[name](e, states, w, **options)
    s, new_states = cell.step(e, states, cell.step_variables)
    self.assertEqual(s.dtype, tf.float64)
    self.assertAllEqual([t.dtype for t in new_states],
                        [tf.float64] * len(new_states))
    self.assertLessEqual(np.abs(s.numpy() - ref_s).max(), 1e-12)

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_step_is_pure_in_params(self, case):
    """step() uses the params it is given, not the variables."""
    rng = np.random.default_rng(3)
    cell, name, options = make(case, dtype="float64")
    randomize(cell, rng)
    params = [rng.normal(0, 0.6, v.shape) for v in cell.step_variables]
    e = rng.normal(0, 1, (3, cell.input_size))
    states = random_states(cell, 3, rng)
    s, _ = cell.step(e, states, [tf.constant(p) for p in params])
    ref_s, _ = REFERENCES[name](e, states, params, **options)
    self.assertAllClose(s, ref_s, atol=1e-12)
    own, _ = cell.step(e, states, cell.step_variables)
    self.assertGreater(np.abs(own.numpy() - s.numpy()).max(), 1e-3)

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_param_gradient_matches_finite_difference(self, case):
    """d s / d params through the pure step (what RTRL/UORO differentiate)."""
    rng = np.random.default_rng(4)
    cell, _, _ = make(case, dtype="float64")
    params = [tf.constant(rng.normal(0, 0.6, v.shape))
              for v in cell.step_variables]
    e = tf.constant(rng.normal(0, 1, (2, cell.input_size)))
    states = tuple(tf.constant(s)
                   for s in random_states(cell, 2, rng))
    probe = rng.normal(0, 1, (2, cell.units))

    def objective(ps):
      s, new_states = cell.step(e, states, ps)
      return tf.reduce_sum(s * probe) + tf.reduce_sum(new_states[-1])

    with tf.GradientTape() as tape:
      tape.watch(params)
      value = objective(params)
    grads = tape.gradient(value, params)
    for idx, (p, g) in enumerate(zip(params, grads)):
      self.assertIsNotNone(g)
      flat = p.numpy().ravel()
      j = int(rng.integers(flat.size))
      eps = 1e-6
      bumped = []
      for sign in (1, -1):
        q = flat.copy()
        q[j] += sign * eps
        ps = list(params)
        ps[idx] = tf.constant(q.reshape(p.shape))
        bumped.append(objective(ps).numpy())
      fd = (bumped[0] - bumped[1]) / (2 * eps)
      self.assertAllClose(g.numpy().ravel()[j], fd, rtol=1e-5, atol=1e-7)

  def test_untied_lstm_with_repeated_input_equals_tied(self):
    rng = np.random.default_rng(5)
    tied = cells.LSTMCell(units=N, tied=True)
    untied = cells.LSTMCell(units=N, tied=False)
    for a, b in zip(tied.step_variables, untied.step_variables):
      b.assign(a)
    e = rng.normal(0, 1, (3, N)).astype(np.float32)
    states = tied.zero_states(3)
    s1, _ = tied(e, states)
    s2, _ = untied(np.tile(e, [1, 4]), states)
    self.assertAllClose(s1, s2, atol=1e-6)
    self.assertEqual(untied.input_size, 4 * N)
    self.assertEqual(cells.GRUCell(units=N, tied=False).input_size, 3 * N)

  def test_untied_gates_use_their_own_input(self):
    rng = np.random.default_rng(6)
    cell = cells.LSTMCell(units=N, tied=False)
    randomize(cell, rng)
    e = rng.normal(0, 1, (2, 4 * N)).astype(np.float32)
    states = tuple(tf.constant(s, tf.float32)
                   for s in random_states(cell, 2, rng))
    base, _ = cell(e, states)
    for gate in range(4):
      e2 = e.copy()
      e2[:, gate * N:(gate + 1) * N] += 1.0
      moved, _ = cell(e2, states)
      self.assertGreater(np.abs(moved.numpy() - base.numpy()).max(), 1e-4)

  def test_mlp_ignores_state(self):
    rng = np.random.default_rng(7)
    cell = cells.MLPCell(units=N)
    e = rng.normal(0, 1, (2, N)).astype(np.float32)
    s1, st1 = cell(e, [tf.zeros([2, N])])
    s2, _ = cell(e, [tf.ones([2, N])])
    self.assertAllEqual(s1, s2)
    self.assertAllEqual(st1[0], s1)
    self.assertEqual(cell.state_size, [N])


class CellInterfaceTest(tf.test.TestCase, parameterized.TestCase):

  def test_registry(self):
    self.assertCountEqual(cells.CELLS, ["lstm", "gru", "delta", "elman",
                                        "mlp"])
    self.assertIs(cells.get_cell("lstm"), cells.LSTMCell)
    with self.assertRaisesRegex(ValueError, "unknown cell"):
      cells.get_cell("transformer")
    with self.assertRaisesRegex(ValueError, "registered twice"):
      cells.register_cell("lstm")(type("X", (cells.StateCell,), {}))

  @parameterized.named_parameters(
      ("delta", "delta", 1, ["V", "b", "b_r", "alpha", "beta1", "beta2"]),
      ("elman", "elman", 1, ["V", "b"]),
      ("lstm", "lstm", 2, ["V", "b"]),
      ("gru", "gru", 1, ["V_zr", "b_zr", "V_s", "b_s"]),
      ("mlp", "mlp", 1, ["b"]))
  def test_sizes_and_variable_order(self, name, n_states, var_names):
    cell = cells.CELLS[name](units=N)
    self.assertEqual(cell.state_size, [N] * n_states)
    self.assertEqual(cell.output_size, N)
    self.assertEqual(len(cell.state_names), n_states)
    got = [v.name.split("/")[-1].split(":")[0] for v in cell.step_variables]
    self.assertEqual(got, var_names)
    init = cell.get_initial_state(batch_size=3)
    self.assertLen(init, n_states)
    for t in init:
      self.assertAllEqual(t, np.zeros((3, N)))

  def test_initialisation(self):
    cell = cells.GRUCell(units=64, seed=3)
    v_zr, b_zr, v_s, b_s = [v.numpy() for v in cell.step_variables]
    for m in (v_zr, v_s):
      self.assertLessEqual(np.abs(m).max(), cells.INIT_SCALE)
      self.assertGreater(np.abs(m).max(), 0.9 * cells.INIT_SCALE)
    self.assertFalse(np.allclose(v_zr[:, :64], v_s))
    self.assertAllEqual(b_zr, np.zeros(128))
    self.assertAllEqual(b_s, np.zeros(64))
    delta = cells.DeltaRNNCell(units=4)
    self.assertAllEqual(delta.step_variables[3], np.ones(4))  # alpha
    # Same seed: same weights in float32 and float64; other seed: different.
    c64 = cells.GRUCell(units=64, seed=3, dtype="float64")
    self.assertAllClose(c64.step_variables[0], v_zr, atol=1e-8)
    other = cells.GRUCell(units=64, seed=4)
    self.assertFalse(np.allclose(other.step_variables[0], v_zr))

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_config_round_trip(self, case):
    cell, _, _ = make(case, seed=11, dtype="float64")
    config = cell.get_config()
    clone = type(cell).from_config(config)
    self.assertEqual(clone.get_config(), config)
    for a, b in zip(cell.step_variables, clone.step_variables):
      self.assertAllEqual(a, b)
      self.assertEqual(b.dtype, tf.float64)
    via_keras = tf.keras.layers.deserialize(
        tf.keras.layers.serialize(cell))
    self.assertIsInstance(via_keras, type(cell))
    self.assertEqual(via_keras.get_config(), config)

  @parameterized.named_parameters(*[(c, c) for c, _ in CASES])
  def test_keras_rnn(self, case):
    self._check_keras_rnn(case, save=False)

  # One SavedModel round trip per cell class (saving is slow on shared CPUs;
  # tf_hbd/model/decoder_test.py also saves a decoder around every cell).
  @parameterized.named_parameters(
      *[(c, c) for c in ("delta", "elman_relu", "lstm_untied", "gru_tied",
                         "mlp_tanh")])
  def test_saved_model(self, case):
    self._check_keras_rnn(case, save=True)

  def _check_keras_rnn(self, case, save):
    rng = np.random.default_rng(8)
    cell, _, _ = make(case, units=4)
    randomize(cell, rng)
    steps = 3
    inputs = tf.keras.Input((steps, cell.input_size))
    model = tf.keras.Model(
        inputs, tf.keras.layers.RNN(cell, return_sequences=True)(inputs))
    e = rng.normal(0, 1, (2, cell.input_size)).astype(np.float32)
    seq = np.repeat(e[:, None], steps, axis=1)
    out = model(seq).numpy()
    states = cell.zero_states(2)
    manual = []
    for _ in range(steps):
      s, states = cell.step(e, states, cell.step_variables)
      manual.append(s.numpy())
    self.assertAllClose(out, np.stack(manual, 1), atol=1e-6)
    if not save:
      return
    path = os.path.join(self.get_temp_dir(), case)
    model.save(path, save_format="tf")
    loaded = tf.keras.models.load_model(path, compile=False)
    self.assertAllClose(loaded(seq), out, atol=1e-7)
    self.assertIsInstance(loaded.layers[-1].cell, type(cell))

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "activation"):
      cells.ElmanCell(units=3, activation="softplus")
    with self.assertRaisesRegex(ValueError, "units"):
      cells.LSTMCell(units=0)
    cell = cells.LSTMCell(units=3)
    with self.assertRaisesRegex(ValueError, "params"):
      cell.step(tf.zeros([1, 3]), cell.zero_states(1), [])
    with self.assertRaisesRegex(ValueError, "state tensors"):
      cell.step(tf.zeros([1, 3]), (tf.zeros([1, 3]),), cell.step_variables)


class OutputStateTest(tf.test.TestCase):

  def test_output_state_indices(self):
    # The LSTM's output is its state s (its other state is c); the SNE's
    # cell outputs [s_a, s_b].
    from tf_hbd.model import decoder  # pylint: disable=g-import-not-at-top
    lstm = decoder.build_decoder("lstm", units=3, patch_size=2, K=2)
    sne = decoder.build_decoder("lstm", units=3, patch_size=2, K=2, sne=True)
    self.assertEqual(cells.output_state_indices(lstm.cell), [0])
    self.assertEqual(cells.output_state_indices(sne.cell), [0, 2])
    gru = cells.get_cell("gru")(units=2)
    self.assertEqual(cells.output_state_indices(gru), [0])
    with self.assertRaisesRegex(ValueError, "cannot find the output state"):
      cells.output_state_indices(type("C", (), {"state_names": ("c",)})())


if __name__ == "__main__":
  tf.test.main()
