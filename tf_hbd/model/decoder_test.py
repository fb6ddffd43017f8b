"""Tests of tf_hbd.model.decoder (HybridDecoder, SNE, export)."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import cells
from tf_hbd.model import decoder

D = 4      # patch size in most tests
UNITS = 8


def inputs(batch=5, d=D, seed=0, dtype=np.float32, position=None):
  rng = np.random.default_rng(seed)
  context = rng.uniform(0, 1, (batch, 9, d, d)).astype(dtype)
  if position is None:
    position = rng.integers(0, 9, batch)
  return {"context": context, "position": np.asarray(position, np.int32)}


def randomize(model, seed=0, scale=0.3):
  rng = np.random.default_rng(seed)
  for v in model.trainable_variables:
    v.assign(rng.normal(0, scale, v.shape).astype(v.dtype.as_numpy_dtype))


def small(**kwargs):
  kwargs.setdefault("units", UNITS)
  kwargs.setdefault("patch_size", D)
  return decoder.build_decoder(**kwargs)


def np_reference(model, x, K):
  """The estimator of section 2 in NumPy: e, K cell steps, U s + c."""
  w = [v.numpy().astype(np.float64) for v in model.embed_variables]
  u, c = [v.numpy().astype(np.float64) for v in model.readout_variables]
  b = x["context"].shape[0]
  q = x["context"].reshape(b, 9, -1).astype(np.float64)
  d2 = q.shape[-1]
  w_blocks = w[0].reshape(9, d2, -1)  # W_1 .. W_9
  e = sum(q[:, j] @ w_blocks[j] for j in range(9))
  if model.use_position:
    e = e + w[-1][x["position"]]
  states = model.initial_state(b)
  outs = []
  for _ in range(K):
    s, states = model.cell.step(e, states, model.step_variables)
    p = s.numpy() @ u + c
    if model.residual:
      p = p + q[np.arange(b), x["position"]]
    outs.append(p)
  return np.stack(outs, 1)


class HybridDecoderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("plain", False, False), ("position", True, False),
      ("residual", False, True), ("both", True, True))
  def test_matches_equations(self, use_position, residual):
    model = small(use_position=use_position, residual=residual)
    randomize(model)
    x = inputs()
    got = model(x, K=3).numpy()
    self.assertEqual(got.shape, (5, 3, D * D))
    self.assertLessEqual(np.abs(got - np_reference(model, x, 3)).max(), 1e-5)

  def test_k_outputs_and_dynamic_k(self):
    model = small(K=4)
    x = inputs()
    self.assertEqual(model(x).shape, (5, 4, D * D))
    for k in (1, 2, 6):
      static = model(x, K=k)
      self.assertEqual(static.shape, (5, k, D * D))
      dynamic = model.unroll(x["context"], x["position"], tf.constant(k))
      self.assertAllClose(static, dynamic, atol=1e-7)
      last = model.predict_last(x["context"], x["position"], tf.constant(k))
      self.assertAllClose(static[:, -1], last, atol=1e-7)
      self.assertAllClose(
          static[:, -1], model.predict_last(x["context"], x["position"], k))
    # The steps differ (the state evolves) but the first k agree.
    five = model(x, K=5).numpy()
    self.assertAllClose(five[:, :2], model(x, K=2), atol=1e-7)
    self.assertGreater(np.abs(five[:, 0] - five[:, 4]).max(), 1e-4)
    with self.assertRaisesRegex(ValueError, "K must be"):
      model(x, K=0)

  def test_flat_context_accepted(self):
    model = small()
    x = inputs()
    flat = dict(x, context=x["context"].reshape(5, 9, D * D))
    self.assertAllClose(model(x), model(flat))
    self.assertAllClose(model(x), model((x["context"], x["position"])))

  def test_residual_adds_decoded_target(self):
    x = inputs()
    with_res = small(residual=True, seed=4)
    without = small(residual=False, seed=4)
    diff = with_res(x, K=2).numpy() - without(x, K=2).numpy()
    own = x["context"][np.arange(5), x["position"]].reshape(5, 1, D * D)
    self.assertAllClose(diff, np.broadcast_to(own, diff.shape), atol=1e-6)

  @parameterized.named_parameters(
      *[(f"{c}_{sne}", c, sne) for c in cells.CELLS for sne in (False, True)])
  def test_zero_readout_residual_is_identity(self, cell, sne):
    model = small(cell=cell, residual=True, sne=sne)
    randomize(model)
    for v in model.readout_variables:
      v.assign(tf.zeros_like(v))
    x = inputs()
    own = x["context"][np.arange(5), x["position"]].reshape(5, D * D)
    out = model(x, K=3).numpy()
    for k in range(3):
      self.assertAllEqual(out[:, k], own)

  def test_position_acts_through_e_only(self):
    x = inputs(position=[0] * 5)
    y = dict(x, position=np.full(5, 7, np.int32))
    model = small(use_position=True, residual=False)
    randomize(model)
    e_x = model.embed(x["context"], x["position"])
    e_y = model.embed(y["context"], y["position"])
    p_table = model.embed_variables[-1].numpy()
    self.assertAllClose(e_y - e_x, np.tile(p_table[7] - p_table[0], (5, 1)),
                        atol=1e-5)
    self.assertGreater(np.abs(model(x).numpy() - model(y).numpy()).max(), 1e-4)
    blind = small(use_position=False, residual=False)
    self.assertAllEqual(blind(x), blind(y))
    self.assertLen(blind.embed_variables, 1)
    # Without the position input, the residual still picks the target.
    res_only = small(use_position=False, residual=True)
    diff = res_only(y).numpy() - res_only(x).numpy()
    moved = (x["context"][:, 7] - x["context"][:, 0]).reshape(5, 1, D * D)
    self.assertAllClose(diff, np.broadcast_to(moved, diff.shape), atol=1e-6)

  def test_embed_bias_option(self):
    model = small(embed_bias=True, use_position=False)
    self.assertLen(model.embed_variables, 2)
    x = inputs()
    e0 = model.embed(x["context"], x["position"]).numpy()
    model.embed_variables[1].assign(tf.ones_like(model.embed_variables[1]))
    self.assertAllClose(model.embed(x["context"], x["position"]) - e0,
                        np.ones_like(e0), atol=1e-6)

  def test_explicit_params_and_gradients(self):
    model = small(dtype="float64")
    randomize(model)
    x = inputs(dtype=np.float64)
    target = np.random.default_rng(1).uniform(0, 1, (5, D * D))
    ep = [tf.identity(v) for v in model.embed_variables]
    sp = [tf.identity(v) for v in model.step_variables]
    rp = [tf.identity(v) for v in model.readout_variables]
    with tf.GradientTape() as tape:
      tape.watch(ep + sp + rp)
      out = model.unroll(x["context"], x["position"], 3, ep, sp, rp)
      loss = tf.reduce_sum((out - target[:, None]) ** 2)
    g_params = tape.gradient(loss, ep + sp + rp)
    with tf.GradientTape() as tape:
      loss2 = tf.reduce_sum((model(x, K=3) - target[:, None]) ** 2)
    g_vars = tape.gradient(loss2, model.param_variables)
    self.assertAllClose(loss, loss2)
    for a, b in zip(g_params, g_vars):
      self.assertAllClose(a, b, atol=1e-12)
    # Substituted params change the result; pieces compose to unroll.
    e = model.embed(x["context"], x["position"], [2 * p for p in ep])
    states = model.initial_state(5)
    s, states = model.step(e, states, sp)
    p = model.readout(s, x["context"], x["position"], rp)
    full = model.unroll(x["context"], x["position"], 1,
                        [2 * p for p in ep], sp, rp)
    self.assertAllClose(p, full[:, 0], atol=1e-12)
    self.assertGreater(np.abs(full.numpy() - out.numpy()[:, :1]).max(), 1e-4)
    with self.assertRaisesRegex(ValueError, "embed expects"):
      model.embed(x["context"], x["position"], ep[:1] + ep)

  def test_float64(self):
    model = small(dtype="float64", cell="gru")
    for v in model.weights:
      self.assertEqual(v.dtype, tf.float64)
    out = model(inputs())
    self.assertEqual(out.dtype, tf.float64)
    m32 = small(dtype="float32", cell="gru")
    self.assertAllClose(m32(inputs()), out, atol=1e-5)

  def test_defaults_and_init(self):
    model = decoder.build_decoder(patch_size=8)
    self.assertEqual((model.units, model.K, model.cell_type), (512, 4, "lstm"))
    self.assertTrue(model.use_position and model.residual)
    self.assertEqual(model.boundary, "paper")
    w = model.embed_variables[0].numpy()
    self.assertLessEqual(np.abs(w).max(), 0.054)
    self.assertGreater(np.abs(w).max(), 0.05)
    again = decoder.build_decoder(patch_size=8)
    self.assertAllEqual(again.readout_variables[0], model.readout_variables[0])

  @parameterized.named_parameters(
      ("lstm", "lstm", {}, 4 * 512 * 512 + 4 * 512),
      ("lstm_untied", "lstm", {"tied": False}, 4 * 512 * 512 + 4 * 512),
      ("gru", "gru", {}, 3 * 512 * 512 + 3 * 512),
      ("delta", "delta", {}, 512 * 512 + 5 * 512),
      ("elman", "elman", {}, 512 * 512 + 512),
      ("mlp", "mlp", {}, 512))
  def test_param_counts(self, cell, options, cell_params):
    model = decoder.build_decoder(cell=cell, patch_size=8,
                                  cell_options=options)
    m = 512 * (4 if options.get("tied") is False else 1)
    counts = decoder.param_counts(model)
    self.assertEqual(counts["embed"], 9 * 64 * m + 9 * m)
    self.assertEqual(counts["cell"], cell_params)
    self.assertEqual(counts["readout"], 512 * 64 + 64)
    self.assertEqual(counts["total"],
                     sum(int(np.prod(v.shape))
                         for v in model.trainable_variables))

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, "unknown cell"):
      small(cell="rnn")
    with self.assertRaisesRegex(ValueError, "boundary"):
      small(boundary="zero")
    with self.assertRaisesRegex(ValueError, "K must"):
      small(K=0)


class SiblingDecoderTest(tf.test.TestCase, parameterized.TestCase):

  def test_shapes_and_interface(self):
    model = small(sne=True)
    self.assertIsInstance(model, decoder.SiblingDecoder)
    x = inputs()
    self.assertEqual(model(x, K=3).shape, (5, 3, D * D))
    e = model.embed(x["context"], x["position"])
    self.assertEqual(e.shape, (5, 2 * UNITS))
    states = model.initial_state(5)
    self.assertLen(states, 4)  # (s, c) of each LSTM sibling
    s, states = model.step(e, states)
    self.assertEqual(s.shape, (5, 2 * UNITS))
    self.assertEqual(len(model.step_variables), 2 + 2 + 2)
    self.assertLen(model.readout_variables, 5)

  def test_siblings_see_complementary_halves(self):
    model = small(sne=True)
    randomize(model)
    x = inputs(position=[4, 0, 8, 3, 5])
    e = model.embed(x["context"], x["position"]).numpy()
    for b, pos in enumerate(x["position"]):
      for j in range(9):
        ctx = x["context"].copy()
        ctx[b, j] += 0.5
        e2 = model.embed(ctx, x["position"]).numpy()
        moved_a = np.abs(e2[b, :UNITS] - e[b, :UNITS]).max() > 1e-6
        moved_b = np.abs(e2[b, UNITS:] - e[b, UNITS:]).max() > 1e-6
        self.assertEqual(moved_a, j <= pos, (b, j))
        self.assertEqual(moved_b, j >= pos, (b, j))

  def test_fusion_matches_formula(self):
    model = small(sne=True)
    randomize(model)
    x = inputs()
    e = model.embed(x["context"], x["position"])
    s, _ = model.step(e, model.initial_state(5))
    p_a, p_b = model.sibling_readouts(s, x["context"], x["position"])
    g = 1 / (1 + np.exp(-model.readout_variables[4].numpy()))
    fused = model.readout(s, x["context"], x["position"])
    self.assertAllClose(fused, g * p_a + (1 - g) * p_b, atol=1e-6)
    self.assertAllClose(fused, model(x, K=1)[:, 0], atol=1e-6)

  @parameterized.named_parameters(("coupled", True), ("uncoupled", False))
  def test_gradient_communication(self, coupling):
    """The causal sibling's loss reaches the non-causal sibling's cell."""
    model = small(sne=True, coupling=coupling, dtype="float64")
    randomize(model)
    x = inputs(dtype=np.float64)
    with tf.GradientTape() as tape:
      e = model.embed(x["context"], x["position"])
      states = model.initial_state(5)
      for _ in range(3):
        s, states = model.step(e, states)
      p_a, _ = model.sibling_readouts(s, x["context"], x["position"])
      loss = tf.reduce_sum(p_a ** 2)
    noncausal = model.cell.noncausal.step_variables
    grads = tape.gradient(loss, noncausal)
    if coupling:
      self.assertGreater(max(float(tf.reduce_max(tf.abs(g)))
                             for g in grads), 1e-6)
    else:  # no path: None, or zeros through the split of s = [s_a, s_b]
      for g in grads:
        self.assertTrue(g is None or not np.any(g.numpy()))

  def test_sne_param_count(self):
    single = decoder.param_counts(small())
    pair = decoder.param_counts(small(sne=True))
    self.assertEqual(pair["embed"], 2 * single["embed"])
    self.assertEqual(pair["cell"], 2 * single["cell"] + 2 * UNITS * UNITS)
    self.assertEqual(pair["readout"], 2 * single["readout"] + D * D)


class SerializationTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(("single", False), ("sne", True))
  def test_config_round_trip(self, sne):
    model = small(sne=sne, cell="gru", K=3, use_position=False,
                  embed_bias=True, boundary="replicate",
                  cell_options={"tied": False}, seed=9, dtype="float64")
    config = model.get_config()
    clone = type(model).from_config(config)
    self.assertEqual(clone.get_config(), config)
    x = inputs()
    self.assertAllEqual(clone(x), model(x))
    via_keras = tf.keras.utils.deserialize_keras_object(
        tf.keras.utils.serialize_keras_object(model))
    self.assertIsInstance(via_keras, type(model))
    self.assertEqual(via_keras.get_config(), config)

  @parameterized.named_parameters(
      *[(c, c, False) for c in cells.CELLS], ("sne_lstm", "lstm", True))
  def test_saved_model_round_trip(self, cell, sne):
    model = small(cell=cell, sne=sne, K=3)
    randomize(model, seed=5)  # so that loading must restore the weights
    x = inputs()
    path = os.path.join(self.get_temp_dir(), f"{cell}_{sne}")
    decoder.export_saved_model(model, path)
    loaded = decoder.load_decoder(path)
    self.assertIsInstance(loaded, type(model))
    self.assertEqual(loaded.get_config(), model.get_config())
    for k in (3, 5):
      self.assertAllClose(loaded(x, K=k), model(x, K=k), atol=1e-7)
    raw = tf.saved_model.load(path)
    serve = raw.signatures["serving_default"]
    for k in (1, 5):
      out = serve(context=tf.constant(x["context"]),
                  position=tf.constant(x["position"]), K=tf.constant(k))
      self.assertAllClose(out["reconstructions"], model(x, K=k), atol=1e-6)
      self.assertAllClose(out["refined"], model(x, K=k)[:, -1], atol=1e-6)


if __name__ == "__main__":
  tf.test.main()


class CenterInputsTest(tf.test.TestCase):

  def test_centering_shifts_e_by_a_constant(self):
    plain = decoder.build_decoder("elman", units=6, patch_size=2, K=1,
                                  use_position=False, seed=1)
    centred = decoder.build_decoder("elman", units=6, patch_size=2, K=1,
                                    use_position=False, seed=1,
                                    center_inputs=True)
    ctx = tf.random.uniform([3, 9, 2, 2], seed=2)
    pos = tf.constant([0, 4, 8])
    w = plain.embed_variables[0]
    want = plain.embed(ctx, pos) - 0.5 * tf.reduce_sum(w, axis=0)[None]
    self.assertAllClose(centred.embed(ctx, pos), want, atol=1e-5)
    self.assertTrue(centred.get_config()["center_inputs"])
    again = decoder.HybridDecoder.from_config(centred.get_config())
    self.assertTrue(again.center_inputs)


class SettingAndPrecisionTest(tf.test.TestCase):
  """The codec-setting input and bfloat16 matrix products."""

  def test_setting_input_starts_inert_and_then_acts_through_e(self):
    m = small(setting_size=3)
    x = inputs()
    setting = np.random.default_rng(1).uniform(0, 1, (5, 3)).astype(
        np.float32)
    plain = small()
    for a, b in zip(plain.param_variables, [v for v in m.param_variables
                                            if "S" not in v.name.split("/")[
                                                -1][:1]]):
      b.assign(a)
    # S starts at zero: the output is the plain decoder's.
    self.assertAllClose(m(dict(x, setting=setting), K=2), plain(x, K=2))
    s_var = m.embed_variables[-1]
    self.assertEqual(s_var.shape, (3, m.embed_size))
    s_var.assign(np.ones(s_var.shape, np.float32))
    moved = m(dict(x, setting=setting), K=2)
    self.assertGreater(float(tf.reduce_max(tf.abs(moved - plain(x, K=2)))),
                       1e-3)
    # e gains exactly setting @ S.
    e0 = plain.embed(x["context"], x["position"])
    e1 = m.embed(x["context"], x["position"], setting=setting)
    self.assertAllClose(e1 - e0, setting @ s_var.numpy(), atol=1e-5)

  def test_setting_required_and_serialised(self):
    m = small(setting_size=2)
    with self.assertRaisesRegex(ValueError, "codec setting of length 2"):
      m(inputs(), K=1)
    self.assertEqual(m.get_config()["setting_size"], 2)
    clone = decoder.HybridDecoder.from_config(m.get_config())
    self.assertEqual(clone.setting_size, 2)
    x = inputs()
    x["setting"] = np.zeros((5, 2), np.float32)
    path = os.path.join(self.get_temp_dir(), "m")
    decoder.export_saved_model(m, path)
    loaded = decoder.load_decoder(path)
    self.assertAllClose(loaded(x, K=2), m(x, K=2))
    sig = tf.saved_model.load(path).signatures["serving_default"]
    out = sig(context=tf.constant(x["context"]),
              position=tf.constant(x["position"]), K=tf.constant(2),
              setting=tf.constant(x["setting"]))
    self.assertAllClose(out["reconstructions"], m(x, K=2))

  def test_bfloat16_products_stay_close_to_float32(self):
    for cell in ("lstm", "gru", "delta", "elman"):
      m32 = small(cell=cell)
      randomize(m32, scale=0.1)
      m16 = small(cell=cell, matmul_dtype="bfloat16")
      for a, b in zip(m32.param_variables, m16.param_variables):
        b.assign(a)
      x = inputs()
      out32, out16 = m32(x, K=3), m16(x, K=3)
      self.assertEqual(out16.dtype, tf.float32)
      err = float(tf.reduce_max(tf.abs(out32 - out16)))
      self.assertLess(err, 0.05, cell)
      self.assertGreater(err, 0.0, cell)  # really computed in bfloat16
      self.assertEqual(m16.get_config()["matmul_dtype"], "bfloat16")
      self.assertEqual(m16.cell.get_config()["matmul_dtype"], "bfloat16")


class WarmStartTest(tf.test.TestCase):

  def test_copies_by_name_and_keeps_new_variables(self):
    src = small()
    randomize(src, seed=3)
    path = os.path.join(self.get_temp_dir(), "src")
    decoder.export_saved_model(src, path)
    dst = small(setting_size=4, seed=9)
    copied, kept = decoder.warm_start(dst, path)
    self.assertIn("S", kept)
    self.assertEqual(sorted(copied), sorted(
        decoder._short_name(v) for v in src.trainable_variables))  # pylint: disable=protected-access
    x = inputs()
    x["setting"] = np.ones((5, 4), np.float32)
    self.assertAllClose(dst(x, K=2), src(x, K=2))  # S is still zero
    with self.assertRaisesRegex(ValueError, "has shape"):
      decoder.warm_start(small(units=UNITS + 1), path)
