"""tf_hbd.inference.graph_refine matches the NumPy geometry of tf_hbd.codecs.patches."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.inference import graph_refine
from tf_hbd.codecs import patches


def _numpy_refine(image, fn, d, strategy):
  blocks = patches.blocks_from_image(image, d, strategy)
  ctx = blocks.context.astype(np.float32) / 255.0
  pred = fn(ctx, blocks.position)
  out = patches.assemble(pred.reshape(-1, d, d), blocks.grid_shape,
                         blocks.image_shape)
  return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _mixing_fn(context, position):
  """Picks block member (5 * position + 3) mod 9, transposed: exact geometry."""
  ctx = np.asarray(context, np.float32)
  n, _, d, _ = ctx.shape
  member = (5 * np.asarray(position) + 3) % 9
  picked = ctx[np.arange(n), member].transpose(0, 2, 1)
  return picked.reshape(n, d * d)


def _mixing_fn_tf(context, position):
  member = (5 * position + 3) % 9
  picked = tf.gather(context, member, axis=1, batch_dims=1)
  picked = tf.transpose(picked, [0, 2, 1])
  return tf.reshape(picked, [tf.shape(context)[0], -1])


class GraphRefineTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(
      ((7, 7), 8, "paper"), ((9, 13), 4, "paper"), ((37, 53), 8, "replicate"),
      ((64, 64), 8, "paper"), ((1, 1), 8, "paper"), ((20, 100), 8, "paper"),
      ((33, 47), 16, "replicate"))
  def test_matches_numpy(self, shape, d, strategy):
    image = np.random.default_rng(sum(shape)).integers(0, 256, shape,
                                                       dtype=np.uint8)
    want = _numpy_refine(image, _mixing_fn, d, strategy)
    got = graph_refine.refine_in_graph(image, _mixing_fn_tf, d, strategy,
                                       batch_size=5)
    self.assertAllEqual(got, want)

  def test_block_indices_match(self):
    for r, c in [(1, 1), (2, 7), (3, 3), (6, 4)]:
      for strategy in patches.BOUNDARY_STRATEGIES:
        rows, cols, pos, _ = patches.block_indices((r, c), strategy)
        tr, tc, tp = graph_refine.block_index_tensors(
            tf.constant(r), tf.constant(c), strategy)
        self.assertAllEqual(tr, rows)
        self.assertAllEqual(tc, cols)
        self.assertAllEqual(tp, pos)

  def test_identity_model_returns_input_and_keeps_channel_axis(self):
    image = np.random.default_rng(0).integers(0, 256, (19, 23, 1),
                                              dtype=np.uint8)

    def own_target(context, position):
      picked = tf.gather(context, position, axis=1, batch_dims=1)
      return tf.reshape(picked, [tf.shape(context)[0], -1])

    got = graph_refine.refine_in_graph(image, own_target, 8, "paper")
    self.assertAllEqual(got, image)

  def test_bad_inputs(self):
    fn = _mixing_fn_tf
    with self.assertRaises(TypeError):
      graph_refine.refine_in_graph(np.zeros((8, 8), np.float32), fn, 8,
                                   "paper")
    with self.assertRaises(tf.errors.InvalidArgumentError):
      graph_refine.refine_in_graph(np.zeros((8, 8, 3), np.uint8), fn, 8,
                                   "paper")
    with self.assertRaises(tf.errors.InvalidArgumentError):
      graph_refine.refine_in_graph(np.zeros((0, 8), np.uint8), fn, 8, "paper")
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "too large"):
      graph_refine.refine_in_graph(np.zeros((40, 40), np.uint8), fn, 8,
                                   "paper", max_pixels=1000)


if __name__ == "__main__":
  tf.test.main()
