"""Tests of tf_hbd.data.blocks_dataset (shared logic of the patch-block builders)."""

import io
import os
import traceback
import tarfile

from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf
import tensorflow_datasets as tfds

from tf_hbd.data import blocks_dataset
from tf_hbd.codecs import legacy as codecs
from tf_hbd import errors
from tf_hbd.codecs import patches
from tf_hbd.data import sample_images


def _png_bytes(arr):
  buf = io.BytesIO()
  Image.fromarray(arr).save(buf, format="PNG")
  return buf.getvalue()


class RateTest(tf.test.TestCase):

  def test_rate_is_a_function_of_seed_and_id(self):
    a = blocks_dataset.rate_for(0, "img/a.png")
    self.assertEqual(a, blocks_dataset.rate_for(0, "img/a.png"))
    self.assertNotEqual(a, blocks_dataset.rate_for(1, "img/a.png"))
    self.assertNotEqual(a, blocks_dataset.rate_for(0, "img/b.png"))

  def test_rates_are_uniform_in_range(self):
    rates = np.array([blocks_dataset.rate_for(7, f"i{k}") for k in range(4000)])
    self.assertGreaterEqual(rates.min(), 0.35)
    self.assertLess(rates.max(), 1.02)
    # Uniform on [0.35, 1.02]: mean 0.685, each tenth of the range ~10 %.
    self.assertAllClose(rates.mean(), 0.685, atol=0.01)
    hist, _ = np.histogram(rates, bins=10, range=(0.35, 1.02))
    self.assertAllInRange(hist, 330, 470)

  def test_custom_range(self):
    rates = [blocks_dataset.rate_for(0, str(k), (0.2, 0.3)) for k in range(50)]
    self.assertAllInRange(rates, 0.2, 0.3)

  def test_hash_order_is_a_seeded_permutation(self):
    names = [f"n{k}" for k in range(50)]
    a = blocks_dataset.hash_order(names, 3)
    self.assertCountEqual(a, names)
    self.assertEqual(a, blocks_dataset.hash_order(reversed(names), 3))
    self.assertNotEqual(a, blocks_dataset.hash_order(names, 4))
    self.assertNotEqual(a, sorted(names))


class SpecTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters(
      dict(codec="png"), dict(strategy="zero"), dict(patch_size=0),
      dict(patch_size=2.5), dict(bpp_range=(1.0, 0.5)),
      dict(bpp_range=(0, 0.5)), dict(tile=-1), dict(tile=1.5),
      dict(rate_search=False), dict(codec="jp2", rate_search="no"))
  def test_invalid_specs(self, **kwargs):
    with self.assertRaises(ValueError):
      blocks_dataset.BlockSpec(**kwargs)

  def test_config_accepts_json_lists(self):
    config = blocks_dataset.BlocksConfig(name="x", bpp_range=[0.5, 0.6],
                                         codec="jp2", patch_size=16)
    self.assertEqual(config.bpp_range, (0.5, 0.6))
    self.assertEqual(config.spec, blocks_dataset.BlockSpec(
        codec="jp2", patch_size=16, bpp_range=(0.5, 0.6)))
    with self.assertRaises(ValueError):
      blocks_dataset.BlocksConfig(name="bad", codec="webp")

  def test_default_configs(self):
    configs = {c.name: c for c in blocks_dataset.default_configs()}
    self.assertEqual(set(configs), {"jpeg", "jp2", "jp2_16"})
    self.assertEqual((configs["jpeg"].codec, configs["jpeg"].patch_size),
                     ("jpeg", 8))
    self.assertEqual((configs["jp2"].codec, configs["jp2"].patch_size),
                     ("jp2", 64))
    self.assertEqual((configs["jp2_16"].codec, configs["jp2_16"].patch_size),
                     ("jp2", 16))
    for c in configs.values():
      self.assertEqual(c.strategy, "paper")
      self.assertEqual(c.bpp_range, (0.35, 1.02))
      # JPEG 2000: one encode per image since 2.1.0; JPEG searches.
      self.assertEqual(c.spec.rate_search, c.codec == "jpeg")
    # A custom config keeps the meaning it had before the field existed.
    self.assertTrue(blocks_dataset.BlocksConfig(name="x", codec="jp2")
                    .spec.rate_search)
    self.assertFalse(blocks_dataset.BlocksConfig(
        name="x", codec="jp2", rate_search=False).spec.rate_search)

  def test_jp2_once_or_searched(self):
    img = sample_images.load_sample("coins")[:72, :88]
    rate = blocks_dataset.rate_for(0, "coins")
    streams = []
    for search, encode in ((True, codecs.encode_at_bpp),
                           (False, codecs.encode_once_at_bpp)):
      spec = blocks_dataset.BlockSpec(codec="jp2", patch_size=8,
                                      rate_search=search)
      blocks, enc = blocks_dataset.image_blocks("coins", img, spec)
      want = encode(img, "jp2", rate)
      self.assertEqual(enc.data, want.data)
      np.testing.assert_array_equal(
          blocks.context[:, 4], patches.blocks_from_image(
              codecs.decode(want), 8, "paper").context[:, 4])
      (_, example), *_ = blocks_dataset.examples_for_image("coins", img, spec)
      self.assertEqual(example["bpp"], np.float32(want.bpp))
      self.assertEqual(example["codec_setting"], np.float32(want.setting))
      streams.append(enc.data)
    self.assertNotEqual(streams[0], streams[1])  # here the search moved


class ReplicateTest(parameterized.TestCase, tf.test.TestCase):

  @parameterized.parameters((5, 6), (3, 3), (2, 7), (1, 1), (1, 4), (9, 2))
  def test_paper_to_replicate_is_exact(self, r, c):
    d = 2
    img = np.random.default_rng(r * 10 + c).integers(
        0, 256, (r * d, c * d), dtype=np.uint8)
    paper = patches.blocks_from_image(img, d, "paper")
    want = patches.blocks_from_image(img, d, "replicate")
    got_ctx, got_pos = blocks_dataset.paper_to_replicate(paper.context,
                                                         paper.position)
    np.testing.assert_array_equal(got_ctx, want.context)
    np.testing.assert_array_equal(got_pos, want.position)
    np.testing.assert_array_equal(paper.coords, want.coords)

  def test_gather_table(self):
    # Interior target (position 4): identity; corner 0: rows/cols clamped.
    np.testing.assert_array_equal(blocks_dataset.REPLICATE_GATHER[4],
                                  np.arange(9))
    np.testing.assert_array_equal(blocks_dataset.REPLICATE_GATHER[0],
                                  [0, 0, 1, 0, 0, 1, 3, 3, 4])


class TileTest(parameterized.TestCase, tf.test.TestCase):
  """Tile records cut on read give exactly `patches.make_blocks`' blocks."""

  def _cut_all(self, dec, org, tile, strategy):
    r, c, d, _ = dec.shape
    got = {}
    for b in blocks_dataset.tile_bounds((r, c), tile):
      r0, c0, tr, tc = b.tile
      a0, b0, wr, wc = b.window
      ctx, pos, tgt, coords = blocks_dataset.tile_blocks(
          b.tile, b.window, (r, c),
          dec[a0:a0 + wr, b0:b0 + wc].reshape(-1, d, d),
          org[r0:r0 + tr, c0:c0 + tc].reshape(-1, d, d), strategy)
      for i, rc in enumerate(coords.numpy()):
        self.assertNotIn(tuple(rc), got)  # every target in one tile only
        got[tuple(rc)] = (ctx[i].numpy(), int(pos[i]), tgt[i].numpy())
    return got

  @parameterized.product(
      grid=[(1, 1), (1, 6), (2, 2), (2, 9), (3, 3), (5, 7), (17, 33)],
      tile=[1, 2, 3, 5, 16], strategy=["paper", "replicate"])
  def test_tiles_give_make_blocks_index_for_index(self, grid, tile, strategy):
    r, c = grid
    d = 2
    rng = np.random.default_rng(r * 100 + c)
    dec = rng.integers(0, 256, (r, c, d, d), dtype=np.uint8)
    org = rng.integers(0, 256, (r, c, d, d), dtype=np.uint8)
    want = patches.make_blocks(patches.PatchGrid(dec, (r * d, c * d)),
                               strategy,
                               patches.PatchGrid(org, (r * d, c * d)))
    got = self._cut_all(dec, org, tile, strategy)
    self.assertLen(got, r * c)
    for i, rc in enumerate(want.coords):
      ctx, pos, tgt = got[tuple(rc)]
      np.testing.assert_array_equal(ctx, want.context[i], err_msg=str(rc))
      self.assertEqual(pos, want.position[i])
      np.testing.assert_array_equal(tgt, want.target[i])

  def test_tile_bounds(self):
    self.assertEqual(blocks_dataset.tile_side(8), 16)
    self.assertEqual(blocks_dataset.tile_side(16), 8)
    self.assertEqual(blocks_dataset.tile_side(64), 8)
    self.assertEqual(blocks_dataset.tile_side(8, 5), 5)
    bounds = blocks_dataset.tile_bounds((25, 4), 8)
    # 25 rows -> 4 near-equal parts (6, 6, 6, 7), not 8 + 8 + 8 + 1.
    self.assertEqual([b.tile for b in bounds],
                     [(0, 0, 6, 4), (6, 0, 6, 4), (12, 0, 6, 4),
                      (18, 0, 7, 4)])
    # The window is the tile plus a one-patch halo, clamped to the grid; at a
    # border the paper block reaches one patch further in.
    self.assertEqual(bounds[0].window, (0, 0, 7, 4))
    self.assertEqual(bounds[1].window, (5, 0, 8, 4))
    self.assertEqual(bounds[3].window, (17, 0, 8, 4))
    (one,) = blocks_dataset.tile_bounds((1, 1), 8)
    self.assertEqual(one, ((0, 0, 1, 1), (0, 0, 1, 1)))
    # A one-row tile at the top: its paper blocks use rows 0..2.
    self.assertEqual(blocks_dataset.tile_bounds((5, 1), 1)[0].window,
                     (0, 0, 3, 1))

  @parameterized.parameters(("jpeg", 8), ("jp2", 64))
  def test_bytes_per_block_at_paper_scale(self, codec, d):
    # A 512 x 512 Places365 image, serialized as TFDS writes it: at most
    # 1.5 x the 2 d^2 pixel bytes of a block (decoded + original).
    img = np.asarray(Image.fromarray(sample_images.load_sample(
        "camera")).resize((512, 512)))
    spec = blocks_dataset.BlockSpec(codec=codec, patch_size=d, quality=20)
    image_id = "places365/data_large/a/abbey/00000001.jpg"
    examples = [ex for _, ex in blocks_dataset.examples_for_image(
        image_id, img, spec)]
    feats = blocks_dataset.features(d)
    serializer = tfds.core.example_serializer.ExampleSerializer(
        feats.get_serialized_info())
    size = sum(len(serializer.serialize_example(feats.encode_example(ex)))
               + 16 for ex in examples)  # + TFRecord framing
    blocks = sum(int(ex["tile"][2] * ex["tile"][3]) for ex in examples)
    self.assertEqual(blocks, (512 // d) ** 2)
    self.assertLessEqual(size / blocks, 1.5 * 2 * d * d)
    # Each original patch is stored exactly once.
    self.assertEqual(sum(ex["original"].shape[0] for ex in examples), blocks)


class ImageToExamplesTest(tf.test.TestCase):

  def test_prepare_image(self):
    img = np.arange(60 * 100, dtype=np.uint32).reshape(60, 100).astype(
        np.uint8)
    sq = blocks_dataset.prepare_image(img, square=40)
    self.assertEqual(sq.shape, (40, 40))
    self.assertEqual(blocks_dataset.prepare_image(img, square=80).shape,
                     (60, 60))  # crop, never upsample
    np.testing.assert_array_equal(
        blocks_dataset.prepare_image(img, square=80), img[:, 20:80])
    self.assertEqual(blocks_dataset.prepare_image(img, max_side=50).shape,
                     (30, 50))
    self.assertIs(blocks_dataset.prepare_image(img).dtype, img.dtype)

  def test_examples_of_an_image(self):
    img = sample_images.load_sample("camera")[:50, :70]
    spec = blocks_dataset.BlockSpec(codec="jpeg", patch_size=8, seed=5,
                                    tile=4)
    examples = list(blocks_dataset.examples_for_image("cam", img, spec))
    # a 7 x 9 grid in tiles of at most 4 x 4: rows 3 + 4, cols 3 + 3 + 3
    self.assertLen(examples, 2 * 3)
    keys = [k for k, _ in examples]
    self.assertLen(set(keys), len(keys))
    self.assertEqual(keys[:3], ["cam#0_0", "cam#0_3", "cam#0_6"])
    self.assertEqual(sum(ex["original"].shape[0] for _, ex in examples),
                     7 * 9)
    bpp = blocks_dataset.rate_for(5, "cam")
    dec, enc = codecs.roundtrip(img, "jpeg", bpp=bpp)
    for _, ex in examples:
      self.assertAllClose(ex["bpp"], enc.bpp)
      self.assertEqual(ex["codec_setting"], enc.setting)
      self.assertLessEqual(ex["bpp"], bpp)
    rebuilt = blocks_dataset.reassemble(ex for _, ex in examples)
    original, decoded = rebuilt["cam"]
    np.testing.assert_array_equal(original, img)
    np.testing.assert_array_equal(decoded, dec)

  def test_fixed_quality(self):
    img = sample_images.load_sample("camera")[:32, :32]
    spec = blocks_dataset.BlockSpec(codec="jpeg", patch_size=8, quality=30)
    ex = next(blocks_dataset.examples_for_image("c", img, spec))[1]
    self.assertEqual(ex["codec_setting"], 30)

  def test_folder_and_tar_items(self):
    root = self.get_temp_dir()
    img = sample_images.load_sample("coins")[:24, :40]
    os.makedirs(os.path.join(root, "imgs", "sub"))
    for name in ("a.png", "sub/b.png"):
      with open(os.path.join(root, "imgs", name), "wb") as f:
        f.write(_png_bytes(img))
    with open(os.path.join(root, "imgs", "notes.txt"), "w") as f:
      f.write("x")
    with open(os.path.join(root, "imgs", ".hidden.png"), "wb") as f:
      f.write(b"")
    items = blocks_dataset.list_folder_items(os.path.join(root, "imgs"), "p/",
                                             square=16)
    self.assertEqual([i.image_id for i in items], ["p/a.png", "p/sub/b.png"])
    self.assertEqual(items[0].square, 16)
    tar_path = os.path.join(root, "x.tar")
    with tarfile.open(tar_path, "w") as tar:
      tar.add(os.path.join(root, "imgs"), "imgs")
    titems = blocks_dataset.list_tar_items(tar_path, "t/")
    self.assertEqual([i.image_id for i in titems],
                     ["t/imgs/a.png", "t/imgs/sub/b.png"])
    self.assertEqual(blocks_dataset.read_item_bytes(titems[1]),
                     blocks_dataset.read_item_bytes(items[1]))
    spec = blocks_dataset.BlockSpec(patch_size=8)
    from_tar = list(blocks_dataset.examples_for_item(titems[0], spec))
    self.assertLen(from_tar, 1)  # a 3 x 5 grid is one tile
    self.assertEqual(list(from_tar[0][1]["tile"]), [0, 0, 3, 5])

  def test_truncated_member_and_bad_archive(self):
    root = self.get_temp_dir()
    path = os.path.join(root, "short.bin")
    with open(path, "wb") as f:
      f.write(b"0123456789")
    item = blocks_dataset.ImageItem("m", path, 4, 20, 0)
    with self.assertRaisesRegex(errors.ImageReadError, "truncated"):
      blocks_dataset.read_item_bytes(item)
    with self.assertRaisesRegex(blocks_dataset.ManualDataError,
                                "not an uncompressed tar"):
      blocks_dataset.list_tar_items(path)

  def test_missing_manual_dir_is_reported_once_without_chaining(self):

    class NoManualDir:

      @property
      def manual_dir(self):
        raise AssertionError("Manual directory /m/places does not exist.")

    with self.assertRaises(blocks_dataset.ManualDataError) as cm:
      blocks_dataset.manual_root(NoManualDir(), "places365/train/*.jpg")
    err = cm.exception
    self.assertIsNone(err.__cause__)
    self.assertTrue(err.__suppress_context__)  # no "During handling..." copy
    text = "".join(traceback.format_exception(err))
    self.assertEqual(str(err).splitlines()[0], (
        "/m/places: the --manual_dir folder does not exist or is empty; put "
        "the data there as laid out below, or pass the folder that holds it "
        "with --manual_dir DIR"))
    self.assertEqual(text.count("/m/places"), 1)
    self.assertIn("--manual_dir DIR", text)
    self.assertIn("places365/train/*.jpg", text)

  def test_unreadable_image_raises_or_is_skipped(self):
    path = os.path.join(self.get_temp_dir(), "broken.png")
    with open(path, "wb") as f:
      f.write(b"\x89PNG\r\n\x1a\n garbage")
    item = blocks_dataset.ImageItem("broken.png", path, -1, -1, 0)
    spec = blocks_dataset.BlockSpec()
    with self.assertRaisesRegex(errors.ImageReadError, "broken.png"):
      list(blocks_dataset.examples_for_item(item, spec))
    self.assertEmpty(list(blocks_dataset.examples_for_item(
        item, spec, skip_unreadable=True)))


class FeaturesTest(tf.test.TestCase):

  def test_features_encode_an_example(self):
    img = sample_images.load_sample("camera")[:16, :24]
    spec = blocks_dataset.BlockSpec(patch_size=8)
    _, ex = next(blocks_dataset.examples_for_image("c", img, spec))
    feats = blocks_dataset.features(8)
    encoded = feats.encode_example(ex)
    # Pixels are stored as raw bytes (no int64 upcast), each patch once.
    self.assertLen(encoded["decoded"], 6 * 64)
    self.assertLen(encoded["original"], 6 * 64)

  def test_reassemble_version_1_records(self):
    img = sample_images.load_sample("camera")[:20, :28]
    blocks = patches.blocks_from_image(img // 2, 8, original=img)
    rebuilt = blocks_dataset.reassemble(
        {"image_id": b"c", "context": blocks.context[i],
         "target": blocks.target[i], "position": blocks.position[i],
         "coords": blocks.coords[i], "grid_shape": blocks.grid_shape,
         "image_shape": blocks.image_shape} for i in range(len(blocks)))
    np.testing.assert_array_equal(rebuilt["c"][0], img)
    np.testing.assert_array_equal(rebuilt["c"][1], img // 2)


if __name__ == "__main__":
  tf.test.main()
