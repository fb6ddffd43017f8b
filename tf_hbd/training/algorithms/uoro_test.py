"""Proofs of UORO: its rank-one estimate is an unbiased estimate of RTRL's
influence matrix, with the error falling as 1/sqrt(number of draws); its
gradient estimator (both forms) is unbiased, proven by enumerating every sign
sequence; the published form has the lower variance; online updates equal an
independent eager implementation."""

import itertools

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import losses
from tf_hbd.training.algorithms import bptt
from tf_hbd.training.algorithms import rtrl
from tf_hbd.training.algorithms import testing_utils as tu
from tf_hbd.training.algorithms import uoro


def _exact_influence(model, batch):
  """RTRL's [dz_K/dtheta_s, dz_K/de] per example: (B, |z|, |theta|+|e|)."""
  _, _, (jac, jac_e) = rtrl.RTRL(model, accumulate=True).run(
      batch, keep_influence=True)
  return np.concatenate([jac.numpy(), jac_e.numpy()], axis=-1)


def _rel(estimate, exact):
  return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))


def _all_sign_sequences(K, n_z):
  """Every sequence of K sign vectors of length n_z: (2**(K n_z), K, n_z)."""
  seqs = np.array(list(itertools.product([-1.0, 1.0], repeat=K * n_z)))
  return seqs.reshape(-1, K, n_z)


class FixedSignsUORO(uoro.UORO):
  """UORO whose signs come from a table (B, K, |z|) instead of a generator."""

  def __init__(self, decoder, table, **kwargs):
    super().__init__(decoder, **kwargs)
    self.table = tf.Variable(np.asarray(table, np.float64), trainable=False)

  def signs(self, shape, dtype, example_id=None, step=0):
    del shape, example_id
    return tf.cast(self.table[:, step], dtype)


def _flat(grads):
  return np.concatenate([np.ravel(np.asarray(g)) for g in grads])


def _bptt_flat(model, batch, variables):
  grads, _ = bptt.BPTT(model).gradients(batch)
  by = tu.by_variable(model.trainable_variables, grads)
  return np.concatenate([by[v.ref()].ravel() for v in variables])


def _tiny(cell, units, K):
  # embed_bias and no position table keep every piece small and non-trivial.
  return tu.small_decoder(cell, units=units, K=K, init_scale=0.8)


class UOROGradientTest(tf.test.TestCase, parameterized.TestCase):
  """The gradient estimator itself, by exact enumeration of the signs."""

  @parameterized.product(form=["published", "post_update"],
                         cell=[("lstm", 1), ("gru", 2)])
  def test_per_example_estimator_is_unbiased_exactly(self, form, cell):
    # All 2^(K |z|) = 64 sign sequences at once: 64 copies of one example,
    # copy j with sequence j. The batch-mean loss makes the summed gradient
    # the average over the sequences, i.e. the expectation, exactly.
    name, units = cell
    model = _tiny(name, units, K=3)
    one = tu.random_batch(batch_size=1, seed=21)
    n_z = sum(model.cell.state_size)
    table = _all_sign_sequences(3, n_z)
    copies = {k: tf.repeat(v, len(table), axis=0) for k, v in one.items()}
    algo = FixedSignsUORO(model, table, accumulate=True, per_example=True,
                          form=form)
    rec = tu.Recorder()
    algo.train_step(copies, rec)
    expected = _bptt_flat(model, one, algo.variables)
    got = _flat(rec.calls[0])
    err = np.max(np.abs(got - expected)) / np.max(np.abs(expected))
    self.assertLessEqual(err, 1e-12)

  @parameterized.parameters("published", "post_update")
  def test_batched_estimator_is_unbiased_exactly(self, form):
    # One estimate for a batch of 2 different examples (|Z| = 2 x 1 units):
    # the mean over all 2^(K |Z|) = 16 sequences is the BPTT gradient.
    model = _tiny("elman", 1, K=2)
    batch = tu.random_batch(batch_size=2, seed=22)
    seqs = _all_sign_sequences(2, 2)  # (16, K, B * |z|)
    algo = FixedSignsUORO(model, np.zeros([2, 2, 1]), accumulate=True,
                          per_example=False, form=form)
    run = tf.function(lambda b: algo.run(b)[1])
    total = 0.0
    for seq in seqs:
      algo.table.assign(np.transpose(seq.reshape(2, 2, 1), (1, 0, 2)))
      total = total + _flat([tf.add_n([st[i] for st in run(batch)])
                             for i in range(len(algo.variables))])
    expected = _bptt_flat(model, batch, algo.variables)
    err = np.max(np.abs(total / len(seqs) - expected)) / np.max(
        np.abs(expected))
    self.assertLessEqual(err, 1e-12)

  @parameterized.parameters(("gru", 2), ("lstm", 1))
  def test_published_form_has_lower_variance(self, name, units):
    # Exact variance over all 64 equally likely sign sequences of a fixed
    # tiny decoder (|z| = 2, K = 3, one example).
    model = _tiny(name, units, K=3)
    one = tu.random_batch(batch_size=1, seed=23)
    seqs = _all_sign_sequences(3, 2)
    expected = None
    var = {}
    for form in ("published", "post_update"):
      algo = FixedSignsUORO(model, seqs[:1], accumulate=True,
                            per_example=True, form=form)
      run = tf.function(lambda b, a=algo: a.run(b)[1])
      draws = []
      for seq in seqs:
        algo.table.assign(seq[None])
        steps = run(one)
        draws.append(_flat([tf.add_n([st[i] for st in steps])
                            for i in range(len(algo.variables))]))
      draws = np.array(draws)
      if expected is None:
        expected = _bptt_flat(model, one, algo.variables)
      self.assertAllClose(draws.mean(0), expected, rtol=1e-11, atol=1e-14)
      var[form] = float(np.mean(np.sum((draws - expected) ** 2, axis=1)))
    ratio = var["post_update"] / var["published"]
    norm = float(np.linalg.norm(expected))
    print(f"UORO exact variance ({name}-{units}, K=3, 64 sequences): published "
          f"std/|g| = {np.sqrt(var['published']) / norm:.3f}, post_update "
          f"std/|g| = {np.sqrt(var['post_update']) / norm:.3f}, variance "
          f"ratio post_update/published = {ratio:.2f}")
    self.assertGreater(ratio, 2.0)


def _step_jacobians(cell, e, z, sizes):
  """Every example's dz_k/dz_{k-1}, dz_k/dtheta_s, dz_k/de (NumPy), and
  z_k, from one cell step at inputs `e` and states `z` (B, n_z)."""
  stp = cell.step_variables
  n_z = sum(sizes)
  dz, dth, de, z_new = [], [], [], []
  for b in range(int(z.shape[0])):
    zb = tf.constant(z[b:b + 1])
    eb = tf.identity(e[b:b + 1])
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([zb, eb])
      _, st = cell.step(eb, tuple(tf.split(zb, sizes, -1)), stp)
      znb = tf.concat(st, -1)[0]
    dz.append(tape.jacobian(znb, zb).numpy()[:, 0])
    de.append(tape.jacobian(znb, eb).numpy()[:, 0])
    dth.append(np.concatenate([np.reshape(j.numpy(), [n_z, -1])
                               for j in tape.jacobian(znb, stp)], 1))
    z_new.append(znb.numpy())
  return dz, dth, de, np.array(z_new)


def _system_jacobians(members, dz, dth, de):
  """The Jacobians of one system of examples `members`: its state is their
  states stacked, its parameters [theta_s, e_1 .. e_m] (block matrices)."""
  n_z, n_th = dth[0].shape
  n_e = de[0].shape[1]
  m = len(members)
  big_dz = np.zeros([n_z * m, n_z * m])
  big_dp = np.zeros([n_z * m, n_th + n_e * m])
  for a, b in enumerate(members):
    rows = slice(a * n_z, (a + 1) * n_z)
    big_dz[rows, rows] = dz[b]
    big_dp[rows, :n_th] = dth[b]
    big_dp[rows, n_th + a * n_e:n_th + (a + 1) * n_e] = de[b]
  return big_dz, big_dp


def _reference_online_uoro(model, batch, table, lr, per_example, form,
                           eps=1e-7):
  """UORO (Tallec & Ollivier, Algorithm 1) written out with full Jacobians.

  Independent of `uoro.UORO`: it forms dz_k/dz_{k-1}, dz_k/dtheta and
  dz_k/de of every example explicitly (`tf.GradientTape.jacobian`), keeps
  the estimate of each system (one per example, or one for the batch whose
  parameters are [theta_s, e_1 .. e_B]) in NumPy and applies SGD after
  every step. Modifies the model's variables.
  """
  cell = model.cell
  emb, stp, rd = (model.embed_variables, cell.step_variables,
                  model.readout_variables)
  sizes = [int(n) for n in cell.state_size]
  n_z = sum(sizes)
  ctx = tf.cast(batch["context"], tf.float64)
  pos, target = batch["position"], batch["target"]
  bsz = int(ctx.shape[0])
  K = table.shape[1]
  n_th = sum(int(np.prod(v.shape)) for v in stp)
  n_e = int(cell.input_size)
  z = np.zeros([bsz, n_z])
  systems = [[b] for b in range(bsz)] if per_example else [list(range(bsz))]
  est = [(np.zeros(n_z * len(m)), np.zeros(n_th + n_e * len(m)))
         for m in systems]
  out_idx = np.concatenate([np.arange(sum(sizes[:i]), sum(sizes[:i + 1]))
                            for i, name in enumerate(cell.state_names)
                            if name == "s" or name.startswith("s_")])
  for k in range(K):
    with tf.GradientTape() as etape:
      e = model.embed(ctx, pos)
    dz, dth, de, z_new = _step_jacobians(cell, e, z, sizes)
    s = tf.constant(z_new[:, out_idx])
    with tf.GradientTape() as rtape:
      rtape.watch(s)
      p = model.readout(s, ctx, pos)
      loss = losses.distortion(target, p[:, None]) / K
    ds, *g_read = rtape.gradient(loss, [s] + rd)
    dl = np.zeros([bsz, n_z])
    dl[:, out_idx] = ds.numpy()
    g_th = np.zeros(n_th)
    g_e = np.zeros([bsz, n_e])
    for j, members in enumerate(systems):
      big_dz, big_dp = _system_jacobians(members, dz, dth, de)
      zt, tht = est[j]
      nu = np.concatenate([table[b, k] for b in members])
      dlv = np.concatenate([dl[b] for b in members])
      jvp = big_dz @ zt
      v = nu @ big_dp
      rho0 = np.sqrt((np.linalg.norm(tht) + eps) / (np.linalg.norm(jvp) + eps))
      rho1 = np.sqrt((np.linalg.norm(v) + eps) / (np.linalg.norm(nu) + eps))
      if form == "published":
        g = (dlv @ jvp) * tht + dlv @ big_dp
      zt, tht = rho0 * jvp + rho1 * nu, tht / rho0 + v / rho1
      if form == "post_update":
        g = (dlv @ zt) * tht
      est[j] = (zt, tht)
      g_th += g[:n_th]
      for a, b in enumerate(members):
        g_e[b] = g[n_th + a * n_e:n_th + (a + 1) * n_e]
    g_emb = etape.gradient(e, emb, output_gradients=tf.constant(g_e))
    g_stp, off = [], 0
    for v in stp:
      size = int(np.prod(v.shape))
      g_stp.append(g_th[off:off + size].reshape(v.shape))
      off += size
    for v, g in zip(emb + stp + rd, list(g_emb) + g_stp + list(g_read)):
      v.assign_sub(lr * np.asarray(g))
    z = z_new


class UOROOnlineTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(form=["published", "post_update"],
                         per_example=[True, False],
                         cell=["lstm", "delta"])
  def test_online_updates_equal_an_independent_implementation(
      self, form, per_example, cell):
    batch = tu.random_batch(batch_size=2, seed=24)
    K, lr = 3, 0.3
    table = np.random.default_rng(5).choice([-1.0, 1.0], size=[2, K, 4])
    if cell == "delta":
      table = table[..., :2]
    ref = _tiny(cell, 2, K)
    _reference_online_uoro(ref, batch, table, lr, per_example, form)
    model = _tiny(cell, 2, K)
    algo = FixedSignsUORO(model, table, per_example=per_example, form=form)
    calls = []

    def sgd(grads):  # plain float64 SGD (Keras keeps lr in float32)
      calls.append(1)
      for v, g in zip(algo.variables, grads):
        v.assign_sub(lr * g)

    algo.train_step(batch, sgd)
    self.assertLen(calls, K)
    moved = 0.0
    start = _tiny(cell, 2, K)
    for v, r, s0 in zip(model.trainable_variables, ref.trainable_variables,
                        start.trainable_variables):
      self.assertAllClose(v.numpy(), r.numpy(), rtol=1e-11, atol=1e-13)
      moved = max(moved, float(np.max(np.abs(v.numpy() - s0.numpy()))))
    self.assertGreater(moved, 1e-3)  # the updates did something


class UOROTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = tu.small_decoder("lstm", units=3, K=3)
    cls.one = tu.random_batch(batch_size=1, seed=4)
    cls.exact = _exact_influence(cls.model, cls.one)[0]

  def _mean_estimate(self, n, seed):
    """Mean of z~ (x) theta~ over n independent sign sequences.

    Per-example UORO on n copies of one example: each copy draws its own
    signs, so the copies are n independent runs.
    """
    algo = uoro.UORO(self.model, accumulate=True, per_example=True,
                     seed=seed)
    batch = {k: tf.repeat(v, n, axis=0) for k, v in self.one.items()}
    _, _, (z_t, th_t, th_e) = algo.run(batch, keep_estimate=True)
    theta = tf.concat([th_t, th_e], axis=-1)
    return tf.einsum("bi,bp->ip", z_t, theta).numpy() / n

  def test_unbiased_error_falls_as_inverse_sqrt_n(self):
    small, large = 400, 6400  # 16x the draws: expect 4x less error
    err_small = np.mean([_rel(self._mean_estimate(small, s), self.exact)
                         for s in (1, 2)])
    err_large = np.mean([_rel(self._mean_estimate(large, s), self.exact)
                         for s in (3, 4)])
    ratio = err_small / err_large
    self.assertBetween(ratio, 2.5, 6.4)
    self.assertLess(err_large, 0.1)

  def test_single_draw_is_not_exact(self):
    # The estimate is noisy; only its mean is exact (the test above).
    self.assertGreater(_rel(self._mean_estimate(1, 7), self.exact), 0.2)

  def test_first_step_is_nu_nu_transpose_jacobian(self):
    # z~_0 = 0, theta~_0 = 0: rho0 = 1 and z~_1 (x) theta~_1 = nu nu^T dF/dth.
    model = tu.small_decoder("gru", units=3, K=1)
    batch = tu.random_batch(batch_size=2, seed=5)
    exact = _exact_influence(model, batch)
    algo = uoro.UORO(model, accumulate=True, per_example=True, seed=11)
    _, _, (z_t, th_t, th_e) = algo.run(batch, keep_estimate=True)
    est = np.einsum("bi,bp->bip", z_t.numpy(),
                    np.concatenate([th_t.numpy(), th_e.numpy()], -1))
    nu = uoro.UORO(model, seed=11).signs([2, 3], tf.float64).numpy()
    expected = np.einsum("bi,bj,bjp->bip", nu, nu, exact)
    self.assertAllClose(est, expected, rtol=1e-10, atol=1e-12)

  def test_joint_batch_estimate_is_unbiased(self):
    # One rank-one estimate for a batch of 2 different examples; its mean
    # over independent runs is the exact block influence.
    model = tu.small_decoder("elman", units=2, K=2)
    batch = tu.random_batch(batch_size=2, seed=6)
    exact = _exact_influence(model, batch)  # (B, |z|, |th| + |e|)
    n_th = exact.shape[-1] - 2
    algo = uoro.UORO(model, accumulate=True, per_example=False, seed=0)
    run = tf.function(lambda b: algo.run(b, keep_estimate=True)[2])
    total = np.zeros_like(exact)
    total_sq = np.zeros_like(exact)
    draws = 1500
    for _ in range(draws):
      z_t, th_t, th_e = (t.numpy() for t in run(batch))
      one = np.empty_like(exact)
      one[..., :n_th] = np.einsum("bi,p->bip", z_t, th_t)
      # The e-part belongs to each example's own e (cross terms are zero in
      # the exact influence and average out).
      one[..., n_th:] = np.einsum("bi,bp->bip", z_t, th_e)
      total += one
      total_sq += one * one
    # Unbiased: the mean is off the exact influence by sampling error only.
    # Each entry's z-score (mean - exact) / standard error is then ~N(0, 1):
    # their mean square is ~1 and none is far out. (A fixed relative bound
    # such as "within 25 %" would pass a biased estimator.)
    mean = total / draws
    se = np.sqrt(np.maximum(total_sq / draws - mean**2, 0.0) / (draws - 1))
    noisy = se > 1e-12 * np.abs(exact).max()
    self.assertAllClose(mean[~noisy], exact[~noisy], atol=1e-12)
    z = (mean[noisy] - exact[noisy]) / se[noisy]
    self.assertGreater(z.size, 10)
    self.assertLess(float(np.mean(z**2)), 2.0)
    self.assertLess(float(np.max(np.abs(z))), 5.5)
    # The same statistic exposes a 10 % bias.
    z_biased = (1.1 * mean[noisy] - exact[noisy]) / se[noisy]
    self.assertGreater(float(np.mean(z_biased**2)), 2.0)

  def test_online_updates_every_step_and_accumulate_once(self):
    batch = tu.random_batch(seed=8)
    online = tu.Recorder()
    uoro.UORO(self.model).train_step(batch, online)
    self.assertLen(online.calls, 3)
    offline = tu.Recorder()
    uoro.UORO(self.model, accumulate=True).train_step(batch, offline)
    self.assertLen(offline.calls, 1)

  def test_unknown_form_is_refused(self):
    with self.assertRaisesRegex(ValueError, "unknown form 'pre'"):
      uoro.UORO(self.model, form="pre")
    self.assertEqual(uoro.UORO(self.model).config["form"], "published")

  def test_signs_resume_from_checkpoint(self):
    algo = uoro.UORO(self.model, seed=5)
    algo.signs([4], tf.float64)
    ckpt = tf.train.Checkpoint(**algo.checkpoint_items())
    path = ckpt.save(self.create_tempdir().full_path + "/c")
    expected = algo.signs([16], tf.float64).numpy()
    again = uoro.UORO(self.model, seed=99)
    tf.train.Checkpoint(**again.checkpoint_items()).restore(path)
    self.assertAllEqual(again.signs([16], tf.float64), expected)
    self.assertAllEqual(np.abs(expected), np.ones(16))


if __name__ == "__main__":
  tf.test.main()
