"""Tests of BPTT (against finite differences) and of the algorithm registry."""

import numpy as np
import tensorflow as tf

from tf_hbd.model import losses
from tf_hbd.training.algorithms import base
from tf_hbd.training.algorithms import bptt
from tf_hbd.training.algorithms import testing_utils as tu
import tf_hbd.training.algorithms  # pylint: disable=unused-import  (fills ALGORITHMS)


class BPTTTest(tf.test.TestCase):

  def test_gradient_matches_central_differences(self):
    model = tu.small_decoder("lstm", units=3, K=3)
    batch = tu.random_batch(seed=9)
    algo = bptt.BPTT(model)
    rec = tu.Recorder()
    metrics = algo.train_step(batch, rec)
    self.assertLen(rec.calls, 1)

    def loss():
      return float(losses.distortion(batch["target"], model(batch, K=3)))

    self.assertAllClose(metrics["loss"], loss(), rtol=1e-12)
    rng = np.random.default_rng(0)
    h = 1e-6
    for var, grad in zip(algo.variables, rec.calls[0]):
      flat = var.numpy().ravel()
      for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
        orig = flat[i]
        for sign in (1, -1):
          flat[i] = orig + sign * h
          var.assign(flat.reshape(var.shape))
          if sign == 1:
            up = loss()
          else:
            down = loss()
        flat[i] = orig
        var.assign(flat.reshape(var.shape))
        numeric = (up - down) / (2 * h)
        self.assertAllClose(grad.ravel()[i], numeric, rtol=1e-5, atol=1e-8,
                            msg=f"{var.name}[{i}]")


class RegistryTest(tf.test.TestCase):

  def test_registry(self):
    self.assertEqual(set(base.ALGORITHMS), {"bptt", "sab", "rtrl", "uoro",
                                             "snap1"})
    with self.assertRaisesRegex(ValueError, "unknown algorithm"):
      base.get_algorithm("bpt")
    with self.assertRaisesRegex(ValueError, "unknown options"):
      base.make_algorithm("rtrl", tu.small_decoder(), k_top=3)

  def test_options_from_flags(self):
    flags = {"k_top": 3, "k_attn": 1, "k_trunc": 2, "sab_attn_units": 0,
             "seed": 5, "accumulate": True, "rtrl_max_gb": 1.5,
             "uoro_per_example": False, "uoro_epsilon": 1e-6,
             "uoro_form": "post_update"}
    self.assertEqual(base.options_from_flags("sab", flags),
                     {"k_top": 3, "k_attn": 1, "k_trunc": 2,
                      "attn_units": None, "attn_seed": 5})
    self.assertEqual(base.options_from_flags("rtrl", flags),
                     {"accumulate": True, "max_gb": 1.5})
    self.assertEqual(base.options_from_flags("uoro", flags),
                     {"accumulate": True, "per_example": False,
                      "epsilon": 1e-6, "seed": 5, "form": "post_update"})
    self.assertEqual(base.options_from_flags("bptt", flags), {})
    for name in base.ALGORITHMS:  # every option can be built from flags
      algo = base.make_algorithm(name, tu.small_decoder(),
                                 **base.options_from_flags(name, flags))
      self.assertEqual(algo.name, name)


class NormalisedLossTest(tf.test.TestCase):
  """--loss_norm: each example's error over the codec's own."""

  def test_reference_error_is_the_decoded_patchs(self):
    model = tu.small_decoder("lstm", units=3, K=2)
    batch = tu.random_batch(batch_size=5, seed=2)
    algo = bptt.BPTT(model, alpha=1.0, loss_norm="ratio")
    ctx = batch["context"].numpy().reshape(5, 9, -1)
    own = ctx[np.arange(5), batch["position"].numpy()]
    want = np.mean((own - batch["target"].numpy().reshape(5, -1))**2, -1)
    self.assertAllClose(algo.reference_error(batch), want, rtol=1e-12)
    self.assertIsNone(bptt.BPTT(model).reference_error(batch))

  def test_image_scope_reads_codec_error(self):
    model = tu.small_decoder("lstm", units=3, K=2)
    batch = tu.random_batch(batch_size=3, seed=2)
    algo = bptt.BPTT(model, alpha=0.25, loss_norm="log_ratio",
                     loss_norm_scope="image")
    with self.assertRaisesRegex(ValueError, "codec_error"):
      algo.reference_error(batch)
    batch["codec_error"] = tf.constant([[0.1, 0.01], [0.2, 0.04],
                                        [0.3, 0.09]])
    self.assertAllClose(algo.reference_error(batch),
                        [0.0775, 0.16, 0.2475], rtol=1e-6)

  def test_gradient_of_the_normalised_episode(self):
    model = tu.small_decoder("lstm", units=3, K=3)
    batch = tu.random_batch(seed=9)
    algo = bptt.BPTT(model, alpha=1.0, loss_norm="log_ratio",
                     loss_norm_eps=0.5)
    rec = tu.Recorder()
    metrics = algo.train_step(batch, rec)
    ref = algo.reference_error(batch)

    def loss():
      return float(losses.distortion(batch["target"], model(batch, K=3), 1.0,
                                     reference_error=ref,
                                     normalise="log_ratio", eps=0.5))

    self.assertAllClose(metrics["loss"], loss(), rtol=1e-12)
    var, grad = algo.variables[0], rec.calls[0][0]
    flat = var.numpy().ravel()
    i, h = 3, 1e-6
    old = flat[i]
    for sign in (1, -1):
      flat[i] = old + sign * h
      var.assign(flat.reshape(var.shape))
      if sign == 1:
        up = loss()
      else:
        down = loss()
    self.assertAllClose(grad.ravel()[i], (up - down) / (2 * h), rtol=1e-5)
    self.assertNotAllClose(metrics["loss"], float(losses.distortion(
        batch["target"], model(batch, K=3), 1.0)))

  def test_bad_options(self):
    model = tu.small_decoder("lstm", units=3, K=2)
    with self.assertRaisesRegex(ValueError, "normalisation"):
      bptt.BPTT(model, loss_norm="psnr")
    with self.assertRaisesRegex(ValueError, "scope"):
      bptt.BPTT(model, loss_norm="ratio", loss_norm_scope="batch")
    with self.assertRaisesRegex(ValueError, "batch_mean"):
      bptt.BPTT(model, loss_norm="ratio", loss_form="paper")
    with self.assertRaisesRegex(ValueError, "positive"):
      bptt.BPTT(model, loss_norm="ratio", loss_norm_eps=0.0)


if __name__ == "__main__":
  tf.test.main()
