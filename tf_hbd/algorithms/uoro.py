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
The step gradient is ``dl_k/dtheta ~= (dl_k/dz_k . z~_k) theta~_k`` plus the
direct readout gradient. The estimate is unbiased because E[nu nu^T] = I and
rho1 is even in nu (so the cross terms vanish); `uoro_test` checks it against
RTRL's exact influence.

"theta" here is (Theta_s, e): as in RTRL (`tf_hbd.algorithms.rtrl`), the
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
"""

import tensorflow as tf

from tf_hbd.algorithms import base
from tf_hbd.algorithms import forward_mode

__all__ = ["UORO"]


def _norm(x, per_example):
  if per_example:
    return tf.norm(tf.reshape(x, [tf.shape(x)[0], -1]), axis=-1)
  return tf.norm(tf.reshape(x, [-1]))


@base.register_algorithm("uoro")
class UORO(base.Algorithm):
  """Rank-one unbiased influence estimates, online or offline.

  Options:
    accumulate: False (online, default) or True (one update per batch).
    per_example: one estimate per example, or one for the batch (default).
    epsilon: the small constant of the rho ratios.
    seed: seed of the random-sign generator (checkpointed with the run).
  """

  OPTIONS = {"accumulate": False, "per_example": False, "epsilon": 1e-7,
             "seed": 0}
  FLAG_NAMES = {"accumulate": "accumulate", "per_example": "uoro_per_example",
                "epsilon": "uoro_epsilon", "seed": "seed"}

  def __init__(self, decoder, **kwargs):
    super().__init__(decoder, **kwargs)
    self.system = forward_mode.StateSystem(self.model)
    self.generator = tf.random.Generator.from_seed(int(self.config["seed"]))

  @property
  def variables(self):
    return self.system.variables

  @property
  def updates_per_batch(self):
    return 1 if self.config["accumulate"] else self.K

  def checkpoint_items(self):
    return {"uoro_generator": self.generator}

  def signs(self, shape, dtype):
    """Independent random signs +-1."""
    bits = self.generator.uniform(shape, 0, 2, dtype=tf.int32)
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
    flat = sysm.flat_params()
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch([e, flat])
      z, _ = sysm.step(e, z_prev, sysm.unflat_params(flat))
    v_e, v_theta = tape.gradient(z, [e, flat], output_gradients=nu)
    return v_theta, v_e

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
    eps = tf.constant(self.config["epsilon"], sysm.dtype)
    batch = dict(batch)
    batch["context"] = tf.cast(batch["context"], sysm.dtype)
    bsz = tf.shape(batch["context"])[0]
    z = sysm.concat_states(self.model.initial_state(bsz))
    z_t = tf.zeros_like(z)
    th_shape = [bsz, sysm.num_params] if per_example else [sysm.num_params]
    th_t = tf.zeros(th_shape, sysm.dtype)
    th_e = tf.zeros([bsz, sysm.embed_dim], sysm.dtype)
    online = not self.config["accumulate"]
    total = None
    step_grads = []
    loss = 0.0
    p = None
    for _ in range(self.K):
      with tf.GradientTape(watch_accessed_variables=False) as embed_tape:
        embed_tape.watch(sysm.embed_variables)
        e = sysm.embed(batch)
      z_prev = z
      with tf.autodiff.ForwardAccumulator(z_prev, z_t) as acc:
        z, s = sysm.step(e, z_prev)
      jvp = acc.jvp(z)                                     # dF/dz z~
      nu = self.signs(tf.shape(z), sysm.dtype)
      v_theta, v_e = self._vjp(e, z_prev, nu)              # nu^T dF/dtheta
      th_norm = tf.sqrt(tf.square(_norm(th_t, per_example))
                        + tf.square(_norm(th_e, per_example)))
      v_norm = tf.sqrt(tf.square(_norm(v_theta, per_example))
                       + tf.square(_norm(v_e, per_example)))
      rho0 = tf.sqrt((th_norm + eps) / (_norm(jvp, per_example) + eps))
      rho1 = tf.sqrt((v_norm + eps) / (_norm(nu, per_example) + eps))
      if per_example:
        rho0, rho1 = rho0[:, None], rho1[:, None]
      z_t = rho0 * jvp + rho1 * nu                                 # eq. 15
      th_t = th_t / rho0 + v_theta / rho1
      th_e = th_e / rho0 + v_e / rho1
      step_loss, p, ds, dread = sysm.readout_grads(self, batch, s)
      c = tf.reduce_sum(sysm.output_cotangent(ds) * z_t, axis=-1)  # (B,)
      if per_example:
        g_flat = tf.linalg.matvec(th_t, c, transpose_a=True)
      else:
        c = tf.reduce_sum(c)
        g_flat = c * th_t
      g_e = (c[:, None] if per_example else c) * th_e
      g_embed = embed_tape.gradient(e, sysm.embed_variables,
                                    output_gradients=g_e)
      grads = list(g_embed) + sysm.unflat_params(g_flat) + list(dread)
      step_grads.append(grads)
      loss += step_loss
      if online and apply_gradients is not None:
        apply_gradients(grads)
      else:
        total = grads if total is None else [a + b for a, b in
                                             zip(total, grads)]
    if not online and apply_gradients is not None:
      apply_gradients(total)
    metrics = {"loss": loss,
               "loss_last": self.last_step_distortion(batch["target"], p)}
    if keep_estimate:
      return metrics, step_grads, (z_t, th_t, th_e)
    return metrics, step_grads

  def train_step(self, batch, apply_gradients):
    return self.run(batch, apply_gradients)[0]
