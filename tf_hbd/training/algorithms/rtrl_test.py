"""Proofs of RTRL: exact gradients (vs BPTT) offline and per step online."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.model import losses
from tf_hbd.training.algorithms import bptt
from tf_hbd.training.algorithms import rtrl
from tf_hbd.training.algorithms import testing_utils as tu

CELLS = [
    ("lstm", "lstm", {}),
    ("lstm_untied", "lstm", {"cell_options": {"tied": False}}),
    ("gru", "gru", {}),
    ("delta", "delta", {}),
    ("elman", "elman", {}),
    ("mlp", "mlp", {}),
    ("sne_lstm", "lstm", {"sne": True}),
]


class RTRLTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(*CELLS)
  def test_accumulated_gradient_equals_bptt(self, cell, kwargs):
    model = tu.small_decoder(cell, **kwargs)
    batch = tu.random_batch()
    g_bptt, m_bptt = bptt.BPTT(model).gradients(batch)
    algo = rtrl.RTRL(model, accumulate=True)
    rec = tu.Recorder()
    metrics = algo.train_step(batch, rec)
    self.assertLen(rec.calls, 1)
    err = tu.rel_error(tu.by_variable(model.trainable_variables, g_bptt),
                       tu.by_variable(algo.variables, rec.calls[0]))
    self.assertLessEqual(err, 1e-12)
    self.assertAllClose(metrics["loss"], m_bptt["loss"], rtol=1e-12)

  @parameterized.parameters("ratio", "log_ratio")
  def test_normalised_loss_gradient_equals_bptt(self, norm):
    model = tu.small_decoder("lstm")
    batch = tu.random_batch()
    opts = {"alpha": 1.0, "loss_norm": norm, "loss_norm_eps": 0.3}
    g_bptt, m_bptt = bptt.BPTT(model, **opts).gradients(batch)
    algo = rtrl.RTRL(model, accumulate=True, **opts)
    rec = tu.Recorder()
    metrics = algo.train_step(batch, rec)
    err = tu.rel_error(tu.by_variable(model.trainable_variables, g_bptt),
                       tu.by_variable(algo.variables, rec.calls[0]))
    self.assertLessEqual(err, 1e-12)
    self.assertAllClose(metrics["loss"], m_bptt["loss"], rtol=1e-12)
    self.assertAllClose(metrics["loss_last"], m_bptt["loss_last"],
                        rtol=1e-12)

  @parameterized.named_parameters(CELLS[0])
  def test_online_step_gradients_equal_bptt_of_step_losses(self, cell,
                                                           kwargs):
    model = tu.small_decoder(cell, K=4, **kwargs)
    batch = tu.random_batch(seed=1)
    algo = rtrl.RTRL(model)  # online
    rec = tu.Recorder()
    algo.train_step(batch, rec)  # records, never updates
    self.assertLen(rec.calls, 4)
    inputs = {"context": batch["context"], "position": batch["position"]}
    for k in range(4):
      with tf.GradientTape() as tape:
        recons = model(inputs, K=4)
        # l_k taken the same way as the algorithm: the k-th term of eq. 17.
        l_k = losses.distortion_terms(batch["target"], recons)[k]
      expected = tape.gradient(l_k, model.trainable_variables)
      err = tu.rel_error(tu.by_variable(model.trainable_variables, expected),
                         tu.by_variable(algo.variables, rec.calls[k]))
      self.assertLessEqual(err, 1e-12, msg=f"step {k + 1}")

  def test_online_updates_inside_the_episode(self):
    model = tu.small_decoder("lstm", K=3)
    batch = tu.random_batch(seed=2)
    algo = rtrl.RTRL(model)
    rec = tu.Recorder()
    algo.train_step(batch, rec)
    before = [v.numpy() for v in algo.variables]
    opt = tf.keras.optimizers.SGD(0.5)
    seen = []

    def apply(grads):
      seen.append([np.asarray(g) for g in grads])
      opt.apply_gradients(zip(grads, algo.variables))

    algo.train_step(batch, apply)
    self.assertLen(seen, 3)
    # Step 1 sees the original weights; later steps see updated ones.
    self.assertAllClose(seen[0][0], rec.calls[0][0], rtol=1e-12)
    self.assertNotAllClose(seen[2][0], rec.calls[2][0])
    for v, b in zip(algo.variables, before):
      if np.any(v.numpy() != b):
        break
    else:
      self.fail("no variable changed")

  def test_float32_runs_inside_tf_function(self):
    model = tu.small_decoder("gru", units=4, K=2, dtype="float32")
    algo = rtrl.RTRL(model)
    opt = tf.keras.optimizers.SGD(0.1)
    step = tf.function(lambda b: algo.train_step(
        b, lambda g: opt.apply_gradients(zip(g, algo.variables))))
    out = step(tu.random_batch(dtype="float32"))
    self.assertTrue(np.isfinite(out["loss"].numpy()))
    self.assertEqual(int(opt.iterations.numpy()), 2)

  def test_counts_and_paper_size_footprint(self):
    model = tu.small_decoder("lstm", units=3, dtype="float32")
    self.assertEqual(rtrl.cell_counts(model.cell), (6, 48, 3))
    n_z, n_p, n_e = rtrl.cell_counts(model.cell, 512)
    self.assertEqual((n_z, n_p, n_e), (1024, 4 * 512 ** 2 + 4 * 512, 512))
    fp = rtrl.rtrl_footprint(n_z, n_p, n_e, batch_size=1, itemsize=4)
    self.assertAllClose(fp["per_example_bytes"], 1024 * 1050624 * 4)
    self.assertGreater(fp["per_example_bytes"] / 2 ** 30, 4.0)

  def test_refuses_over_budget_and_names_units_that_fit(self):
    model = tu.small_decoder("lstm", units=96, dtype="float32")
    algo = rtrl.RTRL(model, max_gb=0.25)
    with self.assertRaisesRegex(errors.ResourceLimitError,
                                r"GiB.*largest units that fit") as cm:
      algo.check_resources(batch_size=256)
    units = int(str(cm.exception).split("fit at this batch size: ")[1]
                .split(";")[0])
    budget = 0.25 * 2 ** 30
    fits = lambda u: rtrl.rtrl_footprint(
        *rtrl.cell_counts(model.cell, u), 256, 4)["peak_bytes"] <= budget
    self.assertTrue(fits(units))
    self.assertFalse(fits(units + 1))
    small = rtrl.RTRL(tu.small_decoder("lstm", units=units,
                                       dtype="float32"), max_gb=0.25)
    est = small.check_resources(batch_size=256)
    self.assertLessEqual(est["peak_bytes"], budget)
    self.assertGreater(est["seconds_per_batch"], 0)


if __name__ == "__main__":
  tf.test.main()
