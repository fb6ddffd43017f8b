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

**Normalised by the codec's own error** (beyond the paper; ``normalise``).
With a plain average the examples the codec coded worst dominate the loss,
while the gain a user sees (mean dB over images) weighs every image alike;
a JPEG 2000 decoder trained on the plain MSE over-corrects finely coded,
smooth content. Let ``D_b(x) = mean_i [(1 - alpha) |x_i - p^b_i| + alpha
(x_i - p^b_i)^2]`` be example b's per-pixel error and ``r_b`` the same error
of the codec's decoded patch (`example_error`; or of its whole image, which
the training stream can attach). With ``eps`` in 8-bit levels squared
(``e = eps / 255^2``)::

    ratio:     term_k = 1/(BK) sum_b D_b(p~_k^b) / (r_b + e)
    log_ratio: term_k = 1/(BK) sum_b log((D_b(p~_k^b) + e) / (r_b + e))

"ratio" is 1 at the codec's output and a weighted MSE (weights fixed per
example); with ``alpha = 1`` (``D_b`` an MSE, as PSNR uses; the recipe's
value) and ``r_b`` the error of the example's whole image it is, to first
order, minus the mean gain in dB over images that validation measures
(times ln 10 / 10), each image weighted by its blocks in the batch (alike
for images of one crop size). ``e`` is in squared levels, the units of
``D_b`` at ``alpha = 1``; at the paper's ``alpha`` the linear term
dominates ``D_b`` and ``e`` counts for less than a one-level error. "log_ratio" is 0 at the codec's output and,
times -10 / ln 10, the mean gain in dB per *patch*; its gradient weighs
each patch by 1 / (D_b + e) whatever ``r_b`` is (``r_b`` only shifts it by a
constant). Both are batch means (``form`` must be "batch_mean") and still
split into K terms.
"""

import tensorflow as tf

__all__ = ["ALPHA", "FORMS", "DEFAULT_FORM", "NORMALISATIONS",
           "DEFAULT_NORM_EPS", "distortion", "distortion_terms",
           "example_error", "HBDDistortion"]

ALPHA = 0.235
FORMS = ("batch_mean", "paper")
DEFAULT_FORM = "batch_mean"
# "none": eqs. 17-19; the others divide by the codec's own error per example.
NORMALISATIONS = ("none", "ratio", "log_ratio")
# Added to both errors of a normalised loss, in 8-bit levels squared (a
# patch decoded exactly, e.g. a flat field, then weighs 1 / eps).
DEFAULT_NORM_EPS = 1.0


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


def _alpha(alpha, dtype):
  # A Python number becomes a constant of the working dtype directly
  # (tf.cast(0.235, float64) would go through float32: 0.23499999940...).
  return (tf.cast(alpha, dtype) if tf.is_tensor(alpha)
          else tf.constant(alpha, dtype))


def example_error(target, decoded, alpha=ALPHA):
  """(B,) per-pixel error D_b of each example's decoded patch (the codec's).

  Args:
    target: (B, d*d) or (B, d, d) original patches.
    decoded: the codec's decoded patches, same shape.
    alpha: MSE weight of eq. 17.

  Returns:
    mean_i [(1 - alpha) |decoded_i - target_i| + alpha (.)^2] per example.
  """
  target, decoded = _prepare(target, tf.convert_to_tensor(decoded)[:, None])
  diff = decoded[:, 0] - target[:, 0]
  a = _alpha(alpha, diff.dtype)
  return tf.reduce_mean((1.0 - a) * tf.abs(diff) + a * tf.square(diff), -1)


def _normalised_terms(target, recons, alpha, batch_size, reference_error,
                      normalise, eps):
  """(K,) terms of a loss normalised by the codec's error (module doc)."""
  if reference_error is None:
    raise ValueError(f"normalise={normalise!r} needs reference_error, the "
                     "codec's own error per example")
  dtype = recons.dtype
  diff = recons - target
  a = _alpha(alpha, dtype)
  err = tf.reduce_mean((1.0 - a) * tf.abs(diff) + a * tf.square(diff), -1)
  ref = tf.stop_gradient(tf.reshape(tf.cast(reference_error, dtype),
                                    [-1, 1]))
  e = tf.constant(float(eps) / 255.0**2, dtype)
  if normalise == "ratio":
    per = err / (ref + e)
  else:
    per = tf.math.log(err + e) - tf.math.log(ref + e)
  batch = tf.cast(tf.shape(recons)[0] if batch_size is None else batch_size,
                  dtype)
  k = tf.cast(tf.shape(recons)[1], dtype)
  return tf.reduce_sum(per, axis=0) / (batch * k)


def distortion_terms(target, recons, alpha=ALPHA, form=DEFAULT_FORM,
                     batch_size=None, reference_error=None, normalise="none",
                     eps=DEFAULT_NORM_EPS):
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
    reference_error: (B,) the codec's own error per example (`example_error`
      of the decoded patches, or of their images); needed when normalising.
    normalise: "none" (eqs. 17-19), "ratio" or "log_ratio" (module doc).
    eps: added to both errors of a normalised loss, in 8-bit levels squared.

  Returns:
    (K,) tensor: term k = (1 - alpha) MAE_k + alpha MSE_k with the 1/(2K)
    (and 1/B) normalisation of the full episode (normalised: module doc).
  """
  if form not in FORMS:
    raise ValueError(f"unknown loss form {form!r}; choose from {FORMS}")
  if normalise not in NORMALISATIONS:
    raise ValueError(f"unknown loss normalisation {normalise!r}; choose "
                     f"from {NORMALISATIONS}")
  target, recons = _prepare(target, recons)
  if normalise != "none":
    if form != "batch_mean":
      raise ValueError("a normalised loss is a batch mean; use "
                       "form='batch_mean'")
    return _normalised_terms(target, recons, alpha, batch_size,
                             reference_error, normalise, eps)
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
  alpha = _alpha(alpha, dtype)
  return (1.0 - alpha) * mae + alpha * mse               # eq. 17


def distortion(target, recons, alpha=ALPHA, form=DEFAULT_FORM,
               batch_size=None, reference_error=None, normalise="none",
               eps=DEFAULT_NORM_EPS):
  """Eq. 17: (1 - alpha) D_MAE + alpha D_MSE over a K-step episode (scalar).

  See `distortion_terms` for the arguments.
  """
  return tf.reduce_sum(distortion_terms(target, recons, alpha, form,
                                        batch_size, reference_error,
                                        normalise, eps))


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
