"""Sparse attentive backtracking (SAB; Ke et al., NeurIPS 2018) for the HBD.

SAB changes both the forward pass and the backward pass. The forward pass
(sparse retrieval over past states) is the model's,
`tf_hbd.model.sab_decoder.SABDecoder`; this module is the learning algorithm.

Backward (sparse replay): the recurrent chain is truncated in chunks of
k_trunc steps (the recurrent input of steps k_trunc + 1, 2 k_trunc + 1, ... is
a `tf.stop_gradient`), while the memories are never cut, so the gradient
reaches the selected memories through the sparse attention and from them
flows back locally through their own chunk. With k_trunc >= K nothing is cut
and SAB is plain BPTT of the SAB forward pass.

Where we follow the paper rather than the reference code
(github.com/nke001/sparse_attentive_backtracking_release, ``layers_torch.py``;
the forward pass's choices are in `tf_hbd.model.sab_decoder`):

* truncation: the reference detaches the input of step i when
  ``i % truncate_length == 0`` (first chunk one step shorter); we cut between
  chunks of exactly k_trunc steps, so k_trunc >= K means no truncation.

Horizon. The SAB paper's settings are for sequences of hundreds of steps; its
reference code's defaults are k_top = 10, k_attn = 2, k_trunc = 10
(``copying.py``: --topk 10 --attk 2 --trunc 10; the sparsifier class defaults
to top_k = 5). With K = 4 refinement steps those would store two memories and
never truncate, i.e. plain BPTT with dense attention. Our defaults
(`tf_hbd.model.sab_decoder.DEFAULTS`) keep SAB's mechanisms active over 4
steps: k_attn = 1 (memory s_0..s_{k-1}: 1..4 entries), k_top = 2 (sparse at
steps 3 and 4), k_trunc = 2 (chunks [1, 2], [3, 4]).
"""

from tf_hbd.model import sab_decoder
from tf_hbd.training.algorithms import base as base_lib
from tf_hbd.training.algorithms import bptt

__all__ = ["SAB"]

_DEFAULTS = sab_decoder.DEFAULTS  # k_top, k_attn, k_trunc for K = 4


@base_lib.register_algorithm("sab")
class SAB(bptt.BPTT):
  """Truncated backprop with sparse replay through the SAB attention.

  BPTT's gradient step over SAB's episode (`reconstructions`).

  Options:
    k_top, k_attn: the model's sparsifier and memory period
      (`tf_hbd.model.sab_decoder.SABDecoder`).
    k_trunc: truncation chunk of the recurrent gradient.
    attn_units: hidden size of the score MLP (None: state size).
    attn_seed: seed of the attention weights.
    readout: "state" (default) or "reference" (the model's readout).
  """

  OPTIONS = {"k_top": _DEFAULTS["k_top"], "k_attn": _DEFAULTS["k_attn"],
             "k_trunc": _DEFAULTS["k_trunc"], "attn_units": None,
             "attn_seed": 0, "readout": "state"}
  FLAG_NAMES = {"k_top": "k_top", "k_attn": "k_attn", "k_trunc": "k_trunc",
                "attn_units": "sab_attn_units", "attn_seed": "seed",
                "readout": "sab_readout"}

  def build_model(self, decoder):
    if isinstance(decoder, sab_decoder.SABDecoder):
      return decoder
    return sab_decoder.SABDecoder(
        decoder, k_top=self.config["k_top"], k_attn=self.config["k_attn"],
        attn_units=self.config["attn_units"], seed=self.config["attn_seed"],
        readout=self.config["readout"])

  def reconstructions(self, batch):
    """(B, K, d*d) with the recurrent gradient cut every k_trunc steps."""
    k_trunc = self.config["k_trunc"]
    if int(k_trunc) < 1:
      raise ValueError(f"k_trunc must be >= 1, got {k_trunc}")
    return self.model.unroll(batch["context"], batch["position"], self.K,
                             k_trunc=int(k_trunc),
                             setting=batch.get("setting"))
