"""Images <-> d x d patch grids <-> 3 x 3 patch blocks (paper, section 3.1).

An image of size H x W is padded at the bottom/right by edge replication to a
multiple of d and cut into an R x C grid of non-overlapping d x d patches
(row-major; each patch is flattened row-major when fed to a model). For every
patch (the *target*) a **block** of 9 patches is formed, listed row-major
(position 0 = top-left ... 4 = centre ... 8 = bottom-right). Two boundary
strategies:

* ``paper``: the block is always 3 x 3 *interior* patches, centred at
  ``(clip(i, 1, R-2), clip(j, 1, C-2))``. An interior target sits at position 4;
  a boundary target reuses the nearest interior block and sits at another
  position: patch (0, 0) is predicted from (0,0)...(2,2) at position 0, exactly
  the paper's example. Because the same 9 patches then serve up to 9 targets,
  the target's position must be given to the model. Along an axis with fewer
  than 3 patches no interior block exists; there the rule falls back to
  clamping (as ``replicate``).
* ``replicate``: the block is centred on the target; neighbours outside the
  grid are clamped to the border patch (edge replication at patch level), so
  the target is always at position 4.

Everything is vectorised with NumPy fancy indexing; the inverse operations
round-trip exactly.
"""

import dataclasses

import numpy as np

__all__ = [
    "BOUNDARY_STRATEGIES",
    "PatchGrid",
    "to_patches",
    "from_patches",
    "Blocks",
    "make_blocks",
    "blocks_from_image",
    "assemble",
    "block_indices",
    "DIHEDRAL",
    "dihedral",
    "undo_dihedral",
    "self_ensemble",
    "self_ensemble_sum",
]

BOUNDARY_STRATEGIES = ("paper", "replicate")


@dataclasses.dataclass
class PatchGrid:
  """Patches (R, C, d, d) of an image of `image_shape` (H, W)."""
  patches: np.ndarray
  image_shape: tuple

  @property
  def patch_size(self) -> int:
    return self.patches.shape[-1]

  @property
  def grid_shape(self) -> tuple:
    return tuple(self.patches.shape[:2])


def _check_d(d):
  if int(d) != d or d < 1:
    raise ValueError(f"patch size must be a positive integer, got {d}")
  return int(d)


def to_patches(image: np.ndarray, d: int) -> PatchGrid:
  """Cuts a 2-D image into a grid of d x d patches (edge-replication pad)."""
  d = _check_d(d)
  image = np.asarray(image)
  if image.ndim != 2:
    raise ValueError(f"expected a 2-D image, got shape {image.shape}")
  h, w = image.shape
  if h == 0 or w == 0:
    raise ValueError(f"cannot cut an empty image {image.shape} into patches")
  ph, pw = -h % d, -w % d
  if ph or pw:
    image = np.pad(image, ((0, ph), (0, pw)), mode="edge")
  r, c = image.shape[0] // d, image.shape[1] // d
  grid = image.reshape(r, d, c, d).transpose(0, 2, 1, 3)
  return PatchGrid(np.ascontiguousarray(grid), (h, w))


def from_patches(patches: np.ndarray, image_shape) -> np.ndarray:
  """Inverse of `to_patches`: (R, C, d, d) -> image cropped to image_shape."""
  patches = np.asarray(patches)
  r, c, d, d2 = patches.shape
  if d != d2:
    raise ValueError(f"patches must be square, got {patches.shape}")
  h, w = image_shape
  if not (r * d >= h > (r - 1) * d and c * d >= w > (c - 1) * d):
    raise ValueError(f"grid {r}x{c} of {d}x{d} patches does not match image "
                     f"shape {tuple(image_shape)}")
  image = patches.transpose(0, 2, 1, 3).reshape(r * d, c * d)
  return np.ascontiguousarray(image[:h, :w])


def _centres(n, strategy, index):
  if strategy == "replicate" or n < 3:
    return index
  return np.clip(index, 1, n - 2)


def block_indices(grid_shape, strategy: str = "paper"):
  """Indices of every block of a grid.

  Args:
    grid_shape: (R, C).
    strategy: "paper" or "replicate".

  Returns:
    (rows, cols, position, targets): rows/cols are int arrays (N, 9) giving the
    grid coordinates of each block's 9 patches (row-major), position (N,) the
    target's index 0..8 in its block, targets (N, 2) the target coordinates;
    N = R * C, targets in row-major order.
  """
  if strategy not in BOUNDARY_STRATEGIES:
    raise ValueError(f"unknown boundary strategy {strategy!r}; choose from "
                     f"{BOUNDARY_STRATEGIES}")
  r, c = grid_shape
  ti, tj = np.meshgrid(np.arange(r), np.arange(c), indexing="ij")
  ti, tj = ti.ravel(), tj.ravel()
  ci, cj = _centres(r, strategy, ti), _centres(c, strategy, tj)
  off = np.arange(-1, 2)
  di = np.repeat(off, 3)  # row offsets of the 9 block members, row-major
  dj = np.tile(off, 3)
  rows = np.clip(ci[:, None] + di[None, :], 0, r - 1)
  cols = np.clip(cj[:, None] + dj[None, :], 0, c - 1)
  position = (ti - ci + 1) * 3 + (tj - cj + 1)
  targets = np.stack([ti, tj], axis=1)
  return rows, cols, position.astype(np.int32), targets


@dataclasses.dataclass
class Blocks:
  """All blocks of one image.

  Attributes:
    context: (N, 9, d, d) the block patches (same dtype as the image).
    position: (N,) int32, target's index in its block.
    target: (N, d, d) the target patches of the *reference* image if one was
      given, else of the image the blocks were cut from.
    coords: (N, 2) int32 grid coordinates (row, col) of each target.
    grid_shape: (R, C); image_shape: (H, W).
  """
  context: np.ndarray
  position: np.ndarray
  target: np.ndarray
  coords: np.ndarray
  grid_shape: tuple
  image_shape: tuple

  def __len__(self):
    return self.context.shape[0]

  @property
  def own_target(self) -> np.ndarray:
    """The target patch as it appears in the context (the decoded patch)."""
    return self.context[np.arange(len(self)), self.position]


def make_blocks(grid: PatchGrid, strategy: str = "paper",
                reference: PatchGrid = None) -> Blocks:
  """Forms the block of every patch of `grid`.

  Args:
    grid: patches of the (decoded) image.
    strategy: boundary strategy, see module docstring.
    reference: optional patches of the original image, same geometry; its
      patches become `Blocks.target` (the training target).
  """
  rows, cols, pos, targets = block_indices(grid.grid_shape, strategy)
  context = grid.patches[rows, cols]
  src = grid if reference is None else reference
  if reference is not None and (reference.patches.shape != grid.patches.shape
                                or reference.image_shape != grid.image_shape):
    raise ValueError("reference and decoded image differ in geometry: "
                     f"{reference.patches.shape} vs {grid.patches.shape}")
  target = src.patches[targets[:, 0], targets[:, 1]]
  return Blocks(context, pos, target, targets.astype(np.int32),
                grid.grid_shape, grid.image_shape)


def blocks_from_image(decoded: np.ndarray, d: int, strategy: str = "paper",
                      original: np.ndarray = None) -> Blocks:
  """Image (and optional original) -> `Blocks` in one call."""
  grid = to_patches(decoded, d)
  ref = to_patches(original, d) if original is not None else None
  return make_blocks(grid, strategy, ref)


def assemble(predictions: np.ndarray, grid_shape, image_shape,
             coords: np.ndarray = None) -> np.ndarray:
  """Per-target predictions (N, d, d) -> image (H, W).

  Args:
    predictions: one predicted patch per target.
    grid_shape: (R, C).
    image_shape: (H, W) to crop to.
    coords: (N, 2) target coordinates; defaults to row-major order. Every grid
      cell must be covered exactly once.
  """
  predictions = np.asarray(predictions)
  r, c = grid_shape
  n, d = predictions.shape[0], predictions.shape[-1]
  if n != r * c:
    raise ValueError(f"{n} predictions for a {r}x{c} grid")
  predictions = predictions.reshape(n, d, d)
  if coords is not None:
    coords = np.asarray(coords)
    flat = coords[:, 0] * c + coords[:, 1]
    if not np.array_equal(np.sort(flat), np.arange(n)):
      raise ValueError("coords must cover every grid cell exactly once")
    grid = np.empty_like(predictions)
    grid[flat] = predictions
    predictions = grid
  return from_patches(predictions.reshape(r, c, d, d), image_shape)


# ---- symmetries -------------------------------------------------------------

DIHEDRAL = tuple(range(8))  # bit 2: transpose; bits 0-1: quarter turns


def dihedral(image: np.ndarray, k: int) -> np.ndarray:
  """Symmetry k (0..7) of the square applied to an (H, W) image."""
  if k & 4:
    image = image.T
  return np.rot90(image, k & 3)


def undo_dihedral(image: np.ndarray, k: int) -> np.ndarray:
  """Inverse of `dihedral`."""
  image = np.rot90(image, -(k & 3))
  return image.T if k & 4 else image


def self_ensemble_sum(gray: np.ndarray, d: int, refine, setting=None,
                      transpose_setting=None):
  """(sum, 8): the sum (float64, (H, W)) of ``refine(image, setting)`` over
  the 8 symmetries of `gray`, padded by edge replication to multiples of `d`
  (so every symmetry keeps the patch grid), and how many refinements it sums.

  `transpose_setting`: maps `setting` to the setting of a transposed image
  (JPEG: `tf_hbd.codecs.codec_setting.transpose_setting`); None: the
  setting does not change under the symmetries.
  """
  h, w = gray.shape
  padded = np.pad(gray, ((0, (-h) % d), (0, (-w) % d)), mode="edge")
  total = np.zeros(padded.shape, np.float64)
  for k in DIHEDRAL:
    st = setting
    if (setting is not None and transpose_setting is not None
        and (k & 1) ^ ((k >> 2) & 1)):  # the net map transposes the grid
      st = transpose_setting(setting)
    t = np.ascontiguousarray(dihedral(padded, k))
    total += undo_dihedral(refine(t, st), k)
  return total[:h, :w], len(DIHEDRAL)


def self_ensemble(gray: np.ndarray, d: int, refine, setting=None,
                  transpose_setting=None) -> np.ndarray:
  """The geometric self-ensemble of a refinement: the mean of
  `self_ensemble_sum`'s refinements rounded to uint8 (H, W)."""
  total, n = self_ensemble_sum(gray, d, refine, setting, transpose_setting)
  return np.clip(np.round(total / n), 0, 255).astype(np.uint8)
