"""The HBD training objective, eqs. 17-19 of the paper.

For B target patches p^b (flattened, d*d pixels) and the K reconstructions
p~_k^b of a refinement episode, with pixels in [0, 1]::

    D     = (1 - alpha) D_MAE + alpha D_MSE                              (17)
    D_MAE = 1 / (2K)  sum_k sum_b sum_i |p~_k^b[i] - p^b[i]|             (18)
    D_MSE = 1 / (2BK) sum_k sum_b sum_i (p~_k^b[i] - p^b[i])^2           (19)

alpha = 0.235 (section 2). Both terms sum over the pixels i of a patch (not a
per-pixel mean), as written. Two forms:

* ``form="paper"``: eqs. 18-19 exactly as printed. Eq. 18 has no 1/B, so the
  MAE term grows linearly with the batch size while the MSE term does not: at
  the paper's B = 256 the MAE term is weighted 256 times more than alpha says.
* ``form="batch_mean"`` (**the default**): eq. 18 also divided by B, i.e. both
  terms are averages over the batch, ``D = 1/(2BK) sum_k sum_b sum_i
  [(1 - alpha) |.| + alpha (.)^2]``.

Why the default is ``batch_mean``: the loss is then an average over examples,
so alpha keeps the meaning the text gives it (the MAE/MSE trade-off) for any
batch size, and the gradient scale -- hence the learning rate -- does not
change with B. Eq. 18 is most likely a typo (eq. 19 and the name "mean
absolute error" both divide by B). For B = 1 the two forms agree; for other B
``paper = (1 - alpha) * B * MAE_batch_mean + alpha * MSE``. Use ``paper`` to
reproduce the printed objective (the paper's step size 2e-4 was tuned on it).

`distortion_terms` splits D into its K per-step terms (they sum to D), which is
what the online algorithms (RTRL, UORO) minimise at each step k.
"""

import tensorflow as tf

__all__ = ["ALPHA", "FORMS", "DEFAULT_FORM", "distortion", "distortion_terms",
           "HBDDistortion"]

ALPHA = 0.235
FORMS = ("batch_mean", "paper")
DEFAULT_FORM = "batch_mean"


def _prepare(target, recons):
  recons = tf.convert_to_tensor(recons)
  if not recons.dtype.is_floating:
    raise ValueError(f"reconstructions must be floating point, got "
                     f"{recons.dtype}")
  target = tf.cast(target, recons.dtype)
  if recons.shape.rank is not None and recons.shape.rank < 2:
    raise ValueError(f"reconstructions must be (B, K, ...), got shape "
                     f"{recons.shape}")
  batch = tf.shape(recons)[0]
  k = tf.shape(recons)[1]
  recons = tf.reshape(recons, [batch, k, -1])
  target = tf.reshape(target, [batch, 1, -1])
  return target, recons


def distortion_terms(target, recons, alpha=ALPHA, form=DEFAULT_FORM,
                     batch_size=None):
  """The K per-step terms of eq. 17; they sum to `distortion`.

  Args:
    target: (B, d*d) or (B, d, d) original patches p^b.
    recons: (B, K, d*d) or (B, K, d, d) reconstructions p~_k^b.
    alpha: weight of the MSE term.
    form: "batch_mean" (default) or "paper" (see module docstring).
    batch_size: the B of the 1/B normalisation (default: the batch's own
      size). Data-parallel training passes the global batch size, so each
      replica's loss over its share of the batch is its part of the global
      loss and the replicas' losses (and gradients) sum to it, in either form.

  Returns:
    (K,) tensor: term k = (1 - alpha) MAE_k + alpha MSE_k with the 1/(2K)
    (and 1/B) normalisation of the full episode.
  """
  if form not in FORMS:
    raise ValueError(f"unknown loss form {form!r}; choose from {FORMS}")
  target, recons = _prepare(target, recons)
  diff = recons - target
  dtype = recons.dtype
  batch = tf.cast(tf.shape(recons)[0] if batch_size is None else batch_size,
                  dtype)
  k = tf.cast(tf.shape(recons)[1], dtype)
  abs_k = tf.reduce_sum(tf.abs(diff), axis=[0, 2])      # sum_b sum_i, per k
  sq_k = tf.reduce_sum(tf.square(diff), axis=[0, 2])
  mse = sq_k / (2.0 * batch * k)                         # eq. 19
  if form == "paper":
    mae = abs_k / (2.0 * k)                              # eq. 18 as printed
  else:
    mae = abs_k / (2.0 * batch * k)                      # eq. 18 / B
  # A Python number becomes a constant of the working dtype directly
  # (tf.cast(0.235, float64) would go through float32: 0.23499999940...).
  alpha = (tf.cast(alpha, dtype) if tf.is_tensor(alpha)
           else tf.constant(alpha, dtype))
  return (1.0 - alpha) * mae + alpha * mse               # eq. 17


def distortion(target, recons, alpha=ALPHA, form=DEFAULT_FORM,
               batch_size=None):
  """Eq. 17: (1 - alpha) D_MAE + alpha D_MSE over a K-step episode (scalar).

  See `distortion_terms` for the arguments.
  """
  return tf.reduce_sum(distortion_terms(target, recons, alpha, form,
                                        batch_size))


@tf.keras.utils.register_keras_serializable(package="tf_hbd")
class HBDDistortion(tf.keras.losses.Loss):
  """Keras wrapper of `distortion`: ``loss(target, recons)`` (a scalar).

  Args:
    alpha: weight of the MSE term (0.235).
    form: "batch_mean" (default) or "paper".
  """

  def __init__(self, alpha=ALPHA, form=DEFAULT_FORM, name="hbd_distortion",
               **kwargs):
    if form not in FORMS:
      raise ValueError(f"unknown loss form {form!r}; choose from {FORMS}")
    kwargs.setdefault("reduction", tf.keras.losses.Reduction.SUM)
    super().__init__(name=name, **kwargs)
    self.alpha = float(alpha)
    self.form = form

  def call(self, y_true, y_pred):
    return distortion(y_true, y_pred, self.alpha, self.form)

  def get_config(self):
    config = super().get_config()
    config.update({"alpha": self.alpha, "form": self.form})
    return config
