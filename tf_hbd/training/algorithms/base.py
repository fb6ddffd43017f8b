"""The interface shared by the learning algorithms (BPTT, SAB, RTRL, UORO).

An algorithm turns a batch of training blocks and the decoder into parameter
updates plus metrics. The training loop (`tf_hbd.training.trainer`) never branches on
the algorithm; it only calls::

    algo = make_algorithm(name, decoder, **options)
    algo.model              # the model to train, evaluate and export
    algo.variables          # the trainable variables, in a fixed order
    algo.updates_per_batch  # 1 (offline) or K (online, one per step)
    algo.train_step(batch, apply_gradients) -> {"loss": ..., ...}

``apply_gradients(grads)`` receives one gradient per entry of
``algo.variables`` (the loop clips and hands them to the optimizer). Offline
algorithms (BPTT, SAB, and RTRL/UORO in accumulate mode) call it once per
batch; online ones (RTRL/UORO by default) call it at every refinement step,
so the parameters change inside a K-step episode, which is the paper's online
setting (section 2: "we do not unroll over steps and directly compute
gradients at each time step").

The loss is the paper's distortion (eqs. 17-19, `tf_hbd.model.losses`) over the
K-step episode; its per-step terms l_k (they sum to the episode loss) are what
the online algorithms differentiate at each step. ``loss_norm`` divides each
example's error by the codec's own (`reference_error`: of the decoded patch,
``loss_norm_scope="patch"``, or of its whole image, "image", which the
batch then carries as ``codec_error`` (B, 2): per-pixel MAE and MSE).

Registry: ``ALGORITHMS`` maps a name to its class, filled by the
`register_algorithm` decorator when the module of an algorithm is imported
(`tf_hbd.training.algorithms` imports all four).
"""

from typing import Callable, Dict, List

import tensorflow as tf

from tf_hbd.model import losses

__all__ = [
    "ALGORITHMS",
    "NORM_SCOPES",
    "Algorithm",
    "register_algorithm",
    "get_algorithm",
    "make_algorithm",
    "options_from_flags",
]

ALGORITHMS = {}
# Whose codec error a normalised loss divides by (`Algorithm.reference_error`).
NORM_SCOPES = ("patch", "image")


def register_algorithm(name):
  """Class decorator: registers an `Algorithm` subclass under `name`."""

  def wrap(cls):
    if name in ALGORITHMS:
      raise ValueError(f"algorithm {name!r} registered twice")
    cls.name = name
    ALGORITHMS[name] = cls
    return cls

  return wrap


def get_algorithm(name):
  """The class registered under `name`."""
  try:
    return ALGORITHMS[name]
  except KeyError:
    raise ValueError(f"unknown algorithm {name!r}; choose from "
                     f"{sorted(ALGORITHMS)}") from None


def make_algorithm(name, decoder, **options):
  """Builds algorithm `name` for `decoder`.

  Args:
    name: a key of `ALGORITHMS`.
    decoder: a `tf_hbd.model.decoder.HybridDecoder` (or `SiblingDecoder`).
    **options: the algorithm's options (see its ``OPTIONS``) and the common
      ones: ``K`` (refinement steps, default ``decoder.K``), ``alpha`` and
      ``loss_form`` (see `tf_hbd.model.losses`).

  Returns:
    An `Algorithm`; its ``model`` is the model to train (SAB wraps the
    decoder in a `tf_hbd.model.sab_decoder.SABDecoder`).
  """
  return get_algorithm(name)(decoder, **options)


def options_from_flags(name, values):
  """The options of algorithm `name` read from command-line flag values.

  Args:
    name: a key of `ALGORITHMS`.
    values: flag name -> value (e.g. ``FLAGS.flag_values_dict()``); each
      class maps its options to flags in ``FLAG_NAMES``. A flag value of 0
      or "" for an option whose default is None means None.
  """
  cls = get_algorithm(name)
  out = {}
  for option, flag in cls.FLAG_NAMES.items():
    if flag not in values:
      continue
    value = values[flag]
    if cls.OPTIONS.get(option) is None and value in (0, "", None):
      value = None
    out[option] = value
  return out


class Algorithm:
  """Base class: common options, the loss and the variable order.

  Args:
    decoder: the decoder to train.
    K: refinement steps per episode (default ``decoder.K``).
    alpha: MSE weight of eq. 17.
    loss_form: "batch_mean" or "paper" (`tf_hbd.model.losses`).
    loss_norm: "none" (the paper), "ratio" or "log_ratio": each example's
      error divided by the codec's own (`tf_hbd.model.losses`).
    loss_norm_eps: added to both errors, in 8-bit levels squared.
    loss_norm_scope: the codec's error of the example's decoded patch
      ("patch") or of its whole image ("image"; the batch's ``codec_error``).
    **options: algorithm options, each a key of the subclass's ``OPTIONS``.
  """

  name = None
  OPTIONS = {}  # option name -> default
  FLAG_NAMES = {}  # option name -> the scripts' flag that sets it

  def __init__(self, decoder, K=None, alpha=losses.ALPHA,
               loss_form=losses.DEFAULT_FORM, loss_norm="none",
               loss_norm_eps=losses.DEFAULT_NORM_EPS, loss_norm_scope="patch",
               **options):
    unknown = set(options) - set(self.OPTIONS)
    if unknown:
      raise ValueError(f"{self.name}: unknown options {sorted(unknown)}; "
                       f"known: {sorted(self.OPTIONS)}")
    self.config = dict(self.OPTIONS)
    self.config.update(options)
    self.decoder = decoder
    self.K = int(decoder.K if K is None else K)
    if self.K < 1:
      raise ValueError(f"K must be >= 1, got {self.K}")
    self.alpha = float(alpha)
    self.loss_form = loss_form
    if loss_form not in losses.FORMS:
      raise ValueError(f"unknown loss form {loss_form!r}")
    if loss_norm not in losses.NORMALISATIONS:
      raise ValueError(f"unknown loss normalisation {loss_norm!r}; choose "
                       f"from {losses.NORMALISATIONS}")
    if loss_norm_scope not in NORM_SCOPES:
      raise ValueError(f"unknown loss_norm_scope {loss_norm_scope!r}; "
                       f"choose from {NORM_SCOPES}")
    if loss_norm != "none" and loss_form != "batch_mean":
      raise ValueError("a normalised loss (loss_norm) needs "
                       "loss_form='batch_mean'")
    if not loss_norm_eps > 0:
      raise ValueError(f"loss_norm_eps must be positive, got {loss_norm_eps}")
    self.loss_norm = loss_norm
    self.loss_norm_eps = float(loss_norm_eps)
    self.loss_norm_scope = loss_norm_scope
    # Data-parallel training (`tf_hbd.training.distributed`) sets this to the global
    # batch size: every loss is then normalised by it, so the replicas'
    # losses and gradients over their shares of a batch sum to those of the
    # whole batch. None: the batch's own size (one replica).
    self.global_batch_size = None
    self.model = self.build_model(decoder)

  # ---- hooks -------------------------------------------------------------

  def build_model(self, decoder):
    """The model this algorithm trains (default: the decoder itself)."""
    return decoder

  @property
  def updates_per_batch(self) -> int:
    """How many times `train_step` calls ``apply_gradients``."""
    return 1

  def checkpoint_items(self) -> Dict[str, tf.Module]:
    """Extra state to checkpoint (e.g. a random generator)."""
    return {}

  def check_resources(self, batch_size: int) -> Dict[str, float]:
    """Raises `tf_hbd.errors.ResourceLimitError` when a run cannot fit;
    returns the estimates it made (empty when there is nothing to check)."""
    del batch_size
    return {}

  def describe(self) -> str:
    opts = ", ".join(f"{k}={v}" for k, v in sorted(self.config.items()))
    return f"{self.name}(K={self.K}{', ' + opts if opts else ''})"

  # ---- shared pieces -----------------------------------------------------

  @property
  def variables(self) -> List[tf.Variable]:
    """Every trainable variable of `model`, in a fixed order."""
    return list(self.model.trainable_variables)

  def reference_error(self, batch):
    """(B,) the codec's own error per example for a normalised loss (None
    with ``loss_norm="none"``)."""
    if self.loss_norm == "none":
      return None
    if self.loss_norm_scope == "image":
      if "codec_error" not in batch:
        raise ValueError("loss_norm_scope='image' needs batches with "
                         "codec_error (a recompress: stream)")
      mae_mse = tf.cast(batch["codec_error"], tf.float32)
      return (1.0 - self.alpha) * mae_mse[:, 0] + self.alpha * mae_mse[:, 1]
    ctx = tf.reshape(batch["context"], [tf.shape(batch["context"])[0], 9, -1])
    own = tf.gather(ctx, tf.cast(tf.reshape(batch["position"], [-1]),
                                 tf.int32), axis=1, batch_dims=1)
    return losses.example_error(batch["target"], own, self.alpha)

  def _distortion(self, target, recons, reference_error):
    return losses.distortion(target, recons, self.alpha, self.loss_form,
                             self.global_batch_size, reference_error,
                             self.loss_norm, self.loss_norm_eps)

  def episode_loss(self, target, recons, reference_error=None):
    """Eq. 17 over the whole episode (B, K, d*d) (normalised with
    ``loss_norm``: pass `reference_error` of the batch)."""
    return self._distortion(target, recons, reference_error)

  def step_loss(self, target, p_k, reference_error=None):
    """l_k, the step-k term of the episode loss (the K terms sum to it)."""
    per_step = self._distortion(target, p_k[:, None], reference_error)
    return per_step / tf.cast(self.K, per_step.dtype)

  def last_step_distortion(self, target, p_last, reference_error=None):
    """Eq. 17 of the last reconstruction alone (comparable across K)."""
    return self._distortion(target, p_last[:, None], reference_error)

  def replica_sum(self, x):
    """x summed over the replicas of the current `tf.distribute` strategy.

    For quantities an algorithm needs over the whole global batch inside a
    step (e.g. batched UORO's norms); x itself with one replica or outside
    a replica context. Every replica must call it at the same point.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
      return x
    return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)

  def train_step(self, batch, apply_gradients: Callable) -> Dict[str,
                                                                 tf.Tensor]:
    """One batch: computes gradients, calls ``apply_gradients``.

    Args:
      batch: dict with ``context`` (B, 9, d, d), ``position`` (B,),
        ``target`` (B, d, d).
      apply_gradients: callable taking a list of gradients aligned with
        `variables`.

    Returns:
      Metrics: ``loss`` (episode loss, eq. 17) and ``loss_last`` (eq. 17 of
      the K-th reconstruction alone).
    """
    raise NotImplementedError
