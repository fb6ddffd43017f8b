"""Proofs of SAB's learning algorithm: the gradient without truncation equals
plain autodiff; the truncated gradient equals an independently written
reverse pass over the step graph (the forward pass: sab_decoder_test)."""

import os

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import decoder as decoder_lib
from tf_hbd.model import losses
from tf_hbd.model import sab_decoder
from tf_hbd.inference import refine
from tf_hbd.training.algorithms import sab
from tf_hbd.training.algorithms import testing_utils as tu


def _sab_model(cell="lstm", k_top=2, k_attn=1, units=3, K=4, sne=False):
  base = tu.small_decoder(cell, units=units, K=K, sne=sne)
  return sab_decoder.SABDecoder(base, k_top=k_top, k_attn=k_attn, seed=1)


def _reference_summary(h, mem, params, k_top):
  """The attention summary of SAB, written here again (score MLP, sparsifier
  keeping the k_top largest, weighted sum of the memories)."""
  wq, wm, b, v = params
  hid = tf.math.tanh(tf.matmul(h, wq)[:, None, :]
                     + tf.einsum("bmn,na->bma", mem, wm) + b)
  scores = tf.einsum("bma,a->bm", hid, v)
  if scores.shape[1] > k_top:
    tau = tf.sort(scores, direction="DESCENDING")[:, k_top:k_top + 1]
  else:
    tau = tf.reduce_min(scores, axis=1, keepdims=True) - 1.0
  w = tf.nn.relu(scores - tau)
  w = w / (tf.reduce_sum(w, axis=1, keepdims=True) + 1e-7)
  return tf.einsum("bm,bmn->bn", w, mem)


def _vjp(fn, inputs, cotangent):
  """The vector-Jacobian product of `fn` at `inputs` (zeros where
  unconnected)."""
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    out = fn(*inputs)
  return tape.gradient(out, inputs, output_gradients=cotangent,
                       unconnected_gradients="zero")


def reference_gradients(model, batch, K, k_trunc):
  """The truncated SAB gradient by an explicit reverse pass.

  Forward values are recomputed step by step; the backward pass propagates
  adjoints by vector-Jacobian products of the local pieces (embed, one cell
  step, the attention summary written here again, readout, step loss). The
  recurrent edge (s_{k-1}, c_{k-1}) -> step k is dropped when k > 1 and
  (k - 1) % k_trunc == 0; memory edges are never dropped.
  """
  base = model.base
  cell = base.cell
  ctx, pos, target = batch["context"], batch["position"], batch["target"]
  th_t = base.embed_variables
  th_s = cell.step_variables
  th_d = base.readout_variables
  th_a = model.attention_variables

  summary = lambda h, mem, params: _reference_summary(h, mem, params,
                                                      model.k_top)
  # Forward, keeping every intermediate value.
  e = base.embed(ctx, pos)
  states = tuple(base.initial_state(tf.shape(e)[0]))
  mem_ids = [0]  # memory entries as indices of s_j (s_0 first)
  s_vals = {0: states[0]}
  st_vals = {0: states}
  h_vals, mems_at = {}, {}
  for k in range(1, K + 1):
    h, new = cell.step(e, st_vals[k - 1], th_s)
    mems_at[k] = list(mem_ids)
    mem = tf.stack([s_vals[j] for j in mem_ids], axis=1)
    s = h + summary(h, mem, th_a)
    h_vals[k] = h
    s_vals[k] = s
    st_vals[k] = (s,) + tuple(new[1:])
    if k % model.k_attn == 0:
      mem_ids.append(k)

  zeros = lambda vs: [tf.zeros_like(v) for v in vs]
  g_t, g_s, g_d, g_a = zeros(th_t), zeros(th_s), zeros(th_d), zeros(th_a)
  d_e = tf.zeros_like(e)
  d_states = {k: [tf.zeros_like(t) for t in st_vals[k]]
              for k in range(K + 1)}
  for k in range(K, 0, -1):
    # Loss term l_k through the readout.
    d_sk, *d_rd = _vjp(
        lambda s_, *p: losses.distortion_terms(
            target, base.readout(s_, ctx, pos, list(p))[:, None])[0] / K,
        [s_vals[k]] + th_d, tf.constant(1.0, tf.float64))
    g_d = [a + b for a, b in zip(g_d, d_rd)]
    d_states[k][0] = d_states[k][0] + d_sk
    # s_k = h_k + summary(h_k, memory; theta_a).
    mem = tf.stack([s_vals[j] for j in mems_at[k]], axis=1)
    d_h, d_mem, *d_at = _vjp(lambda h_, m_, *p: h_ + summary(h_, m_, list(p)),
                            [h_vals[k], mem] + th_a, d_states[k][0])
    g_a = [a + b for a, b in zip(g_a, d_at)]
    for i, j in enumerate(mems_at[k]):
      d_states[j][0] = d_states[j][0] + d_mem[:, i]
    # (h_k, rest of the state) = F(e, states_{k-1}; theta_s).
    cut = k > 1 and (k - 1) % k_trunc == 0
    prev = list(st_vals[k - 1])
    cot = [d_h] + list(d_states[k][1:])

    def step(e_, *args):
      st = args[:len(prev)]
      h_, new_ = cell.step(e_, tuple(st), list(args[len(prev):]))
      return [h_] + list(new_[1:])

    grads = _vjp(step, [e] + prev + th_s, cot)
    d_e = d_e + grads[0]
    if not cut:
      for i in range(len(prev)):
        d_states[k - 1][i] = d_states[k - 1][i] + grads[1 + i]
    g_s = [a + b for a, b in zip(g_s, grads[1 + len(prev):])]
  g_t = _vjp(lambda *p: base.embed(ctx, pos, list(p)), th_t, d_e)
  return tu.by_variable(th_t + th_s + th_d + th_a, g_t + g_s + g_d + g_a)


class SABTest(tf.test.TestCase, parameterized.TestCase):

  def test_reference_readout_reads_state_and_summary(self):
    # The reference code's fc([s_k; summary_k]): our base readout plus
    # summary_k U_attn; the state path is unchanged.
    base = tu.small_decoder("lstm", units=3, K=4)
    plain = sab_decoder.SABDecoder(base, k_top=2, k_attn=1)
    ref = sab_decoder.SABDecoder(base, k_top=2, k_attn=1, readout="reference")
    batch = tu.random_batch()
    ctx, pos = batch["context"], batch["position"]
    e = base.embed(ctx, pos)
    states = tuple(base.initial_state(3))
    memory = ref._store(tf.zeros([3, 0, 3], tf.float64),  # pylint: disable=protected-access
                        tf.zeros([3, 0, 3], tf.float64),
                        tf.zeros([3, 3], tf.float64))
    (u_attn,) = [v for v in ref.trainable_variables if "attn_U" in v.name]
    outs = []
    for k in range(1, 5):
      h, _ = base.cell.step(e, states, base.step_variables)
      s, states, memory, summary = ref.sab_step(k, e, states, memory)
      if k == 1:
        self.assertIsNone(summary)
        summary = tf.zeros_like(s)
      self.assertAllClose(s, h + summary, rtol=1e-12)
      outs.append(base.readout(s, ctx, pos) + summary @ u_attn)
    self.assertAllClose(ref(batch, K=4), tf.stack(outs, 1), rtol=1e-12)
    served = ref.serving_function()(ctx, pos, tf.constant(4))
    self.assertAllClose(served["reconstructions"], ref(batch, K=4),
                        rtol=1e-12)
    self.assertNotAllClose(plain(batch, K=4), ref(batch, K=4))
    again = sab_decoder.SABDecoder.from_config(ref.get_config())
    self.assertEqual(again.readout_mode, "reference")
    algo = sab.SAB(base, readout="reference")
    self.assertIn(u_attn.shape, [v.shape for v in algo.variables])
    with self.assertRaisesRegex(ValueError, "unknown SAB readout"):
      sab_decoder.SABDecoder(base, readout="concat")

  @parameterized.parameters(4, 7)
  def test_no_truncation_is_plain_autodiff(self, k_trunc):
    model = _sab_model(K=4)
    batch = tu.random_batch(seed=3)
    algo = sab.SAB(model, k_trunc=k_trunc)
    grads, _ = algo.gradients(batch)
    with tf.GradientTape() as tape:
      loss = losses.distortion(batch["target"], model(batch, K=4))
    expected = tape.gradient(loss, model.trainable_variables)
    err = tu.rel_error(tu.by_variable(model.trainable_variables, expected),
                       tu.by_variable(algo.variables, grads))
    self.assertLessEqual(err, 1e-12)

  @parameterized.parameters(
      dict(cell="lstm", k_trunc=1, k_attn=1, k_top=2),
      dict(cell="lstm", k_trunc=2, k_attn=1, k_top=2),
      dict(cell="lstm", k_trunc=3, k_attn=2, k_top=1),
      dict(cell="gru", k_trunc=2, k_attn=1, k_top=2),
  )
  def test_truncated_gradient_equals_reference(self, cell, k_trunc, k_attn,
                                               k_top):
    model = _sab_model(cell, k_top=k_top, k_attn=k_attn, K=4)
    batch = tu.random_batch(seed=5)
    algo = sab.SAB(model, k_trunc=k_trunc)
    grads, _ = algo.gradients(batch)
    actual = tu.by_variable(algo.variables, grads)
    expected = reference_gradients(model, batch, 4, k_trunc)
    self.assertLessEqual(tu.rel_error(expected, actual), 1e-10)
    # Truncation matters here: the full gradient is different.
    full = reference_gradients(model, batch, 4, k_trunc=4)
    self.assertGreater(tu.rel_error(full, actual), 1e-3)

  def test_serving_function_runs_the_attention(self):
    model = _sab_model(k_attn=2, K=4)
    batch = tu.random_batch(batch_size=4, d=2)
    served = model.serving_function()(batch["context"], batch["position"],
                                      tf.constant(3))
    self.assertAllClose(served["reconstructions"], model(batch, K=3),
                        rtol=1e-12)
    plain = model.base(batch, K=3)
    self.assertNotAllClose(plain, model(batch, K=3))

  def test_serving_function_passes_the_codec_setting(self):
    base = tu.small_decoder("lstm", units=3, K=3, setting_size=2)
    model = sab_decoder.SABDecoder(base, k_top=2, k_attn=1, seed=1)
    batch = tu.random_batch(batch_size=4, d=2)
    setting = tf.constant(np.random.default_rng(0).uniform(size=(4, 2)),
                          tf.float64)
    served = model.serving_function()(batch["context"], batch["position"],
                                      tf.constant(3), setting)
    want = model.unroll(batch["context"], batch["position"], 3,
                        setting=setting)
    self.assertAllClose(served["reconstructions"], want, rtol=1e-12)
    self.assertAllClose(
        model.predict_last(batch["context"], batch["position"], 3, setting),
        want[:, -1], rtol=1e-12)

  def test_refine_and_export_use_sab(self):
    base = decoder_lib.build_decoder("lstm", units=4, patch_size=8, K=3,
                                     seed=2)
    algo = sab.SAB(base)
    model = algo.model
    batch = tu.image_batch(size=24)
    img = np.random.default_rng(0).integers(0, 256, (20, 28), np.uint8)
    out = refine.refine(img, model)
    self.assertEqual(out.shape, img.shape)
    path = os.path.join(self.create_tempdir().full_path, "export")
    decoder_lib.export_saved_model(model, path)
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    got = loaded(context=batch["context"], position=batch["position"],
                 K=tf.constant(3))["reconstructions"]
    self.assertAllClose(got, model(batch, K=3), atol=1e-6)

  def test_sne_trains(self):
    model = _sab_model(sne=True, units=2)
    grads, metrics = sab.SAB(model).gradients(tu.random_batch())
    self.assertTrue(np.isfinite(metrics["loss"].numpy()))
    self.assertTrue(all(np.all(np.isfinite(g)) for g in grads))


if __name__ == "__main__":
  tf.test.main()
