"""Tests of tf_hbd.codecs.patches."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tf_hbd.codecs import patches


class PatchesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((7, 7, 8), (9, 13, 8), (513, 771, 8), (64, 64, 8),
                            (513, 771, 64), (9, 13, 3), (1, 1, 8), (5, 40, 4))
  def test_patches_round_trip(self, h, w, d):
    img = np.random.default_rng(h * w).integers(0, 256, (h, w), dtype=np.uint8)
    grid = patches.to_patches(img, d)
    self.assertEqual(grid.patches.shape,
                     (-(-h // d), -(-w // d), d, d))
    np.testing.assert_array_equal(patches.from_patches(grid.patches, (h, w)),
                                  img)

  def test_padding_is_edge_replication(self):
    img = np.arange(9 * 13, dtype=np.uint8).reshape(9, 13)
    grid = patches.to_patches(img, 8)
    full = grid.patches.transpose(0, 2, 1, 3).reshape(16, 16)
    np.testing.assert_array_equal(full, np.pad(img, ((0, 7), (0, 3)), "edge"))

  def test_patch_contents(self):
    img = np.arange(16 * 24).reshape(16, 24)
    grid = patches.to_patches(img, 8)
    np.testing.assert_array_equal(grid.patches[1, 2], img[8:16, 16:24])

  def test_paper_block_example(self):
    # Section 3.1: patch (1,1) from (0,0)..(2,2); (1,2) from (0,1)..(2,3);
    # boundary patch (0,0) from the same 9 patches as (1,1).
    rows, cols, pos, targets = patches.block_indices((5, 6), "paper")
    idx = lambda i, j: i * 6 + j
    members = lambda n: list(zip(rows[n], cols[n]))
    first = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1),
             (2, 2)]
    self.assertEqual(members(idx(1, 1)), first)
    self.assertEqual(pos[idx(1, 1)], 4)
    self.assertEqual(members(idx(1, 2)),
                     [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 1),
                      (2, 2), (2, 3)])
    self.assertEqual(members(idx(0, 0)), first)
    self.assertEqual(pos[idx(0, 0)], 0)
    self.assertEqual(pos[idx(4, 5)], 8)  # bottom-right corner
    self.assertEqual(members(idx(4, 5))[8], (4, 5))
    np.testing.assert_array_equal(targets[idx(3, 2)], [3, 2])

  def test_paper_target_is_in_block_at_position(self):
    for shape in [(3, 3), (4, 7), (10, 3), (2, 5), (1, 1), (1, 9)]:
      for strategy in patches.BOUNDARY_STRATEGIES:
        rows, cols, pos, t = patches.block_indices(shape, strategy)
        n = np.arange(len(pos))
        np.testing.assert_array_equal(rows[n, pos], t[:, 0])
        np.testing.assert_array_equal(cols[n, pos], t[:, 1])
        if strategy == "replicate":
          self.assertTrue(np.all(pos == 4))

  def test_replicate_clamps_neighbours(self):
    rows, cols, pos, _ = patches.block_indices((4, 4), "replicate")
    self.assertEqual(list(zip(rows[0], cols[0])),
                     [(0, 0), (0, 0), (0, 1), (0, 0), (0, 0), (0, 1), (1, 0),
                      (1, 0), (1, 1)])
    self.assertEqual(pos[0], 4)

  @parameterized.parameters("paper", "replicate")
  def test_blocks_round_trip(self, strategy):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    orig = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    blocks = patches.blocks_from_image(img, 8, strategy, original=orig)
    self.assertEqual(blocks.context.shape, (5 * 7, 9, 8, 8))
    np.testing.assert_array_equal(
        patches.assemble(blocks.own_target, blocks.grid_shape,
                         blocks.image_shape), img)
    np.testing.assert_array_equal(
        patches.assemble(blocks.target, blocks.grid_shape, blocks.image_shape),
        orig)
    perm = rng.permutation(len(blocks))
    np.testing.assert_array_equal(
        patches.assemble(blocks.target[perm], blocks.grid_shape,
                         blocks.image_shape, coords=blocks.coords[perm]), orig)

  def test_errors(self):
    with self.assertRaises(ValueError):
      patches.to_patches(np.zeros((0, 5)), 8)
    with self.assertRaises(ValueError):
      patches.to_patches(np.zeros((4, 4, 3)), 8)
    with self.assertRaises(ValueError):
      patches.block_indices((3, 3), "zero")
    with self.assertRaises(ValueError):
      patches.assemble(np.zeros((5, 8, 8)), (2, 3), (16, 24))
    with self.assertRaises(ValueError):
      patches.assemble(np.zeros((4, 8, 8)), (2, 2), (16, 16),
                       coords=np.zeros((4, 2), int))


class SymmetryTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(*patches.DIHEDRAL)
  def test_dihedral_round_trip(self, k):
    img = np.arange(6 * 10).reshape(6, 10)
    out = patches.dihedral(img, k)
    swapped = bool((k & 1) ^ ((k >> 2) & 1))  # the net map transposes
    self.assertEqual(out.shape, (10, 6) if swapped else (6, 10))
    np.testing.assert_array_equal(patches.undo_dihedral(out, k), img)

  def test_self_ensemble_averages_the_symmetries(self):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 250, (13, 21), dtype=np.uint8)
    calls = []

    def refine(image, setting):
      calls.append((image.shape, setting))
      self.assertEqual(image.shape[0] % 8 + image.shape[1] % 8, 0)
      return image  # the identity: the mean of the 8 is the image

    out = patches.self_ensemble(gray, 8, refine)
    np.testing.assert_array_equal(out, gray)
    self.assertLen(calls, 8)
    # A refinement that lifts the left column of what it sees: each
    # symmetry lifts a different side, the mean lifts all four by 1/4.
    def lift_left(image, setting):
      del setting
      out = image.astype(np.int64)
      out[:, 0] += 40
      return out

    lifted = patches.self_ensemble(np.full((16, 16), 100, np.uint8), 8,
                                   lift_left)
    self.assertEqual(lifted[8, 8], 100)
    self.assertEqual([lifted[8, 0], lifted[0, 8], lifted[8, 15],
                      lifted[15, 8]], [110] * 4)
    self.assertEqual(lifted[0, 0], 120)  # on two sides

  def test_self_ensemble_transposes_the_setting(self):
    seen = []
    patches.self_ensemble(np.zeros((8, 16), np.uint8), 8,
                          lambda image, st: seen.append(st) or image,
                          setting="s", transpose_setting=lambda s: s + "T")
    self.assertEqual(sorted(seen), ["s"] * 4 + ["sT"] * 4)
    seen.clear()
    patches.self_ensemble(np.zeros((8, 16), np.uint8), 8,
                          lambda image, st: seen.append(st) or image,
                          setting="s")
    self.assertEqual(seen, ["s"] * 8)


if __name__ == "__main__":
  tf.test.main()
