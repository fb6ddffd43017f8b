"""SAB's model: the sparsifier and the forward pass against NumPy models
written again here."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.model import decoder
from tf_hbd.model import sab_decoder
from tf_hbd.training.algorithms import testing_utils as tu


def np_sparsify(a, k_top, eps=1e-7):
  """The paper's sparsifier, written again: top-k_top, renormalised."""
  out = np.zeros_like(a)
  for b in range(a.shape[0]):
    row = a[b]
    if row.size > k_top:
      tau = np.sort(row)[::-1][k_top]  # the (k_top + 1)-th largest
    else:
      tau = row.min() - 1.0
    w = np.maximum(row - tau, 0.0)
    out[b] = w / (w.sum() + eps)
  return out


class SparsifyTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((6, 3), (6, 1), (3, 3), (2, 5), (1, 2))
  def test_matches_numpy(self, m, k_top):
    scores = np.random.default_rng(m * 10 + k_top).normal(size=(4, m))
    w = sab_decoder.sparsify(tf.constant(scores), k_top).numpy()
    self.assertAllClose(w, np_sparsify(scores, k_top), rtol=1e-10)
    self.assertAllEqual((w > 0).sum(axis=1), [min(m, k_top)] * 4)
    self.assertAllClose(w.sum(axis=1), np.ones(4), atol=1e-6)

  def test_dynamic_memory_size(self):
    fn = tf.function(lambda a: sab_decoder.sparsify(a, 2), input_signature=[
        tf.TensorSpec([None, None], tf.float64)])
    for m in (1, 2, 5):
      scores = np.random.default_rng(m).normal(size=(3, m))
      self.assertAllClose(fn(scores), np_sparsify(scores, 2), rtol=1e-10)


class SABDecoderTest(tf.test.TestCase):

  def test_forward_matches_numpy(self):
    model = sab_decoder.SABDecoder(tu.small_decoder(units=3, K=4), k_top=2,
                                   k_attn=1, seed=1)
    batch = tu.random_batch()
    base = model.base
    v = lambda vs: [x.numpy() for x in vs]
    (w_e, p_e), (vv, bb), (uu, cc) = (v(base.embed_variables),
                                      v(base.cell.step_variables),
                                      v(base.readout_variables))
    wq, wm, ab, av = v(model.attention_variables)
    ctx = batch["context"].numpy().reshape(3, -1)
    pos = batch["position"].numpy()
    e = ctx @ w_e + p_e[pos]
    n = 3
    sig = lambda x: 1 / (1 + np.exp(-x))
    s, c = np.zeros((3, n)), np.zeros((3, n))
    memory = [s]
    outs = []
    for _ in range(4):
      pre = s @ vv + bb + np.tile(e, 4)
      f, i, g, o = np.split(pre, 4, axis=1)
      c = sig(f) * c + sig(i) * np.tanh(g)
      h = sig(o) * np.tanh(c)
      mem = np.stack(memory, axis=1)
      hid = np.tanh((h @ wq)[:, None] + mem @ wm + ab)
      w = np_sparsify(hid @ av, 2)
      s = h + np.einsum("bm,bmn->bn", w, mem)
      memory.append(s)
      own = batch["context"].numpy().reshape(3, 9, -1)[np.arange(3), pos]
      outs.append(s @ uu + cc + own)
    self.assertAllClose(model(batch, K=4), np.stack(outs, 1), rtol=1e-10)

  def test_loads_back_as_sab(self):
    model = sab_decoder.SABDecoder(tu.small_decoder(units=3, K=2), seed=1)
    batch = tu.random_batch()
    path = self.create_tempdir().full_path
    decoder.export_saved_model(model, path)
    loaded = decoder.load_decoder(path)
    self.assertIsInstance(loaded, sab_decoder.SABDecoder)
    self.assertAllClose(loaded(batch, K=2), model(batch, K=2), rtol=1e-12)


if __name__ == "__main__":
  tf.test.main()
