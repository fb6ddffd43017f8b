"""A TensorFlow-free runtime for exported decoders (`hbd enhance`'s fast path).

Most of `hbd enhance`'s time on one photo used to be spent importing
TensorFlow and loading the SavedModel, not refining. An export of a plain
`tf_hbd.model.decoder.HybridDecoder` (LSTM, GRU, Elman or MLP cell, float32
weights, float32 or bfloat16 products) also
carries ``hbd_numpy.json``: its architecture and where each weight lies in
the export's own variables data file (raw float32, read with
`numpy.fromfile`; nothing is copied). From these `NumpyModel` runs the same
computation as the export's ``refine`` / ``refine_k`` signatures
(`tf_hbd.inference.serving`) with NumPy only:

1. edge-replication padding to the d x d grid and the 3 x 3 blocks under the
   model's boundary rule (`tf_hbd.codecs.patches`, the NumPy twin of
   `tf_hbd.inference.graph_refine`);
2. per chunk of blocks: ``e = W q [+ b_e] [+ P[position]] [+ S setting]``
   (``q - 0.5`` for centred models), K cell steps (s_0 = 0, so the first
   step needs no recurrent product), ``U s_K + c [+ decoded target]``;
3. the flat-block guard (`tf_hbd.inference.guards.keep_flat_context`), rounding to
   8 bits, and for JPEG models with the codec setting the quantization
   constraint projection (`tf_hbd.codecs.jpeg_constraint.project`) and the
   passthrough of fine settings (`tf_hbd.inference.guards.passthrough`).
   The work around the chunks is per pixel and mostly in place: the
   embedding's inputs are prepared once per pixel, not per block member
   (`_Decoder.inputs`); the decoded image's DCT is taken once for the
   coded-noise passthrough test and the projection (`_Constraint`); an
   8 x 8 patch grid is the projection's block rows as it is; the flat
   guard reads each patch as 64-bit words; one pass casts and reorders the
   result to the uint8 image (fresh megabyte temporaries cost page faults:
   most of the projection's time until 2026-12-05).

The LSTM's gates are computed from one vectorised pass of one
nonlinearity over the gate pre-activations, picked by the CPU (`GATES`):
``np.tanh`` where NumPy runs it as SIMD code (AVX-512: sigmoid(x) = (1 +
tanh(x / 2)) / 2, the halvings folded into the weights), else ``np.exp``
(`sigmoid_exp`, `tanh_exp`; NumPy 1.26's float32 `np.tanh` runs at scalar
speed on AVX2 CPUs). With bfloat16 products the elementwise work between
two products (roundings, gates, state update) can run on `STEP_THREADS`
threads, each on its own rows and pinned to a CPU of its own
(`PIN_STEP_THREADS`; default two threads).

The outputs are deterministic on a given machine (and OpenBLAS setting:
its thread count and kernel change the products' last bits): the same
bits run to run, in fresh processes, and however the rows are split over
step threads (`numpy_serving_test`). They are not the TF path's bits: the float32
products run in another BLAS than TensorFlow's, the nonlinearities and
their formulas differ from TensorFlow's in the last bits, the bfloat16
roundings of the products break ties away from zero (TensorFlow: to even;
ties are ~1e-4 of the products), the projection's DCTs sum in another
order, and on two machines with different gate formulas the NumPy outputs
differ from each other the same way. So a pixel can land on the other side
of a rounding boundary: outputs equal the TF path's within one gray level
on a few pixels, and the shipped decoders' golden PSNR within +-0.01 dB,
with every gate formula (measured figures: BUILD.md, "Speed of hbd
enhance"; pinned by `tf_hbd.inference.numpy_serving_test` and
`tests/golden_test.py`).

`load(path, runtime)` picks the runtime: ``"auto"`` (NumPy when the export
has a valid ``hbd_numpy.json``, else TensorFlow), ``"numpy"`` (an error if it
has none) or ``"tf"`` (`tf_hbd.inference.serving.ServedModel`). The file is bound to
its export by a SHA-256 of ``saved_model.pb`` and the variables; a stale file
is ignored. `tf_hbd.inference.serving.export_serving` writes it (`write_for_model`);
`convert_saved_model` writes it for an older export, identifying the
options the metadata does not record (input centring, residual) from the
export's ``refine_blocks`` signature (``scripts/export_numpy.py``). Models
it cannot run (SNE, SAB, the Delta-RNN cell, float64) keep the TensorFlow
runtime.

bfloat16 products (``matmul_dtype="bfloat16"``, `tf_hbd.model.cells.matmul`) are
reproduced by rounding both factors and the float32 product to bfloat16
(`_bf16_into`); a product that lands near a rounding boundary can round the
other way, so such models differ from the TF path on more pixels (still by
one level at most; measured with ``scripts/export_numpy.py``).
"""

import collections
import concurrent.futures
import ctypes
import functools
import hashlib
import json
import os
import queue
import threading
from typing import Optional

import numpy as np

from tf_hbd.codecs import codec_setting
from tf_hbd.codecs import images as images_lib
from tf_hbd import errors
from tf_hbd.codecs import patches as patches_lib

__all__ = ["RUNTIME_FILE", "RUNTIMES", "CELLS", "NumpyModel", "load",
           "sigmoid_exp", "tanh_exp",
           "load_pretrained", "pretrained_dir", "spec_from_model",
           "write_runtime", "write_for_model", "convert_saved_model",
           "compare_runtimes", "fingerprint", "MAX_PIXELS", "flat_tile_fraction",
           "laplacian_activity", "activity_weight", "SHIFTS", "grid_offsets",
           "shift_image", "check_shifts", "shifted_ensemble"]

RUNTIME_FILE = "hbd_numpy.json"
FORMAT = "tf_hbd-numpy-1"
METADATA_FILE = "hbd_model.json"  # = tf_hbd.inference.serving.METADATA_FILE
PRETRAINED = {"jpeg": "hbd-lstm-jpeg", "jp2": "hbd-lstm-jp2"}  # shipped
RUNTIMES = ("auto", "numpy", "tf")
CELLS = ("lstm", "gru", "elman", "mlp")
# = tf_hbd.inference.graph_refine.DEFAULT_MAX_PIXELS (not imported: it needs TF).
MAX_PIXELS = 120_000_000
# Blocks per pass through the cell: bounds the working set, so that a
# step's elementwise passes run from cache (256 was the fastest of 128 to
# 2048 for the shipped LSTM-512 on the 2-core test machine; BUILD.md).
CHUNK = 256
# Chunks run in this many threads (NumPy and BLAS release the GIL; the
# elementwise work is single-threaded in NumPy otherwise).
THREADS = 1
# The bfloat16 LSTM's elementwise work between two products can run on
# this many threads, each on its own rows (`_Decoder._in_parts`), when
# each gets at least MIN_PART_ROWS rows; the bits are the same. 2, pinned
# (below): on the idle 2-core test machine the warm refine took 0.93x the
# time of one thread (ratio to its products 1.39 against 1.49, three runs
# of `benchmarks/refine_threads.py`); unpinned, no faster; under load the
# pinned pair costs ~0.04 of the ratio (BUILD.md, "Why two step threads
# gave nothing"). Where the workers cannot be pinned (not Linux, fewer
# CPUs) they run unpinned: as fast as one thread, idle (same runs).
STEP_THREADS = 2
MIN_PART_ROWS = 32
# With STEP_THREADS > 1, `_in_parts` hands its ranges to worker threads
# pinned one to a CPU, each to a CPU other than the calling thread's
# (`_step_workers`), when the process may use STEP_THREADS CPUs. Unpinned,
# a woken worker can wait behind the thread that woke it on the same CPU
# while the other CPU runs OpenBLAS's idle worker, which spins
# (`sched_yield`) for about 0.1 s after every product: no CPU is idle for
# the scheduler to choose (BUILD.md, "Why two step threads gave nothing").
# Either way a range whose worker has not started when the calling thread
# is done with its own runs in the calling thread (a busy CPU costs no wait).
PIN_STEP_THREADS = True

_CELL_WEIGHTS = {"lstm": ("V", "b"), "gru": ("V_zr", "b_zr", "V_s", "b_s"),
                 "elman": ("V", "b"), "mlp": ("b",)}
_F32 = np.float32


def _dct8():
  """The orthonormal 8-point DCT-II matrix, float64 (jpeg_constraint's, in
  float32)."""
  k = np.arange(8)[:, None]
  i = np.arange(8)[None, :]
  c = np.sqrt(2.0 / 8) * np.cos(np.pi * (2 * i + 1) * k / 16.0)
  c[0] /= np.sqrt(2.0)
  return c


# The 2-D DCT of 8 x 8 blocks as one product: with the blocks as rows of 64
# (row-major), the rows of C Y C^T are Y's rows times _K2.T, and the inverse
# is a product with _K2 (`_dct_rows`; one BLAS call over the image instead
# of NumPy's loop of 8 x 8 products).
_K2 = np.kron(_dct8(), _dct8()).astype(_F32)


def _dct_rows(x):
  """The 8 x 8 blocks of x (H, W; multiples of 8) as rows of 64 values."""
  h, w = x.shape
  return x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)

# ---- activations ------------------------------------------------------------


def _sigmoid_(x):
  """In-place logistic function, 0.5 tanh(x / 2) + 0.5 (the GRU's gates;
  the LSTM's fold the halving into the weights, `_GATE_FORMULAS`)."""
  x *= _F32(0.5)
  np.tanh(x, out=x)
  x *= _F32(0.5)
  x += _F32(0.5)
  return x


# The LSTM's gates come from one pass of one nonlinearity over the 4n
# pre-activations, whichever is vectorised on the CPU (`GATES`,
# `_GATE_FORMULAS`): NumPy 1.26's float32 `np.tanh` is SIMD on AVX-512 CPUs
# (about half the time of `np.exp` there) and runs at scalar speed on AVX2
# ones, where `np.exp` is vectorised (`benchmarks/numpy_step_profile.py`
# splits a chunk's time by operation).
#
# "exp": with d = 1 + exp(-x), sigmoid(x) = 1 / d and tanh(x) = 2 sigmoid(2x)
# - 1 = 2 / (1 + exp(-2x)) - 1. d lies in [1, inf] for every finite x (exp
# overflows to inf for x < -88, which gives 0 and -1, the limits), so
# nothing divides by zero and no NaN arises; callers run these under
# `_QUIET` (the overflow and underflows are expected). Accuracy against
# float64: `numpy_serving_test.test_gate_nonlinearities_from_exp`.
#
# "tanh": sigmoid(x) = (1 + tanh(x / 2)) / 2; the halvings are folded into
# the weights (exact: powers of two, which commute with the bfloat16
# rounding) and the state is kept doubled (2 s: the next product and the
# readout take V / 2 and U / 2), so a step is one `np.tanh` pass over 4n
# and nine over n (the cell's tanh, three + 1, four products, one sum).
_QUIET = {"over": "ignore", "under": "ignore"}


def _gate_denominator_(z, out=None):
  """1 + exp(z) into `out` (default: z itself; z is -x for a sigmoid of x,
  -2x for a tanh of x: the runtime folds these factors into the weights)."""
  out = z if out is None else out
  np.exp(z, out=out)
  out += _F32(1.0)
  return out


def _tanh_(z, out=None):
  """tanh(z) into `out` (default: z itself)."""
  return np.tanh(z, out=z if out is None else out)


def _tanh_from_denominator_(d):
  """In place: d = 1 + exp(-2x) -> tanh(x) = 2 / d - 1."""
  np.divide(_F32(2.0), d, out=d)
  d -= _F32(1.0)
  return d


def sigmoid_exp(x):
  """float32 logistic function 1 / (1 + exp(-x)) from one `np.exp` pass,
  as the runtime's LSTM gates compute it with ``GATES = "exp"`` (a new
  array)."""
  with np.errstate(**_QUIET):
    d = _gate_denominator_(np.negative(np.asarray(x, _F32)))
    return np.divide(_F32(1.0), d, out=d)


def tanh_exp(x):
  """float32 tanh(x) = 2 / (1 + exp(-2x)) - 1 from one `np.exp` pass, as
  the runtime's LSTM computes it with ``GATES = "exp"`` (a new array)."""
  with np.errstate(**_QUIET):
    z = np.multiply(np.asarray(x, _F32), _F32(-2.0))
    return _tanh_from_denominator_(_gate_denominator_(z))


def _lstm_update_exp_(d, c, s, first):
  """One LSTM state update from the gates' denominators, in place.

  Args:
    d: (f, i, g, o), each (rows, n): 1 + exp(-z) for the sigmoid gates f,
      i, o and 1 + exp(-2 z) for the candidate g (`_gate_denominator_`);
      overwritten (g becomes i * tanh(z_g)).
    c: (rows, n) cell state, updated (written when `first`: c_0 = 0).
    s: (rows, n) output state, written: o * tanh(c).
    first: the first step (f is not read).
  """
  f, i, g, o = d
  _tanh_from_denominator_(g)                  # c~ = tanh(z_g)
  np.divide(g, i, out=g)                      # i * c~ (i = 1 / d_i)
  if first:                                   # c_0 = 0
    c[...] = g
  else:
    np.divide(c, f, out=c)
    c += g
  np.multiply(c, _F32(-2.0), out=s)
  _tanh_from_denominator_(_gate_denominator_(s))
  np.divide(s, o, out=s)                      # o * tanh(c)
  return s


def _lstm_update_tanh_(t, c, s, first):
  """One LSTM state update from the gates' tanh, in place.

  Args:
    t: (f, i, g, o), each (rows, n): tanh(z / 2) for the sigmoid gates f,
      i, o and tanh(z) for the candidate g (`_tanh_`); overwritten.
    c: (rows, n) cell state, updated (written when `first`: c_0 = 0).
    s: (rows, n) output state, written doubled: 2 o tanh(c).
    first: the first step (f is not read).
  """
  f, i, g, o = t
  i += _F32(1.0)                              # 2 i
  if first:                                   # c_0 = 0
    np.multiply(g, i, out=c)
  else:
    g *= i                                    # 2 i c~
    f += _F32(1.0)                            # 2 f
    c *= f
    c += g
  c *= _F32(0.5)                              # f c + i c~
  np.tanh(c, out=s)
  o += _F32(1.0)
  s *= o                                      # 2 o tanh(c)
  return s


# A gate formula: the nonlinearity pass over the pre-activations (in place
# or into `out`), the state update from its results, the factors of the f,
# i, g, o pre-activations (folded into V and b, and applied to e) and the
# factor the state carries (V and U are divided by it).
_GateFormula = collections.namedtuple("_GateFormula",
                                      "pass_ update scales state")


_GATE_FORMULAS = {
    "exp": _GateFormula(_gate_denominator_, _lstm_update_exp_,
                        (-1.0, -1.0, -2.0, -1.0), 1.0),
    "tanh": _GateFormula(_tanh_, _lstm_update_tanh_, (0.5, 0.5, 1.0, 0.5),
                         2.0),
}


def _tanh_is_simd():
  """Whether NumPy dispatches float32 `np.tanh` to AVX-512 code here."""
  try:
    from numpy.core._multiarray_umath import __cpu_features__  # pylint: disable=g-import-not-at-top
  except ImportError:  # another NumPy layout: take the exp formula
    return False
  return bool(__cpu_features__.get("AVX512_SKX"))


# The LSTM gate formula (`_GATE_FORMULAS`), read when a model is loaded: a
# property of the CPU, so the bits are the same run to run on one machine
# and may differ by a float32 rounding between machines.
GATES = "tanh" if _tanh_is_simd() else "exp"


def _activation_(name, x):
  if name == "tanh":
    return np.tanh(x, out=x)
  if name == "sigmoid":
    return _sigmoid_(x)
  if name == "relu":
    return np.maximum(x, 0, out=x)
  raise ValueError(f"unknown activation {name!r}")


def _bf16(x):
  """float32 -> the nearest bfloat16 (ties to even), kept as float32: what
  ``tf.cast(x, tf.bfloat16)`` gives (the weights, rounded once at load)."""
  u = np.ascontiguousarray(x, _F32).view(np.uint32)
  r = u >> np.uint32(16)
  r &= np.uint32(1)
  r += np.uint32(0x7FFF)
  r += u
  r &= np.uint32(0xFFFF0000)
  return r.view(_F32)


def _bf16_into(x, out):
  """x (float32, C-contiguous) rounded to the nearest bfloat16, ties away
  from zero, into `out` (float32, x's shape; may be x): two integer
  passes, where ties to even (`_bf16`) take five. It differs from `_bf16`
  only on ties (the low 16 bits exactly 0x8000: about 1.2e-4 of the
  shipped JPEG decoder's embedding products and 3.5e-5 of its recurrent
  ones, `benchmarks/numpy_step_profile.py`'s tie counts), by one
  bfloat16 step away from zero; subnormals and infinities round the same
  way, and a finite x at the top of the range rounds to inf, as in
  ``tf.cast`` (`numpy_serving_test`)."""
  r = out.view(np.uint32)
  np.add(x.view(np.uint32), np.uint32(0x8000), out=r)
  r &= np.uint32(0xFFFF0000)
  return out


# ---- step threads -----------------------------------------------------------


class _Workers:
  """Threads that each run the calls queued for them (`submit`), each
  pinned to one CPU when given one; daemon threads, started at once."""

  def __init__(self, cpus, allowed=()):
    self.cpus = list(cpus)
    self.pinned = all(cpu is not None for cpu in cpus)
    self._allowed = set(allowed)  # for unpinned threads: not the creator's
    self._queues = [queue.SimpleQueue() for _ in cpus]
    started = threading.Barrier(len(cpus) + 1)
    for q, cpu in zip(self._queues, cpus):
      threading.Thread(target=self._serve, args=(q, cpu, started),
                       name="hbd-step", daemon=True).start()
    started.wait()

  def _serve(self, q, cpu, started):
    mask = self._allowed if cpu is None else {cpu}
    if mask:
      try:
        os.sched_setaffinity(0, mask)  # 0: this thread (Linux)
      except OSError:
        self.pinned = False
    np.seterr(**_QUIET)  # this thread's (NumPy keeps it per thread)
    started.wait()
    while True:
      future, fn, args = q.get()
      if future.set_running_or_notify_cancel():
        try:
          future.set_result(fn(*args))
        except BaseException as e:  # pylint: disable=broad-except
          future.set_exception(e)

  def submit(self, i, fn, *args):
    """fn(*args) on thread i: a `concurrent.futures.Future`."""
    future = concurrent.futures.Future()
    self._queues[i].put((future, fn, args))
    return future


_WORKERS = {}
_WORKERS_LOCK = threading.Lock()


def _step_workers(count):
  """The worker threads `_in_parts` uses for `count` ranges, shared by
  every decoder: one pinned to each of the first `count` CPUs the process
  (its main thread) may use, when PIN_STEP_THREADS and there are that
  many; else count - 1 unpinned."""
  key = (count, bool(PIN_STEP_THREADS))
  with _WORKERS_LOCK:
    if key not in _WORKERS:
      try:
        allowed = sorted(os.sched_getaffinity(os.getpid()))
      except (AttributeError, OSError):  # not Linux
        allowed = []
      cpus = [None] * (count - 1)
      if PIN_STEP_THREADS and len(allowed) >= count:
        cpus = allowed[:count]
      _WORKERS[key] = _Workers(cpus, allowed)
    return _WORKERS[key]


@functools.lru_cache(maxsize=None)
def _sched_getcpu():
  try:
    return ctypes.CDLL(None).sched_getcpu  # glibc
  except (AttributeError, OSError):
    return None


def _current_cpu():
  """The CPU this thread runs on, or -1 where that is not known."""
  getcpu = _sched_getcpu()
  return int(getcpu()) if getcpu is not None else -1


def _helpers(workers, count):
  """`count` workers' indices for the ranges after the first: pinned
  ones on CPUs other than this thread's current CPU."""
  if not workers.pinned:
    return list(range(count))
  here = _current_cpu()
  return [i for i, cpu in enumerate(workers.cpus) if cpu != here][:count]


# ---- the decoder ------------------------------------------------------------


class _Decoder:
  """The HybridDecoder forward pass (`predict_last`) on NumPy arrays."""

  def __init__(self, spec, weights):
    self.spec = spec
    self.cell = spec["cell"]
    if self.cell not in CELLS:
      raise ValueError(f"cell {self.cell!r} has no NumPy runtime")
    self.n = int(spec["units"])
    self.d = int(spec["patch_size"])
    self.tied = bool(spec.get("tied", True))
    self.activation = spec.get("activation", "tanh")
    self.center = bool(spec["center_inputs"])
    # bfloat16 products (`tf_hbd.model.cells.matmul`): both factors and the
    # product rounded to bfloat16, the sum in float32.
    self.bf16 = spec.get("matmul_dtype") == "bfloat16"
    if spec.get("matmul_dtype") not in (None, "bfloat16"):
      raise ValueError(f"matmul_dtype {spec['matmul_dtype']!r} has no NumPy "
                       "runtime")
    self.residual = bool(spec["residual"])
    self._local = threading.local()  # per-thread step buffers (_buffers)
    w = {k: np.ascontiguousarray(v, _F32) for k, v in weights.items()}
    self.w = w
    self.W = w["W"]
    self.b_e = w.get("b_e") if spec["embed_bias"] else None
    self.P = w.get("P") if spec["use_position"] else None
    self.S = w.get("S") if int(spec.get("setting_size", 0)) else None
    self.U, self.c = w["U"], w["c"]
    for name in _CELL_WEIGHTS[self.cell]:
      if "cell." + name not in w:
        raise ValueError(f"{self.cell} weights lack {name}")
    if self.bf16:  # the matmul weights, rounded once
      self.W, self.U = _bf16(self.W), _bf16(self.U)
      for name in ("cell.V", "cell.V_zr", "cell.V_s"):
        if name in w:
          w[name] = _bf16(w[name])
    self._readout = self.U
    if self.cell == "lstm":  # see _lstm
      self._gates = _GATE_FORMULAS[GATES]
      scale = np.repeat(np.asarray(self._gates.scales, _F32), self.n)
      self._lstm_vb = (w["cell.V"] * (scale / _F32(self._gates.state)),
                       w["cell.b"] * scale, scale)
      self._readout = self.U / _F32(self._gates.state)

  def _mm(self, a, b, out=None, rounded=False):
    """a @ b (b already rounded when the model's products are bfloat16; a
    too when `rounded`)."""
    if not self.bf16:
      return np.matmul(a, b, out=out)
    if not rounded:
      a = np.ascontiguousarray(a, _F32)
      a = _bf16_into(a, np.empty_like(a))
    y = np.matmul(a, b)
    return _bf16_into(y, y if out is None else out)

  def inputs(self, x):
    """What the embedding's product takes of blocks x in [0, 1] (float32,
    any shape, C-contiguous): x - 1/2 for centred models, rounded to
    bfloat16 for bfloat16 products. Elementwise, so that `refine` takes it
    per pixel, before the blocks are cut (`predict_inputs`)."""
    if self.center:
      x = x - _F32(0.5)
    return _bf16_into(x, np.empty_like(x)) if self.bf16 else x

  def embed(self, x, position, setting_row, prepared=False):
    """e for flattened blocks x (B, 9 d^2) in [0, 1] (or their `inputs`
    when `prepared`)."""
    if not prepared:
      x = self.inputs(np.ascontiguousarray(x, _F32))
    e = self._mm(x, self.W, rounded=True)
    if self.b_e is not None:
      e += self.b_e
    if self.P is not None and setting_row is not None:
      e += (self.P + setting_row)[position]  # one pass over e, not two
    elif self.P is not None:
      e += self.P[position]
    elif setting_row is not None:
      e += setting_row
    return e

  def _scaled_eb(self, e, out):
    """(e + b) times the gate columns' factors (`_lstm`) into `out`
    (rows, 4n); e is broadcast to the four gates when the cell is tied."""
    n = self.n
    _, b, scale = self._lstm_vb
    if self.tied:
      np.multiply(e[:, None, :], scale.reshape(4, n),
                  out=out.reshape(-1, 4, n))
    else:
      np.multiply(e, scale, out=out)
    out += b  # b was scaled at load
    return out

  def _lstm(self, e, k):
    """LSTM steps with every gate from one pass of one nonlinearity
    (`GATES`, `_GATE_FORMULAS`): the gate columns of V and b were
    multiplied once by the formula's factors (-1 and -2 for exp, 1/2 and 1
    for tanh) and V by 1 / the state's factor, which is exact (powers of
    two; bfloat16 rounding commutes with them), so that the nonlinearity
    of the scaled pre-activations gives what the formula's state update
    takes (`_lstm_update_exp_`, `_lstm_update_tanh_`). Returns the state
    times the formula's factor (the readout takes U / that factor)."""
    n, rows = self.n, e.shape[0]
    v, gates = self._lstm_vb[0], self._gates
    eb = self._scaled_eb(e, np.empty((rows, 4 * n), _F32))
    z = np.empty_like(eb)
    c, s = np.empty((rows, n), _F32), np.empty((rows, n), _F32)
    for step in range(k):
      if step == 0:  # s_0 = 0: V s_0 = 0
        z[...] = eb
      else:
        self._mm(s, v, out=z)
        z += eb
      with np.errstate(**_QUIET):
        gates.pass_(z)
        gates.update([z[:, j * n:(j + 1) * n] for j in range(4)], c, s,
                     step == 0)
    return s

  def _buffers(self, rows):
    """This thread's step buffers for `rows` blocks, reused from chunk to
    chunk: fresh multi-megabyte arrays per chunk cost a page fault per
    4 KB (about a tenth of `refine`'s time on the test machine)."""
    n = self.n
    ws = getattr(self._local, "ws", None)
    if ws is None or ws[0] < rows:
      big = [np.empty(rows * 4 * n, _F32) for _ in range(3)]
      small = [np.empty(rows * n, _F32) for _ in range(3)]
      ws = self._local.ws = (rows, big, small)
    _, big, small = ws
    return ([a[:rows * 4 * n].reshape(rows, 4 * n) for a in big[:2]] +
            [big[2][:rows * 4 * n].reshape(4, rows, n)] +
            [a[:rows * n].reshape(rows, n) for a in small])

  def _lstm_bf16(self, e, k):
    """`_lstm` for bfloat16 products: the same arithmetic, element for
    element, on reused buffers (`_buffers`), gate-major after the
    nonlinearity pass, and the elementwise work between two products on
    several threads.

    The product s V is one (rows, n) x (n, 4n) product as before (products
    of column blocks, or of row blocks, could sum in another order inside
    OpenBLAS), written into a buffer; the rest of a step is elementwise, so
    it runs on disjoint row ranges at once (`_in_parts`, `_lstm_rows_`)
    and gives the same bits however the rows are split. The state returned
    lives in the buffers: it is valid until this thread's next call."""
    rows, v = e.shape[0], self._lstm_vb[0]
    bufs = self._buffers(rows)
    s, s_bf, prod = bufs[3], bufs[4], bufs[1]
    with np.errstate(**_QUIET):  # here; the step workers set it at start
      for step in range(k):
        if step:
          np.matmul(s_bf, v, out=prod)  # s_bf: bf16(s) of the step before
        self._in_parts(rows, lambda a, b, st=step: self._lstm_rows_(
            bufs, a, b, st, k, e))
    return s

  def _lstm_rows_(self, bufs, a, b, step, k, e):
    """One `_lstm_bf16` step's elementwise work on rows a:b, in place.

    Step 0 (s_0 = 0, so V s_0 = 0): the scaled (e + b) of these rows
    (`_scaled_eb`). Later steps: s V, in its buffer, rounded to bfloat16
    in place (`_bf16_into`) and shifted by (e + b). Then the gates'
    nonlinearity pass writes its results gate-major, four contiguous
    (rows, n) blocks (NumPy's passes over column slices of a (rows, 4n)
    array are several times slower; step 0 skips f, which c_0 = 0 makes
    unneeded), the state update (`_GATE_FORMULAS`), and bf16(s) for the
    next product (not after the last step). Nothing is allocated. Runs
    under `_QUIET` (`_lstm_bf16`, `_Workers`): exp overflows on purpose."""
    eb, prod, pre, s, s_bf, c = (
        x[:, a:b] if i == 2 else x[a:b] for i, x in enumerate(bufs))
    gates = self._gates
    if step == 0:
      z = self._scaled_eb(e[a:b], eb)
    else:
      z = _bf16_into(prod, prod)
      z += eb
    g = 1 if step == 0 else 0
    gates.pass_(z.reshape(b - a, 4, self.n).transpose(1, 0, 2)[g:], pre[g:])
    gates.update(pre, c, s, step == 0)
    if step + 1 < k:
      _bf16_into(s, s_bf)

  def _in_parts(self, rows, fn):
    """[fn(a, b)] over `rows` split into STEP_THREADS ranges (fewer when a
    range would have under MIN_PART_ROWS rows), run at once: the first
    in this thread, the others on the shared `_step_workers` (NumPy's
    ufuncs release the GIL, so the elementwise work uses the cores the
    BLAS products use); a range its worker has not started by the time
    the first is done runs here instead."""
    parts = max(1, min(STEP_THREADS, rows // MIN_PART_ROWS))
    if parts == 1:
      return [fn(0, rows)]
    bounds = [rows * i // parts for i in range(parts + 1)]
    workers = _step_workers(STEP_THREADS)
    futures = [workers.submit(i, fn, bounds[j], bounds[j + 1])
               for j, i in enumerate(_helpers(workers, parts - 1), 1)]
    out = [fn(bounds[0], bounds[1])]
    for j, future in enumerate(futures, 1):
      out.append(fn(bounds[j], bounds[j + 1]) if future.cancel()
                 else future.result())
    return out

  def _gru(self, e, k):
    v_zr, b_zr = self.w["cell.V_zr"], self.w["cell.b_zr"]
    v_s, b_s = self.w["cell.V_s"], self.w["cell.b_s"]
    n = self.n
    e_z, e_r, e_s = ((e, e, e) if self.tied else
                     (e[:, :n], e[:, n:2 * n], e[:, 2 * n:]))
    s = np.zeros((e.shape[0], n), _F32)
    for _ in range(k):
      pre = self._mm(s, v_zr) + b_zr
      z = _sigmoid_(e_z + pre[:, :n])
      r = _sigmoid_(e_r + pre[:, n:])
      cand = e_s + self._mm(r * s, v_s)
      cand += b_s
      np.tanh(cand, out=cand)
      s = z * cand + (_F32(1.0) - z) * s
    return s

  def _elman(self, e, k):
    v, b = self.w["cell.V"], self.w["cell.b"]
    s = None
    for step in range(k):
      pre = e.copy() if step == 0 else e + self._mm(s, v)
      pre += b
      s = _activation_(self.activation, pre)
    return s

  def _mlp(self, e, k):
    del k  # stateless: every step gives the same s
    pre = e + self.w["cell.b"]
    return _activation_(self.activation, pre)

  def predict_last(self, x, position, k, setting_row=None):
    """(B, 9 d^2) blocks in [0, 1] -> (B, d^2) K-th reconstruction."""
    dd = self.d * self.d
    target = x.reshape(-1, 9, dd)[np.arange(x.shape[0]), position]
    return self.predict_inputs(self.inputs(np.ascontiguousarray(x, _F32)),
                               target, position, k, setting_row)

  def predict_inputs(self, inputs, target, position, k, setting_row=None):
    """`predict_last` from the blocks' `inputs` (B, 9 d^2) and their
    target patches (B, d^2) in [0, 1] (block member `position`)."""
    e = self.embed(inputs, position, setting_row, prepared=True)
    cell = self.cell + ("_bf16" if self.bf16 and self.cell == "lstm" else "")
    s = getattr(self, "_" + cell)(e, k)
    p = self._mm(s, self._readout)
    p += self.c
    if self.residual:
      p += target
    return p


# ---- whole images -----------------------------------------------------------


def _table_from_setting(setting):
  steps = np.round(np.exp(setting.astype(_F32) * np.log(_F32(255.0))))
  natural = np.zeros(64, _F32)
  natural[codec_setting.ZIGZAG] = steps
  return natural.reshape(8, 8)


def _pad8(x):
  """x edge-padded to multiples of 8 (x itself when it is)."""
  h, w = x.shape
  if not h % 8 and not w % 8:
    return x
  return np.pad(x, ((0, (-h) % 8), (0, (-w) % 8)), mode="edge")


def _blocks8(x):
  h, w = x.shape
  return x.reshape(h // 8, 8, w // 8, 8).transpose(0, 2, 1, 3)


class _Constraint:
  """The decoded JPEG's side of the quantization constraint, computed once
  per image and shared by the coded-noise passthrough test
  (`noise_rms`) and the projection (`project`): its 8 x 8 blocks' DCT
  (one product with `_K2`), their quantization levels and which blocks
  touch 0 or 255. Every pass writes in place where it can: fresh
  megabyte temporaries cost page faults (most of the projection's time
  before 2026-12-05)."""

  def __init__(self, decoded, table):
    blocks = _dct_rows(_pad8(np.asarray(decoded)))  # uint8 (N, 64)
    self.q = np.asarray(table, _F32).reshape(64)
    z = blocks.astype(_F32)
    z -= _F32(128.0)
    self.zc = z @ _K2.T
    self.levels = np.divide(self.zc, self.q, out=z)
    np.round(self.levels, out=self.levels)
    # A value at -128 or 127 after the shift: the decoder clipped the block.
    self.clipped = np.logical_or(blocks == 0, blocks == 255).any(axis=1)

  def noise_rms(self):
    """`coded_noise_rms` of the decoded image."""
    noise = np.where(self.levels != 0, np.square(self.q) / _F32(12.0),
                     _F32(0.0))
    return float(np.sqrt(np.mean(noise, dtype=_F32)))

  def _bounds(self, slack, clipped_slack):
    """The interval (lo, hi) each DCT coefficient is clipped to."""
    lo = self.levels * self.q  # the centres
    half = _F32(slack) + self.q / _F32(2.0)
    hi = lo + half
    lo -= half
    if self.clipped.any():  # centred on the decoded coefficient itself
      half = _F32(clipped_slack) + self.q / _F32(2.0)
      zc = self.zc[self.clipped]
      lo[self.clipped] = zc - half
      hi[self.clipped] = zc + half
    return lo, hi

  def project(self, blocks, shape, slack=0.5, clipped_slack=1.0):
    """`project` of the refined image's 8 x 8 blocks (N, 64), float32
    gray levels of the padded image (overwritten), to uint8 `shape`."""
    blocks -= _F32(128.0)
    yc = blocks @ _K2.T
    lo, hi = self._bounds(slack, clipped_slack)
    np.maximum(yc, lo, out=yc)
    np.minimum(yc, hi, out=yc)
    out = np.matmul(yc, _K2, out=blocks)
    out += _F32(128.0)
    np.round(out, out=out)
    np.clip(out, 0, 255, out=out)
    h, w = shape
    return _image_u8(out.reshape(-(-h // 8), -(-w // 8), 8, 8), shape)


def _image_u8(grid, shape):
  """A grid of d x d patches (R, C, d, d), float32 holding 0..255, as the
  uint8 image cropped to `shape` (H, W): cast and reordered in one pass."""
  r, c, d, _ = grid.shape
  image = np.empty((r * d, c * d), np.uint8)
  np.copyto(image.reshape(r, d, c, d), grid.transpose(0, 2, 1, 3),
            casting="unsafe")
  h, w = shape
  if (r * d, c * d) == (h, w):
    return image
  return np.ascontiguousarray(image[:h, :w])


def project(refined, decoded, table, slack=0.5, clipped_slack=1.0):
  """NumPy `tf_hbd.codecs.jpeg_constraint.project` (float32; the DCTs as
  products with `_K2`, so sums in another order than TensorFlow's)."""
  blocks = _dct_rows(_pad8(np.asarray(refined))).astype(_F32)
  return _Constraint(decoded, table).project(blocks, np.shape(decoded),
                                             slack, clipped_slack)


def coded_noise_rms(decoded, setting):
  """NumPy `tf_hbd.inference.guards.jpeg_coded_noise_rms` (float32)."""
  table = _table_from_setting(np.asarray(setting, _F32).reshape(-1))
  return _Constraint(decoded, table).noise_rms()


def flat_tile_fraction(gray):
  """NumPy `tf_hbd.inference.guards.flat_tile_fraction` (exact)."""
  t = _blocks8(_pad8(np.asarray(gray)))
  return float(np.mean(t.max(axis=(2, 3)) == t.min(axis=(2, 3))))


def laplacian_activity(gray):
  """NumPy `tf_hbd.inference.guards.laplacian_activity` (exact)."""
  x = np.asarray(gray).astype(np.int64)
  lap = (4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] -
         x[1:-1, 2:])
  return float(np.abs(lap).sum()) / max(lap.size, 1)


def _jp2_content_passthrough(options, setting, gray):
  """The `guards.passthrough` content tests of JPEG 2000 images."""
  max_flat = float(options.get("jp2_max_flat_fraction", 0.0))
  per_bpp = float(options.get("jp2_min_activity_per_bpp", 0.0))
  bpp64 = 2.0 ** (4.0 * float(setting[0]))  # float64, as the TF graph
  return bool((max_flat > 0 and flat_tile_fraction(gray) >= max_flat) or
              (per_bpp > 0 and laplacian_activity(gray) < per_bpp * bpp64))


def activity_weight(gray, setting, low, high):
  """NumPy `tf_hbd.inference.guards.activity_weight` (float32)."""
  bpp64 = 2.0 ** (4.0 * float(np.asarray(setting, _F32).reshape(-1)[0]))
  w = (laplacian_activity(gray) / bpp64 - float(low)) / (
      float(high) - float(low))
  return _F32(min(max(w, 0.0), 1.0))


def _activity_ramp(gray, refined, setting, options):
  """`tf_hbd.inference.guards.blend` by `activity_weight` (if configured)."""
  low = float(options.get("jp2_min_activity_per_bpp", 0.0))
  high = float(options.get("jp2_full_activity_per_bpp", 0.0))
  if not high > low:
    return refined
  w = activity_weight(gray, setting, low, high)
  d = gray.astype(_F32)
  out = np.round(d + w * (refined.astype(_F32) - d))
  return np.clip(out, 0, 255).astype(np.uint8)


def _passthrough(codec, setting, options, gray=None, constraint=None):
  jpeg_min_noise = float(options.get("jpeg_min_noise", 0.0))
  jp2_max_bpp = float(options.get("jp2_max_bpp", 0.0))
  jpeg_min_coded = float(options.get("jpeg_min_coded_noise", 0.0))
  setting = setting.astype(_F32).reshape(-1)
  if codec == "jpeg" and (jpeg_min_noise > 0 or jpeg_min_coded > 0):
    steps = np.round(np.exp(setting * np.log(_F32(255.0))))
    if jpeg_min_noise > 0 and float(
        np.sqrt(np.mean(steps * steps) / _F32(12.0))) < jpeg_min_noise:
      return True
    if jpeg_min_coded <= 0:
      return False
    noise = (coded_noise_rms(gray, setting) if constraint is None
             else constraint.noise_rms())  # `_Constraint` of gray, setting
    return noise < jpeg_min_coded
  if codec == "jp2" and jp2_max_bpp > 0:
    bpp = np.power(_F32(2.0), _F32(4.0) * setting[0])
    if float(bpp) >= float(_F32(jp2_max_bpp) * _F32(1.0 - 1e-6)):
      return True
  if codec == "jp2" and gray is not None:
    return _jp2_content_passthrough(options, setting, gray)
  return False


# Grid-shift ensembles (`NumpyModel.refine(shifts=)`): how many offsets of
# the patch grid, each by half a patch.
SHIFTS = (1, 2, 4)


def check_shifts(shifts, codec):
  """`shifts` as an int in `SHIFTS`; HbdError otherwise, or for shifts > 1
  with a JPEG model (its corrections and the quantization-constraint
  projection belong to the JPEG's own 8 x 8 grid)."""
  n = int(shifts)
  if n not in SHIFTS:
    raise errors.HbdError(f"shifts must be one of {list(SHIFTS)}, got "
                          f"{shifts!r}")
  if n > 1 and codec == "jpeg":
    raise errors.HbdError("grid shifts are for JPEG 2000 models; a JPEG "
                          "decoder works on the JPEG's own 8x8 grid")
  return n


def grid_offsets(shifts: int, patch_size: int):
  """The (rows, columns) offsets of the patch grid for `shifts` passes:
  (0, 0); then (h, h); then (0, h) and (h, 0), h = patch_size // 2."""
  h = patch_size // 2
  return ((0, 0), (h, h), (0, h), (h, 0))[:check_shifts(shifts, None)]


def shift_image(gray, offset):
  """`gray` (H, W) with offset[0] rows and offset[1] columns mirrored in
  above and to the left (reflection without repeating the edge pixel, as
  often as a tiny image needs), so that the patch grid starts that far
  above and to the left of the image; crop with
  ``out[offset[0]:, offset[1]:]``."""
  dy, dx = (int(v) for v in offset)
  if not dy and not dx:
    return gray
  mode = "reflect" if min(gray.shape) > 1 else "edge"
  return np.pad(gray, ((dy, 0), (dx, 0)), mode=mode)


def shifted_ensemble(gray, d, refine, setting=None, transpose_setting=None,
                     shifts=1, ensemble=False):
  """The mean, rounded to uint8 (H, W), of ``refine(image, setting)`` over
  `gray` shifted to each of `shifts` grid offsets (`grid_offsets`,
  `shift_image`, cropped back) and, with `ensemble`, over each shifted
  image's 8 symmetries (`tf_hbd.codecs.patches.self_ensemble_sum`). Both
  runtimes' `refine(shifts=, ensemble=)`."""
  h, w = gray.shape
  total = np.zeros((h, w), np.float64)
  count = 0
  for dy, dx in grid_offsets(shifts, d):
    img = shift_image(gray, (dy, dx))
    if ensemble:
      part, n = patches_lib.self_ensemble_sum(img, d, refine, setting,
                                              transpose_setting)
    else:
      part, n = np.asarray(refine(img, setting), np.float64), 1
    total += part[dy:, dx:]
    count += n
  return np.clip(np.round(total / count), 0, 255).astype(np.uint8)


def fingerprint(path: str) -> str:
  """SHA-256 of an export's saved_model.pb and variables files."""
  h = hashlib.sha256()
  names = ["saved_model.pb"]
  var_dir = os.path.join(path, "variables")
  if os.path.isdir(var_dir):
    names += [os.path.join("variables", f) for f in sorted(os.listdir(
        var_dir))]
  for name in names:
    h.update(name.encode() + b"\0")
    with open(os.path.join(path, name), "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
  return h.hexdigest()


class _Unsupported(Exception):
  """The export has no usable NumPy runtime (the message says why)."""


class NumpyModel(codec_setting.TakesSetting):
  """A loaded export run with NumPy: `refine(gray uint8, K=None) -> uint8`,
  `metadata`, like `tf_hbd.inference.serving.ServedModel`."""

  runtime = "numpy"

  def __init__(self, path: str):
    path = os.fspath(path)
    meta_path = os.path.join(path, METADATA_FILE)
    spec_path = os.path.join(path, RUNTIME_FILE)
    if not os.path.isfile(spec_path):
      raise _Unsupported(f"no {RUNTIME_FILE}")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
      raise _Unsupported("no saved_model.pb")
    try:
      with open(meta_path) as f:
        self.metadata = json.load(f)
      with open(spec_path) as f:
        spec = json.load(f)
    except (OSError, ValueError) as e:
      raise _Unsupported(f"unreadable {RUNTIME_FILE} or {METADATA_FILE} "
                         f"({type(e).__name__}: {e})") from e
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
      raise _Unsupported(f"{RUNTIME_FILE} is not in the format this version "
                         f"reads ({FORMAT!r})")
    if spec.get("fingerprint") != fingerprint(path):
      raise _Unsupported(f"{RUNTIME_FILE} was written for another version of "
                         "this export (fingerprint differs)")
    try:
      weights = _read_weights(path, spec["weights"])
      self._decoder = _Decoder(spec, weights)
    except (ValueError, KeyError, TypeError, OSError) as e:
      raise _Unsupported(f"{type(e).__name__}: {e}") from e
    self.path = path
    self.spec = spec
    self._d = int(spec["patch_size"])
    self._boundary = str(spec["boundary"])
    self._k = int(spec["K"])
    self._pool = None

  def refine(self, image, K: Optional[int] = None, setting=None,
             source: Optional[str] = None,
             ensemble: bool = False,
             shifts: Optional[int] = None) -> np.ndarray:
    """Refines a decoded gray uint8 image (H, W) or (H, W, 1); the arguments
    are those of `tf_hbd.inference.serving.ServedModel.refine`."""
    shape = np.shape(image)
    gray = images_lib.check_gray(image)  # the output keeps the input's shape
    if gray.size > MAX_PIXELS:
      raise errors.ResourceLimitError(
          f"image too large: {gray.size} pixels; the limit is {MAX_PIXELS} "
          "(refine tiles of it instead)")
    k = self._k if K is None else int(K)
    if k < 1:
      raise errors.HbdError(f"K must be >= 1, got {k}")
    setting = self.setting_for(setting, source, shape[:2])
    n = check_shifts(self.metadata.get("grid_shifts", 1) if shifts is None
                     else shifts, self.codec)
    if ensemble or n > 1:
      return shifted_ensemble(
          gray, self._d, lambda t, st: self._refine(t, k, st), setting,
          codec_setting.transpose_setting if self.codec == "jpeg" else None,
          n, ensemble).reshape(shape)
    return self._refine(gray, k, setting).reshape(shape)

  def _refine(self, gray, k, setting):
    meta = self.metadata
    passthrough = meta.get("passthrough") or {}
    constraint = None  # the decoded image's DCT, shared by guard and projection
    if setting is not None and (meta.get("jpeg_projection") or (
        self.codec == "jpeg" and
        float(passthrough.get("jpeg_min_coded_noise", 0.0)) > 0)):
      constraint = _Constraint(gray, _table_from_setting(setting))
    if setting is not None and passthrough and _passthrough(
        self.codec, setting, passthrough, gray, constraint):
      return gray.copy()
    levels = self._refine_blocks(gray, k, setting)
    if setting is not None and meta.get("jpeg_projection"):
      return constraint.project(_blocks_of(levels, gray.shape), gray.shape)
    out = _image_u8(levels, gray.shape)
    if setting is not None and self.codec == "jp2" and passthrough:
      out = _activity_ramp(gray, out, setting, passthrough)
    return out

  def _refine_blocks(self, gray, k, setting):
    """The refined patch grid (R, C, d, d): float32 gray levels, rounded
    and clipped to 0..255 (the padding's patches included)."""
    d = self._d
    grid = patches_lib.to_patches(gray, d)
    r, c = grid.grid_shape
    rows, cols, position, _ = patches_lib.block_indices((r, c),
                                                        self._boundary)
    setting_row = (None if setting is None or self._decoder.S is None
                   else setting[None] @ self._decoder.S)
    flat = (_flat_blocks(grid.patches, rows, cols)
            if self.metadata.get("flat_guard", False) else None)
    n = r * c
    dd = d * d
    preds = np.empty((n, dd), _F32)
    # Per pixel, not per block member (each pixel is in nine blocks): the
    # patches in [0, 1] (block i's target is patch i) and the embedding's
    # inputs, gathered per chunk.
    unit = np.divide(grid.patches.reshape(n, dd), _F32(255.0), dtype=_F32)
    inputs = self._decoder.inputs(unit)
    members = rows * c + cols  # (n, 9) patch numbers

    def run(start):
      stop = min(n, start + CHUNK)
      x = np.take(inputs, members[start:stop], axis=0)
      own = unit[start:stop]
      p = self._decoder.predict_inputs(x.reshape(stop - start, 9 * dd), own,
                                       position[start:stop], k, setting_row)
      if flat is not None and flat[start:stop].any():
        keep = flat[start:stop]  # tf_hbd.inference.guards.keep_flat_context
        p[keep] = own[keep]
      p *= _F32(255.0)  # to gray levels while the chunk is in cache
      out = preds[start:stop]  # chunks write disjoint rows
      np.round(p, out=out)
      np.clip(out, 0, 255, out=out)

    starts = range(0, n, CHUNK)
    if THREADS > 1 and len(starts) > 1:
      if self._pool is None:
        self._pool = concurrent.futures.ThreadPoolExecutor(THREADS)
      list(self._pool.map(run, starts))
    else:
      for start in starts:
        run(start)
    return preds.reshape(r, c, d, d)


def _flat_blocks(patches, rows, cols):
  """Whether each block's nine patches (`block_indices`' rows, cols) hold
  one gray level (`tf_hbd.inference.guards.keep_flat_context`): whether
  each patch is flat and its level, in one pass over the image (flat: its
  bytes, read as 64-bit words, all repeat its first byte)."""
  r, c = patches.shape[:2]
  flat = np.ascontiguousarray(patches).reshape(r * c, -1)
  level = flat[:, 0]
  if flat.shape[1] % 8:
    same = (flat == level[:, None]).all(axis=1)
  else:
    word = level.astype(np.uint64) * np.uint64(0x0101010101010101)
    same = (flat.view(np.uint64) == word[:, None]).all(axis=1)
  index = rows * c + cols
  level = level[index]
  return same[index].all(axis=1) & (level == level[:, :1]).all(axis=1)


def _blocks_of(levels, shape):
  """The 8 x 8 blocks (N, 64) of the image (H, W) = `shape` whose patch
  grid is `levels` (R, C, d, d), as the projection takes them (the image
  edge-padded to multiples of 8): `levels` itself when d = 8 and the
  image fills its grid (no copy: the projection writes into it)."""
  r, c, d, _ = levels.shape
  if d == 8 and (r * 8, c * 8) == tuple(shape):
    return levels.reshape(-1, 64)
  return _dct_rows(_pad8(patches_lib.from_patches(levels, shape)))


# ---- choosing a runtime -----------------------------------------------------


def load(path: str, runtime: str = "auto"):
  """An export with the given runtime.

  Args:
    path: an export of `tf_hbd.inference.serving.export_serving`.
    runtime: "auto" (NumPy when the export supports it, else TensorFlow),
      "numpy" or "tf".

  Returns:
    a `NumpyModel` or a `tf_hbd.inference.serving.ServedModel`.

  Raises:
    errors.HbdError: unknown runtime, or "numpy" for an export without a
      usable NumPy runtime.
  """
  path = os.fspath(path)
  if runtime not in RUNTIMES:
    raise errors.HbdError(f"unknown runtime {runtime!r}; choose from "
                          f"{list(RUNTIMES)}")
  if runtime != "tf":
    try:
      return NumpyModel(path)
    except _Unsupported as e:
      if runtime == "numpy":
        raise errors.HbdError(f"model {path} has no NumPy runtime ({e}); "
                              "use the TensorFlow runtime (--runtime tf)"
                             ) from None
  from tf_hbd.inference import serving  # pylint: disable=g-import-not-at-top
  return serving.load(path)


def pretrained_dir(codec: str) -> str:
  """Where the shipped decoder for `codec` lives (also `serving.pretrained_dir`)."""
  if codec not in PRETRAINED:
    raise errors.HbdError(f"no shipped model for codec {codec!r}; shipped: "
                          f"{sorted(PRETRAINED)}")
  return os.path.join(os.path.dirname(os.path.dirname(__file__)), "pretrained",
                      PRETRAINED[codec])


def load_pretrained(codec: str, runtime: str = "auto"):
  """The decoder shipped for `codec` ("jpeg" or "jp2") with `runtime`."""
  path = pretrained_dir(codec)
  if not os.path.isdir(path):
    raise errors.HbdError(f"the shipped {codec} model is missing from this "
                          f"installation ({path}); reinstall tf_hbd or pass "
                          "--model DIR")
  return load(path, runtime)


# ---- writing the runtime (needs TensorFlow) ---------------------------------


def _short(name):
  return name.split("/")[-1].split(":")[0]


def spec_from_model(model):
  """(spec, weights) of a decoder the NumPy runtime can run, else None."""
  # pylint: disable=g-import-not-at-top
  from tf_hbd.model import decoder as decoder_lib
  # pylint: enable=g-import-not-at-top
  # pylint: disable-next=unidiomatic-typecheck
  if type(model) is not decoder_lib.HybridDecoder:  # not subclasses (SNE)
    return None
  if (model.cell_type not in CELLS
      or model.matmul_dtype not in (None, "bfloat16")
      or model.compute_dtype != "float32"):
    return None
  spec = {"cell": model.cell_type, "units": int(model.units),
          "patch_size": int(model.patch_size), "K": int(model.K),
          "boundary": str(model.boundary),
          "center_inputs": bool(model.center_inputs),
          "residual": bool(model.residual),
          "use_position": bool(model.use_position),
          "embed_bias": bool(model.embed_bias),
          "setting_size": int(model.setting_size),
          "tied": bool(getattr(model.cell, "tied", True)),
          "matmul_dtype": model.matmul_dtype,
          "activation": getattr(model.cell, "activation", "tanh")}
  weights = {}
  for v in model.embed_variables + model.readout_variables:
    weights[_short(v.name)] = v.numpy()
  for v in model.step_variables:
    weights["cell." + _short(v.name)] = v.numpy()
  return spec, weights


def _data_files(path):
  var_dir = os.path.join(path, "variables")
  return [os.path.join("variables", f) for f in sorted(os.listdir(var_dir))
          if f.startswith("variables.data-")]


def _locate_weights(path, weights):
  """Where each weight's float32 bytes lie in the export's variables data
  files: {name: {"file", "offset", "shape"}}; ValueError if not found."""
  blobs = {}
  for name in _data_files(path):
    with open(os.path.join(path, name), "rb") as f:
      blobs[name] = f.read()
  out = {}
  for key, value in sorted(weights.items()):
    value = np.asarray(value)
    if value.dtype != np.float32:
      raise ValueError(f"weight {key} is {value.dtype}, not float32")
    raw = value.astype("<f4").tobytes()
    for name, blob in blobs.items():
      offset = blob.find(raw)
      if offset >= 0:  # the bytes there are the weight (any copy will do)
        out[key] = {"file": name, "offset": offset,
                    "shape": list(value.shape)}
        break
    else:
      raise ValueError(f"weight {key} is not stored as raw float32 in "
                       f"{path}/variables")
  return out


def _read_weights(path, entries):
  """The weights named in a runtime file, read from the variables data."""
  known = set(_data_files(path))
  weights = {}
  for key, entry in entries.items():
    if entry["file"] not in known:
      raise ValueError(f"weight {key}: {entry['file']} is not a variables "
                       "data file of this export")
    shape = tuple(int(x) for x in entry["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    value = np.fromfile(os.path.join(path, entry["file"]), dtype="<f4",
                        count=count, offset=int(entry["offset"]))
    if value.size != count:
      raise ValueError(f"weight {key}: the variables data file is too short")
    weights[key] = value.astype(_F32, copy=False).reshape(shape)
  return weights


def write_runtime(path: str, spec: dict, weights: dict) -> str:
  """Writes ``hbd_numpy.json`` into the export at `path` (atomically): the
  architecture, the fingerprint of the export and where each weight lies in
  its variables data file (the weights are not copied)."""
  spec = dict(spec, format=FORMAT, fingerprint=fingerprint(path),
              weights=_locate_weights(path, weights))
  out = os.path.join(path, RUNTIME_FILE)
  tmp = out + ".tmp"
  with open(tmp, "w") as f:
    json.dump(spec, f, indent=1, sort_keys=True)
    f.write("\n")
  os.replace(tmp, out)
  return out


def write_for_model(model, path: str) -> bool:
  """Called by `export_serving` after saving: writes the NumPy runtime of
  `model` into `path`, or removes a stale one when the model has none."""
  got = spec_from_model(model)
  out = os.path.join(path, RUNTIME_FILE)
  if os.path.exists(out):
    os.remove(out)
  if got is None:
    return False
  try:
    write_runtime(path, *got)
  except ValueError:  # weights not stored as raw float32: TF runtime only
    return False
  return True


def convert_saved_model(path: str, seed: int = 0) -> dict:
  """Writes ``hbd_numpy.json`` for an existing export of a HybridDecoder.

  The architecture options that ``hbd_model.json`` does not record (input
  centring, residual) are identified by running the export's own
  ``refine_blocks`` signature on random blocks: the one NumPy variant that
  reproduces it (within 1e-4; 2e-3 for bfloat16 products, which the graph's
  casts reveal) is kept; none or several is an error.

  Returns:
    the spec written.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  with open(os.path.join(path, METADATA_FILE)) as f:
    meta = json.load(f)
  if meta.get("model_class") != "HybridDecoder":
    raise errors.HbdError(f"{path}: a {meta.get('model_class')}, the NumPy "
                          "runtime runs HybridDecoders only")
  loaded = tf.saved_model.load(path)
  cell_ids = {id(v) for v in loaded.model.cell.variables}
  weights = {}
  for v in loaded.model.variables:
    key = ("cell." if id(v) in cell_ids else "") + _short(v.name)
    weights[key] = v.numpy()
  cell = meta.get("cell")
  if cell not in CELLS:
    raise errors.HbdError(f"{path}: cell {cell!r} has no NumPy runtime")
  units = int(meta["units"])
  base = {"cell": cell, "units": units, "patch_size": int(meta["patch_size"]),
          "K": int(meta["K"]), "boundary": meta["boundary"],
          "use_position": "P" in weights, "embed_bias": "b_e" in weights,
          "setting_size": int(meta.get("setting_size", 0)),
          "activation": "tanh"}
  n_in = weights["W"].shape[1]
  base["tied"] = n_in == units
  # bfloat16 products show as casts to bfloat16 in the graph.
  graph = loaded.signatures["refine_blocks"].graph.as_graph_def()
  bf16 = tf.bfloat16.as_datatype_enum
  nodes = list(graph.node) + [n for fn in graph.library.function
                              for n in fn.node_def]
  base["matmul_dtype"] = ("bfloat16" if any(
      n.op == "Cast" and n.attr["DstT"].type == bf16 for n in nodes)
                          else None)
  # bfloat16: TF 2.14 rounds a product to nearest on CPUs with AVX512-BF16
  # and truncates it elsewhere (AVX2: one bfloat16 step, 2^-8 relative, on
  # about half the products), so up to ~1e-2 after K steps; the wrong
  # variants (uncentred, no residual) are off by far more.
  tolerance = 3e-2 if base["matmul_dtype"] else 1e-4
  rng = np.random.default_rng(seed)
  d = base["patch_size"]
  b = 64
  ctx = rng.uniform(0, 1, (b, 9, d, d)).astype(_F32)
  pos = rng.integers(0, 9, b).astype(np.int32)
  k = base["K"]
  kwargs = {"context": tf.constant(ctx), "position": tf.constant(pos),
            "K": tf.constant(k)}
  setting_row = None
  if base["setting_size"]:
    st = rng.uniform(0, 1, base["setting_size"]).astype(_F32)
    kwargs["setting"] = tf.constant(np.tile(st[None], [b, 1]))
    setting_row = st[None] @ weights["S"]
  want = loaded.signatures["refine_blocks"](**kwargs)["refined"].numpy()
  matches = []
  for center in (False, True):
    for residual in (True, False):
      spec = dict(base, center_inputs=center, residual=residual)
      got = _Decoder(spec, weights).predict_last(ctx.reshape(b, -1), pos, k,
                                                 setting_row)
      if np.max(np.abs(got - want)) < tolerance:
        matches.append(spec)
  if len(matches) > 1:
    matches = _narrow_by_flags(matches, meta)
  if len(matches) != 1:
    raise errors.HbdError(f"{path}: {len(matches)} NumPy variants reproduce "
                          "refine_blocks (need exactly one); keep the TF "
                          "runtime")
  write_runtime(path, matches[0], weights)
  return matches[0]


def _narrow_by_flags(matches, meta):
  """The variants that agree with the training flags `hbd_model.json` keeps.

  A trained residual decoder can be nearly blind to a uniform input offset,
  so the centred and uncentred variants may both reproduce its graph within
  the bfloat16 tolerance; the run's own `center_inputs` / `residual` flags
  (strings, as the training log records them), where present, decide.
  """
  flags = (meta.get("training") or {}).get("flags") or {}
  for key in ("center_inputs", "residual"):
    if key in flags:
      want = str(flags[key]).strip().lower() == "true"
      matches = [m for m in matches if m[key] == want]
  return matches


def compare_runtimes(path: str, images, ks=(None,), settings=None) -> dict:
  """Refines `images` with both runtimes of the export at `path`.

  Returns:
    {"max_abs": largest |numpy - tf| in gray levels, "pixels_differing":
    fraction of pixels that differ, "psnr_gap_db": largest |PSNR(numpy,
    reference) - PSNR(tf, reference)| where a reference is given}; `images`
    are (decoded, reference or None) pairs, `settings` their codec settings.
  """
  # pylint: disable=g-import-not-at-top
  from tf_hbd.evaluation import metrics
  from tf_hbd.inference import serving
  # pylint: enable=g-import-not-at-top
  fast, slow = NumpyModel(path), serving.load(path)
  max_abs, differing, total, gap = 0, 0, 0, 0.0
  for i, (decoded, reference) in enumerate(images):
    st = None if settings is None else settings[i]
    for k in ks:
      a = fast.refine(decoded, K=k, setting=st).astype(int)
      b = slow.refine(decoded, K=k, setting=st).astype(int)
      max_abs = max(max_abs, int(np.abs(a - b).max()))
      differing += int(np.count_nonzero(a != b))
      total += a.size
      if reference is not None:
        gap = max(gap, abs(float(metrics.psnr(reference, a)) -
                           float(metrics.psnr(reference, b))))
  return {"max_abs": max_abs, "pixels_differing": differing / max(total, 1),
          "psnr_gap_db": gap}
