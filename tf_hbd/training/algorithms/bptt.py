"""Back-propagation through time (BPTT), the reference learning algorithm.

The estimator is unrolled over the K refinement steps (paper, section 2:
"We explicitly unroll our estimator over the length of iterative refinement
steps K ... in order to use BP(TT) to learn Theta") and one `tf.GradientTape`
differentiates the K-step distortion (eqs. 17-19) with respect to every
parameter. One update per batch.
"""

import tensorflow as tf

from tf_hbd.training.algorithms import base

__all__ = ["BPTT"]


@base.register_algorithm("bptt")
class BPTT(base.Algorithm):
  """Full BPTT over the K-step episode (no options).

  Subclasses that differentiate another episode (SAB: truncated, with
  attention) override `reconstructions` only.
  """

  OPTIONS = {}

  def reconstructions(self, batch):
    """(B, K, d*d): the episode whose loss is differentiated."""
    inputs = {k: batch[k] for k in ("context", "position", "setting")
              if k in batch}
    return self.model(inputs, K=self.K, training=True)

  def gradients(self, batch):
    """(grads aligned with `variables`, metrics) of the episode loss."""
    ref = self.reference_error(batch)
    with tf.GradientTape() as tape:
      recons = self.reconstructions(batch)
      loss = self.episode_loss(batch["target"], recons, ref)
    grads = tape.gradient(loss, self.variables)
    metrics = {"loss": loss,
               "loss_last": self.last_step_distortion(batch["target"],
                                                      recons[:, -1], ref)}
    return grads, metrics

  def train_step(self, batch, apply_gradients):
    grads, metrics = self.gradients(batch)
    apply_gradients(grads)
    return metrics
