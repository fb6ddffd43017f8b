"""Unbiased online recurrent optimisation (Tallec & Ollivier 2017), eqs. 15-16.

UORO replaces RTRL's influence matrix dz_k/dtheta (eq. 14) by a rank-one
estimate ``z~_k (x) theta~_k`` whose expectation is exact. With the state
function ``z_k = F(e, z_{k-1}; theta)``, random signs nu (independent +-1 per
state entry, drawn afresh at every step) and ``z~_0 = 0, theta~_0 = 0``::

    z~_k     = rho0 (dF/dz z~_{k-1}) + rho1 nu                         (eq. 15)
    theta~_k = theta~_{k-1} / rho0 + (nu^T dF/dtheta) / rho1
    rho0 = sqrt(|theta~_{k-1}| / |dF/dz z~_{k-1}|),
    rho1 = sqrt(|nu^T dF/dtheta| / |nu|)                                (eq. 16)

(each ratio computed as ``(a + eps) / (b + eps)``, so the zero start gives
rho0 = 1). ``dF/dz z~`` is a Jacobian-vector product
(`tf.autodiff.ForwardAccumulator`), ``nu^T dF/dtheta`` a vector-Jacobian
product (`tf.GradientTape`); nothing is unrolled and no Jacobian is formed.
The estimate is unbiased because E[nu nu^T] = I and rho1 is even in nu (so
the cross terms vanish); `uoro_test` checks it against RTRL's exact influence.

Gradient forms (option ``form``):

* ``"published"`` (**default**; Tallec & Ollivier 2017, Algorithm 1, and the
  seed paper's eq. 13 with the estimate plugged in): the previous estimate
  propagated one exact step plus the exact immediate term, formed *before*
  the estimate is updated with the fresh signs::

      g_k = (dl_k/dz_k . dF/dz z~_{k-1}) theta~_{k-1} + dl_k/dz_k dF/dtheta

  The second term is one ordinary vector-Jacobian product of the step (the
  cotangent dl_k/dz_k), so only the older part of the influence is noisy.
* ``"post_update"`` (the project's earlier form): ``g_k = (dl_k/dz_k .
  z~_k) theta~_k`` with the estimate already updated, so the immediate term
  also goes through the rank-one product and its fresh signs. Equally
  unbiased, but its variance is much larger (`uoro_test` computes both
  variances exactly by enumerating every sign sequence on a tiny decoder).

Both add the direct readout gradient.

"theta" here is (Theta_s, e): as in RTRL (`tf_hbd.training.algorithms.rtrl`), the
transformation parameters act only through e, so the estimate carries an
e-part ``theta~^e`` and maps it to Theta_t with one VJP of ``embed``
(unbiased, since that map is linear).

Batches. Each example is its own recurrent system; two readings:

* ``per_example=False`` (default): the whole batch is one system with state
  [z_1..z_B] and shared parameters: one theta~ for the batch, one rho pair,
  ``nu^T dF/dtheta`` an ordinary batch gradient (`tf.GradientTape`) and
  ``dF/dz z~`` one JVP. This is the direct batched implementation and the
  cheap one (a few forward/backward passes per step).
* ``per_example=True``: one estimate per example (z~_b, theta~_b and the rho's
  per example; theta~ then holds B x |theta| numbers and the VJP is a
  per-example gradient, vectorised over the batch). Its variance shrinks with
  B (B independent estimates are averaged) but it costs several times more.

Both are unbiased (`uoro_test` checks both).

Online vs offline as for RTRL: by default the step gradient is applied at
every step (online, the paper's setting: the estimate then mixes parameter
values, the usual online approximation); ``accumulate=True`` sums the K
steps into one update.

Data-parallel training (`tf_hbd.training.distributed`; each replica holds a share of
the global batch). The signs: a batch that carries ``example_id`` (global
batch n, row i -> n * B + i, added by the distributed input) draws them
without state, row i of one stateless draw over the whole global batch
seeded by (seed, n, step), so an example's signs do not depend on the replica
that holds it and any split of the batch reproduces the one-replica run.
Without ``example_id`` they come from the checkpointed generator. The state
z, z~ and the per-example parts (theta~^e, and theta~ with
``per_example=True``) stay on the replica of their examples. Per-example UORO
needs nothing else across replicas: its step gradients are sums over
examples, which the training loop all-reduces. Batched UORO's single
estimate spans the global batch, so at every step it also sums, across
replicas, its parameter-sized increment ``nu^T dF/dtheta`` and four squared
norms (one packed all-reduce) and the scalar ``c`` (`Algorithm.replica_sum`;
identities with one replica); its theta~ is then the same on every replica.
"""

import tensorflow as tf

from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import forward_mode

__all__ = ["UORO"]


def _norm(x, per_example):
  if per_example:
    return tf.norm(tf.reshape(x, [tf.shape(x)[0], -1]), axis=-1)
  return tf.norm(tf.reshape(x, [-1]))


@base.register_algorithm("uoro")
class UORO(forward_mode.ForwardModeAlgorithm):
  """Rank-one unbiased influence estimates, online or offline.

  Options:
    accumulate: False (online, default) or True (one update per batch).
    per_example: one estimate per example, or one for the batch (default).
    epsilon: the small constant of the rho ratios.
    seed: seed of the random-sign generator (checkpointed with the run).
    form: the gradient form, "published" (default) or "post_update" (see
      the module docstring).
  """

  OPTIONS = {"accumulate": False, "per_example": False, "epsilon": 1e-7,
             "seed": 0, "form": "published"}
  FLAG_NAMES = {"accumulate": "accumulate", "per_example": "uoro_per_example",
                "epsilon": "uoro_epsilon", "seed": "seed",
                "form": "uoro_form"}
  FORMS = ("published", "post_update")

  def __init__(self, decoder, **kwargs):
    super().__init__(decoder, **kwargs)
    if self.config["form"] not in self.FORMS:
      raise ValueError(f"uoro: unknown form {self.config['form']!r}; choose "
                       f"from {self.FORMS}")
    self.generator = tf.random.Generator.from_seed(int(self.config["seed"]))

  def checkpoint_items(self):
    return {"uoro_generator": self.generator}

  def signs(self, shape, dtype, example_id=None, step=0):
    """Independent random signs +-1, (B, |z|).

    Args:
      shape: (B, |z|).
      dtype: of the signs.
      example_id: None (signs from the generator) or (B,) int64 global
        example indices n * G + i of one global batch n of G =
        `global_batch_size` examples (the batch's size when None): row i of
        a stateless draw (G, |z|) seeded by (seed, n * K + step).
      step: refinement step (0-based), with `example_id`.
    """
    if example_id is None:
      bits = self.generator.uniform(shape, 0, 2, dtype=tf.int32)
    else:
      example_id = tf.cast(example_id, tf.int64)
      rows = tf.cast(self.global_batch_size or shape[0], tf.int64)
      n = example_id[0] // rows
      seed = tf.stack([tf.constant(int(self.config["seed"]), tf.int64),
                       n * self.K + step])
      full = tf.random.stateless_uniform(
          tf.stack([rows, tf.cast(shape[1], tf.int64)]), seed, 0, 2,
          dtype=tf.int32)
      bits = tf.gather(full, example_id - n * rows)
    return tf.cast(2 * bits - 1, dtype)

  def _vjp(self, e, z_prev, nu):
    """nu^T dF/d(theta_s, e): ((B, |theta|) or (|theta|,), (B, |e|))."""
    sysm = self.system
    if self.config["per_example"]:
      v_theta = sysm.param_vjp_per_example(e, z_prev, nu)
      with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(e)
        z, _ = sysm.step(e, z_prev)
      v_e = tape.gradient(z, e, output_gradients=nu)
      return v_theta, v_e
    return self._batch_vjp(e, z_prev, nu)

  def _rank_one_gradient(self, dl_dz, z_t, th_t, th_e):
    """(dl/dz . z~) theta~ as (theta_s part, e part (B, |e|))."""
    c = tf.reduce_sum(dl_dz * z_t, axis=-1)                       # (B,)
    if self.config["per_example"]:
      return tf.linalg.matvec(th_t, c, transpose_a=True), c[:, None] * th_e
    c_local = tf.reduce_sum(c)
    # This replica's part of (sum_b c_b) theta~: the training loop sums the
    # step gradients over the replicas. The e-part belongs to this replica's
    # examples and needs the global c.
    return c_local * th_t, self.replica_sum(c_local) * th_e

  def _batch_vjp(self, e, z_prev, cotangent):
    """cotangent^T dF/d(theta_s, e) summed over the batch: (|theta|,),
    (B, |e|) (this replica's examples; the loop sums over replicas). With
    the signs nu: `_vjp` of one system; with dl_k/dz_k: the exact immediate
    term of the published algorithm."""
    sysm = self.system
    flat = sysm.flat_params()
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch([e, flat])
      z, _ = sysm.step(e, z_prev, sysm.unflat_params(flat))
    g_e, g_theta = tape.gradient(z, [e, flat], output_gradients=cotangent)
    return g_theta, g_e

  def _rescalings(self, th_t, th_e, v_theta, v_e, jvp, nu, eps):
    """The variance-minimising rho0, rho1 of eq. 15 (per example, or one
    pair for the whole batch), and v_theta (for one system over the global
    batch: summed over the replicas, whose norms are summed too)."""
    per_example = bool(self.config["per_example"])
    if per_example:
      th_norm = tf.sqrt(tf.square(_norm(th_t, per_example))
                        + tf.square(_norm(th_e, per_example)))
      v_norm = tf.sqrt(tf.square(_norm(v_theta, per_example))
                       + tf.square(_norm(v_e, per_example)))
      jvp_norm = _norm(jvp, per_example)
      nu_norm = _norm(nu, per_example)
    else:
      # One system over the global batch: sum its replica-local parts.
      sq = lambda x: tf.reduce_sum(tf.square(x))
      packed = self.replica_sum(tf.concat(
          [v_theta, tf.stack([sq(th_e), sq(v_e), sq(jvp), sq(nu)])], 0))
      v_theta, sums = packed[:-4], packed[-4:]
      th_norm = tf.sqrt(sq(th_t) + sums[0])
      v_norm = tf.sqrt(sq(v_theta) + sums[1])
      jvp_norm = tf.sqrt(sums[2])
      nu_norm = tf.sqrt(sums[3])
    rho0 = tf.sqrt((th_norm + eps) / (jvp_norm + eps))
    rho1 = tf.sqrt((v_norm + eps) / (nu_norm + eps))
    if per_example:
      rho0, rho1 = rho0[:, None], rho1[:, None]
    return v_theta, rho0, rho1

  def run(self, batch, apply_gradients=None, keep_estimate=False):
    """One K-step episode of UORO.

    Args:
      batch: dict batch (``context``, ``position``, ``target``).
      apply_gradients: called with each step's gradients (online) or once
        with their sum (accumulate); None: only compute.
      keep_estimate: also return the final (z~, theta~_s, theta~_e).

    Returns:
      (metrics, step_grads[, (z~, theta~_s, theta~_e)]).
    """
    sysm = self.system
    per_example = bool(self.config["per_example"])
    published = self.config["form"] == "published"
    eps = tf.constant(self.config["epsilon"], sysm.dtype)
    batch, sink = self.start_episode(batch, apply_gradients)
    bsz = tf.shape(batch["context"])[0]
    z = sysm.concat_states(self.model.initial_state(bsz))
    z_t = tf.zeros_like(z)
    th_shape = [bsz, sysm.num_params] if per_example else [sysm.num_params]
    th_t = tf.zeros(th_shape, sysm.dtype)
    th_e = tf.zeros([bsz, sysm.embed_dim], sysm.dtype)
    loss = 0.0
    p = None
    for k in range(self.K):
      embedded = sysm.watched_embed(batch)
      e = embedded[0]
      z_prev = z
      with tf.autodiff.ForwardAccumulator(z_prev, z_t) as acc:
        z, s = sysm.step(e, z_prev)
      jvp = acc.jvp(z)                                     # dF/dz z~
      nu = self.signs(tf.shape(z), sysm.dtype, batch.get("example_id"), k)
      v_theta, v_e = self._vjp(e, z_prev, nu)              # nu^T dF/dtheta
      v_theta, rho0, rho1 = self._rescalings(th_t, th_e, v_theta, v_e, jvp,
                                             nu, eps)
      step_loss, p, ds, dread = sysm.readout_grads(self, batch, s)
      dl_dz = sysm.output_cotangent(ds)
      if published:
        # Algorithm 1 of Tallec & Ollivier: the old estimate carried one
        # exact step (dF/dz z~_{k-1} = jvp, theta~_{k-1}) and the exact
        # immediate term, before the fresh signs enter.
        g_flat, g_e = self._rank_one_gradient(dl_dz, jvp, th_t, th_e)
        imm_theta, imm_e = self._batch_vjp(e, z_prev, dl_dz)  # immediate
        g_flat = g_flat + imm_theta
        g_e = g_e + imm_e
      z_t = rho0 * jvp + rho1 * nu                                 # eq. 15
      th_t = th_t / rho0 + v_theta / rho1
      th_e = th_e / rho0 + v_e / rho1
      if not published:
        g_flat, g_e = self._rank_one_gradient(dl_dz, z_t, th_t, th_e)
      self.add_step(sink, embedded, g_e, sysm.unflat_params(g_flat), dread)
      loss += step_loss
    metrics, step_grads = self.end_episode(sink, batch, loss, p)
    if keep_estimate:
      return metrics, step_grads, (z_t, th_t, th_e)
    return metrics, step_grads
