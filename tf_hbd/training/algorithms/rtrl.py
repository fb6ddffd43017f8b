"""Real-time recurrent learning (Williams & Zipser 1989), paper eqs. 12-14.

RTRL carries the influence matrix ``J_k = dz_k/dtheta`` forward with the state
instead of unrolling the episode. With the cell's state function
``z_k = F(e, z_{k-1}; theta)`` (eq. 12) and the step loss l_k of the
reconstruction ``p_k = readout(s_k)``::

    J_k      = dF/dtheta + dF/dz_{k-1} J_{k-1},   J_0 = 0              (eq. 14)
    dl_k/dth = dl_k/dz_k J_k  (+ the direct readout gradient)          (eq. 13)

per example. Nothing is unrolled: each step needs only the previous state,
the influence, and Jacobians of one step of F (`tf.GradientTape.
batch_jacobian` for dF/dz and dF/de; a per-example `jacobian` vectorised over
the batch for dF/dtheta).

Structure used (exact): the transformation parameters Theta_t act only
through e, so the influence kept for them is ``J^e_k = dz_k/de`` (|z| x |e|,
``J^e_k = dF/de + dF/dz J^e_{k-1}``), mapped to Theta_t by one vector-Jacobian
product of ``embed`` with the cotangent ``dl_k/dz_k J^e_k``. The readout
parameters have no recurrence (direct gradient). Only the cell parameters
Theta_s need the full influence.

Online vs offline (`accumulate`): by default the gradient of l_k is applied
at every step k (online, the paper's setting); the parameters then change
inside the episode and the influence carried to the next step was computed
with the previous parameters (slightly stale, the standard online RTRL
approximation). With ``accumulate=True`` the K step gradients are summed and
applied once; with fixed parameters their sum is exactly the BPTT gradient.

Cost (why the paper calls RTRL impractical): the influence has |z| x
|Theta_s| entries per example; for the LSTM with n units |z| = 2n and
|Theta_s| = 4n^2 + 4n, i.e. 8n^3 numbers: 1.08e9 floats = 4.3 GB per example
at the paper's n = 512, and the product dF/dz J costs O(n^4) per step.
`check_resources` estimates memory and time before a run and refuses
(`ResourceLimitError`) above ``max_gb``, naming the largest units that fit.
"""

import functools
import time

import numpy as np
import tensorflow as tf

from tf_hbd import errors
from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import forward_mode

__all__ = ["RTRL", "rtrl_footprint", "largest_units", "cell_counts"]

# Peak memory in units of one influence tensor (B x |z| x |theta|): the
# influence J_{k-1}, the per-example dF/dtheta and the gradient pieces inside
# its vectorised Jacobian, the product dF/dz J and the new J. Measured with
# the peak RSS of one episode (CPU, LSTM, float32, K = 4; units 32-96, batch
# 32-64): 6.4 to 8.5 influence tensors; 9 is the estimate.
PEAK_INFLUENCE_COPIES = 9.0


def cell_counts(cell, units=None):
  """(|z|, |theta_s|, |e|) of `cell`, or of the same cell with `units`."""
  if units is not None and units != cell.units:
    config = dict(cell.get_config())
    config.update({"units": int(units), "name": f"count_{int(units)}"})
    cell = type(cell).from_config(config)
  n_z = int(sum(cell.state_size))
  n_p = int(sum(np.prod(v.shape) for v in cell.step_variables))
  return n_z, n_p, int(cell.input_size)


@functools.lru_cache(maxsize=None)
def _flops_per_second():
  """A rough measured matmul throughput of this machine (float32)."""
  a = tf.fill([384, 384], 0.5)
  tf.matmul(a, a).numpy()
  t0 = time.perf_counter()
  reps = 8
  for _ in range(reps):
    a = tf.matmul(a, a) * 1e-3
  a.numpy()
  dt = max(time.perf_counter() - t0, 1e-6)
  return reps * 2 * 384 ** 3 / dt


def _polynomial_counts(cell):
  """|z|, |theta|, |e| as exact polynomials of units (degree <= 2)."""
  us = np.array([1.0, 2.0, 3.0])
  counts = np.array([cell_counts(cell, int(u)) for u in us], float)
  coeffs = [np.polyfit(us, counts[:, i], 2) for i in range(3)]
  return lambda u: tuple(float(np.polyval(c, u)) for c in coeffs)


def rtrl_footprint(n_z, n_p, n_e, batch_size, itemsize, K=1):
  """Memory (bytes) and work (flops) of an RTRL episode.

  Args:
    n_z, n_p, n_e: |z|, |theta_s|, |e| of the cell.
    batch_size: examples per batch (each has its own influence).
    itemsize: bytes per number (4 for float32).
    K: steps per episode (for the flops).

  Returns:
    dict: ``influence_bytes`` (J and J^e, all examples), ``per_example_bytes``
    (one example's J), ``peak_bytes`` (estimate of the peak),
    ``flops_per_batch``.
  """
  b = float(batch_size)
  influence = b * (n_z * n_p + n_z * n_e) * itemsize
  peak = (PEAK_INFLUENCE_COPIES * b * n_z * n_p
          + 3 * b * n_z * (n_e + n_z)) * itemsize
  flops = K * 2.0 * b * n_z * (n_z * (n_p + n_e) + 4.0 * n_p)
  return {"influence_bytes": influence,
          "per_example_bytes": n_z * n_p * itemsize,
          "peak_bytes": peak,
          "flops_per_batch": flops}


def largest_units(cell, batch_size, itemsize, budget_bytes):
  """The largest units whose RTRL peak estimate fits `budget_bytes` (0 if
  none)."""
  counts = _polynomial_counts(cell)
  fits = lambda u: rtrl_footprint(*counts(u), batch_size,
                                  itemsize)["peak_bytes"] <= budget_bytes
  if not fits(1):
    return 0
  lo, hi = 1, 2
  while fits(hi):
    lo, hi = hi, hi * 2
    if hi > 1 << 20:
      return lo
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (mid, hi) if fits(mid) else (lo, mid)
  return lo


@base.register_algorithm("rtrl")
class RTRL(forward_mode.ForwardModeAlgorithm):
  """Exact forward-mode gradients (influence matrices), online or offline.

  Options:
    accumulate: False (default, online: one update per step) or True (one
      update per batch from the summed step gradients).
    max_gb: refuse runs whose estimated peak memory exceeds this (GiB).
  """

  OPTIONS = {"accumulate": False, "max_gb": 4.0}
  FLAG_NAMES = {"accumulate": "accumulate", "max_gb": "rtrl_max_gb"}

  def estimate(self, batch_size):
    """Memory/time estimate for one batch (see `rtrl_footprint`)."""
    sysm = self.system
    est = rtrl_footprint(sysm.state_dim, sysm.num_params, sysm.embed_dim,
                         batch_size, sysm.dtype.size, self.K)
    est["seconds_per_batch"] = est["flops_per_batch"] / _flops_per_second()
    return est

  def check_resources(self, batch_size):
    est = self.estimate(batch_size)
    budget = float(self.config["max_gb"]) * 2.0 ** 30
    if est["peak_bytes"] > budget:
      sysm = self.system
      units = largest_units(sysm.cell, batch_size, sysm.dtype.size, budget)
      per_ex = est["peak_bytes"] / batch_size
      max_batch = int(budget // per_ex)
      batch_hint = (f"or keep the units and use batch size <= {max_batch}"
                    if max_batch >= 1 else
                    f"{sysm.cell.units} units do not fit even at batch size "
                    f"1 ({per_ex / 2**30:.2f} GiB per example)")
      name = getattr(sysm.cell, "cell_name", type(sysm.cell).__name__)
      raise errors.ResourceLimitError(
          f"RTRL would need about {est['peak_bytes'] / 2**30:.2f} GiB "
          f"(influence matrices dz/dtheta: {batch_size} examples x "
          f"{sysm.state_dim} x {sysm.num_params} {sysm.dtype.name}, "
          f"{est['per_example_bytes'] / 2**20:.1f} MiB per example) for a "
          f"{name} cell with {sysm.cell.units} units at batch {batch_size}, "
          f"above the budget max_gb={self.config['max_gb']:g}. The largest "
          f"units that fit at this batch size: {units}; {batch_hint}.")
    return est

  def run(self, batch, apply_gradients=None, keep_influence=False):
    """One K-step episode of RTRL.

    Args:
      batch: dict batch (``context``, ``position``, ``target``).
      apply_gradients: called with each step's gradients (online) or once
        with their sum (accumulate); None: only compute.
      keep_influence: also return the final influences (J, J^e).

    Returns:
      (metrics, step_grads[, (J, J^e)]): ``step_grads`` is the list of the K
      per-step gradient lists, each aligned with `variables`.
    """
    sysm = self.system
    batch, sink = self.start_episode(batch, apply_gradients)
    bsz = tf.shape(batch["context"])[0]
    z = sysm.concat_states(self.model.initial_state(bsz))
    jac = tf.zeros([bsz, sysm.state_dim, sysm.num_params], sysm.dtype)
    jac_e = tf.zeros([bsz, sysm.state_dim, sysm.embed_dim], sysm.dtype)
    loss = 0.0
    p = None
    for _ in range(self.K):
      embedded = sysm.watched_embed(batch)
      e = embedded[0]
      z_prev = z
      z, s, dz, de, dtheta = sysm.jacobians(e, z_prev)
      jac = tf.linalg.matmul(dz, jac) + dtheta
      jac_e = tf.linalg.matmul(dz, jac_e) + de                    # eq. 14
      step_loss, p, ds, dread = sysm.readout_grads(self, batch, s)
      dl_dz = sysm.output_cotangent(ds)
      g_flat = tf.einsum("bi,bip->p", dl_dz, jac)                 # eq. 13
      g_e = tf.einsum("bi,bie->be", dl_dz, jac_e)
      self.add_step(sink, embedded, g_e, sysm.unflat_params(g_flat), dread)
      loss += step_loss
    metrics, step_grads = self.end_episode(sink, batch, loss, p)
    if keep_influence:
      return metrics, step_grads, (jac, jac_e)
    return metrics, step_grads
