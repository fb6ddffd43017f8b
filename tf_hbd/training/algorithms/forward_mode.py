"""Pieces shared by the forward-mode algorithms (RTRL, UORO, SnAp-1).

Both see the decoder as the paper's state/output system (section 2, eqs.
12-14) with the state function ``z_k = F(e, z_{k-1}; Theta_s)`` of the cell
(``z`` = all the cell's state tensors concatenated, e.g. [s, c] for the LSTM)
and the output ``p_k = readout(s_k; Theta_d)``. The transformation function's
parameters Theta_t act only through ``e`` (computed from the block alone,
the same e at every step), so instead of the influence dz/dTheta_t they track
dz/de, of size |z| x |e|, and map it to Theta_t with one vector-Jacobian
product of ``embed``. This is exact: dz_k/dTheta_t = (dz_k/de)(de/dTheta_t).
"""

import numpy as np
import tensorflow as tf

from tf_hbd.model import cells as cells_lib
from tf_hbd.training.algorithms import base

__all__ = ["StateSystem", "StepGradients", "ForwardModeAlgorithm"]


class StateSystem:
  """The decoder as ``z_k = F(e, z_{k-1}; theta)``, with flat parameters.

  Args:
    decoder: a `HybridDecoder` (or `SiblingDecoder`) exposing ``embed``,
      ``cell.step``, ``readout`` and their variable lists.

  Raises:
    ValueError: the decoder has trainable variables outside
      embed/step/readout (their influence would be missed).
  """

  def __init__(self, decoder):
    for attr in ("embed", "readout", "cell", "embed_variables",
                 "readout_variables", "initial_state"):
      if not hasattr(decoder, attr):
        raise ValueError(f"forward-mode algorithms need a decoder with "
                         f"{attr!r} (see docs/CONTRACTS.md)")
    self.decoder = decoder
    self.cell = decoder.cell
    self.embed_variables = list(decoder.embed_variables)
    self.step_variables = list(self.cell.step_variables)
    self.readout_variables = list(decoder.readout_variables)
    ours = {id(v) for v in self.variables}
    theirs = {id(v) for v in decoder.trainable_variables}
    if ours != theirs:
      raise ValueError("the decoder has trainable variables outside embed/"
                       "step/readout; forward-mode algorithms cannot track "
                       "them")
    self.state_sizes = [int(n) for n in self.cell.state_size]
    self.state_dim = int(sum(self.state_sizes))
    self.output_indices = cells_lib.output_state_indices(self.cell)
    self.param_shapes = [tuple(v.shape) for v in self.step_variables]
    self.param_sizes = [int(np.prod(s)) for s in self.param_shapes]
    self.num_params = int(sum(self.param_sizes))
    self.embed_dim = int(self.cell.input_size)
    self.dtype = tf.as_dtype(decoder.compute_dtype)
    # Compiled once per shape and reused by every step and episode (the
    # vectorised Jacobians are costly to trace).
    self.jacobians = tf.function(self._jacobians, reduce_retracing=True,
                                 autograph=False)
    self.param_vjp_per_example = tf.function(self._param_vjp_per_example,
                                             reduce_retracing=True,
                                             autograph=False)

  @property
  def variables(self):
    """embed + step + readout variables (the order of every gradient)."""
    return self.embed_variables + self.step_variables + self.readout_variables

  # ---- flat state and parameters -----------------------------------------

  def concat_states(self, states):
    return tf.concat(list(states), axis=-1)

  def split_states(self, z):
    return tuple(tf.split(z, self.state_sizes, axis=-1))

  def flat_params(self):
    return tf.concat([tf.reshape(v, [-1]) for v in self.step_variables], 0)

  def unflat_params(self, flat):
    parts = tf.split(flat, self.param_sizes, axis=-1)
    lead = flat.shape[:-1].as_list()
    return [tf.reshape(p, lead + list(s))
            for p, s in zip(parts, self.param_shapes)]

  def output_cotangent(self, ds):
    """Places dl/ds (B, |s|) into the layout of z (zeros elsewhere)."""
    parts = tf.split(ds, [self.state_sizes[i] for i in self.output_indices],
                     axis=-1)
    batch = tf.shape(ds)[0]
    out = [tf.zeros([batch, n], ds.dtype) for n in self.state_sizes]
    for i, p in zip(self.output_indices, parts):
      out[i] = p
    return tf.concat(out, axis=-1)

  # ---- the pieces of eqs. 12-14 ------------------------------------------

  def embed(self, batch):
    """e = embed(context, position[, setting]) with the current variables."""
    return self.decoder.embed(batch["context"], batch["position"],
                              setting=batch.get("setting"))

  def watched_embed(self, batch):
    """(e, a tape that watched only the embedding's variables): a step's
    embedding, whose gradients `ForwardModeAlgorithm.add_step` takes."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(self.embed_variables)
      e = self.embed(batch)
    return e, tape

  def step(self, e, z_prev, params=None):
    """z_k and s_k from F(e, z_{k-1}; theta) (params: unflat tensors)."""
    params = self.step_variables if params is None else params
    s, states = self.cell.step(e, self.split_states(z_prev), params)
    return self.concat_states(states), s

  def state_jacobians(self, e, z_prev):
    """(z_k, s_k, dF/dz (B,|z|,|z|), dF/de (B,|z|,|e|)), per example."""
    with tf.GradientTape(persistent=True,
                         watch_accessed_variables=False) as tape:
      tape.watch(z_prev)
      tape.watch(e)
      z, s = self.step(e, z_prev)
    dz = tape.batch_jacobian(z, z_prev)
    de = tape.batch_jacobian(z, e)
    del tape
    return z, s, dz, de

  def _jacobians(self, e, z_prev):
    """(z_k, s_k, dF/dz, dF/de, dF/dtheta) of one step, per example."""
    z, s, dz, de = self.state_jacobians(e, z_prev)
    return z, s, dz, de, self.param_jacobian(e, z_prev)

  def param_jacobian(self, e, z_prev):
    """dF/dtheta per example, (B, |z|, |theta|), without an unrolled graph.

    Each example's Jacobian with respect to the shared flat parameter
    vector, vectorised over the batch (`tf.vectorized_map`).
    """
    flat = self.flat_params()

    def one(args):
      e_b, z_b = args
      with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(flat)
        z, _ = self.step(e_b[None], z_b[None], self.unflat_params(flat))
        z = z[0]
      return tape.jacobian(z, flat)

    return tf.vectorized_map(one, (e, z_prev))

  def _param_vjp_per_example(self, e, z_prev, cotangent):
    """nu^T dF/dtheta for every example: (B, |theta|)."""
    flat = self.flat_params()

    def one(args):
      e_b, z_b, c_b = args
      with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(flat)
        z, _ = self.step(e_b[None], z_b[None], self.unflat_params(flat))
        z = z[0]
      return tape.gradient(z, flat, output_gradients=c_b)

    return tf.vectorized_map(one, (e, z_prev, cotangent))

  def readout_grads(self, algo, batch, s):
    """(l_k, p_k, dl_k/ds_k (B,|s|), dl_k/dTheta_d) for step k."""
    with tf.GradientTape(watch_accessed_variables=False) as tape:
      tape.watch(s)
      tape.watch(self.readout_variables)
      p = self.decoder.readout(s, batch["context"], batch["position"])
      loss = algo.step_loss(batch["target"], p,
                            algo.reference_error(batch))
    ds, *dread = tape.gradient(loss, [s] + self.readout_variables)
    return loss, p, ds, dread


class StepGradients:
  """The per-step gradients of an online episode (RTRL, UORO).

  Online (the paper's setting) each step's gradients are applied as soon as
  they are known; otherwise they are summed and applied once by `finish`.
  Either way every step's list is kept in `steps` (the proofs compare them).

  Args:
    online: apply at every step instead of once per episode.
    apply_gradients: callable(list of gradients) or None (only compute).
  """

  def __init__(self, online, apply_gradients):
    self.online = bool(online)
    self.apply_gradients = apply_gradients
    self.steps = []
    self._total = None

  def add(self, grads):
    grads = list(grads)
    self.steps.append(grads)
    if self.online and self.apply_gradients is not None:
      self.apply_gradients(grads)
    else:
      self._total = grads if self._total is None else [
          a + b for a, b in zip(self._total, grads)]

  def finish(self):
    if not self.online and self.apply_gradients is not None:
      self.apply_gradients(self._total)
    return self.steps


class ForwardModeAlgorithm(base.Algorithm):
  """What the forward-mode algorithms (RTRL, UORO, SnAp-1) share.

  The model seen as a `StateSystem` (``self.system``) whose flat parameter
  order is `variables`; one update per step online, or one per batch with
  the option ``accumulate``; `train_step` runs one episode with `run`, which
  a subclass implements: ``run(batch, apply_gradients) -> (metrics, ...)``.
  """

  def __init__(self, decoder, **kwargs):
    super().__init__(decoder, **kwargs)
    self.system = StateSystem(self.model)

  @property
  def variables(self):
    return self.system.variables

  @property
  def updates_per_batch(self):
    return 1 if self.config["accumulate"] else self.K

  def start_episode(self, batch, apply_gradients):
    """(batch with ``context`` in the system's dtype, the `StepGradients`
    that collects, and applies, the episode's per-step gradients)."""
    batch = dict(batch)
    batch["context"] = tf.cast(batch["context"], self.system.dtype)
    return batch, StepGradients(not self.config["accumulate"],
                                apply_gradients)

  def add_step(self, sink, embedded, g_e, g_params, dread):
    """Hands one step's gradients, aligned with `variables`, to `sink`.

    Args:
      sink: the episode's `StepGradients`.
      embedded: ``(e, tape)`` of `StateSystem.watched_embed`.
      g_e: dl/de (B, |e|), pulled back to the embedding's variables.
      g_params: the step variables' gradients (unflat).
      dread: the readout variables' gradients.
    """
    e, tape = embedded
    g_embed = tape.gradient(e, self.system.embed_variables,
                            output_gradients=g_e)
    sink.add(list(g_embed) + list(g_params) + list(dread))

  def end_episode(self, sink, batch, loss, p):
    """(metrics, the per-step gradients) at the end of an episode; the
    summed gradients are applied now when not online."""
    step_grads = sink.finish()
    metrics = {"loss": loss,
               "loss_last": self.last_step_distortion(
                   batch["target"], p, self.reference_error(batch))}
    return metrics, step_grads

  def run(self, batch, apply_gradients=None):
    raise NotImplementedError

  def train_step(self, batch, apply_gradients):
    return self.run(batch, apply_gradients)[0]
