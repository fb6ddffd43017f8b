"""The bare matrix products of a refinement: the floor its time is compared
with (``refine_speed.py``, ``enhance_speed.py``).

Imported by the benchmark scripts from their own folder (run them as
``python benchmarks/<name>.py``).
"""

__all__ = ["products"]


def products(xs, w, v, u, steps):
  """A callable that runs a refinement's matrix products on every batch.

  On each batch x of `xs`: x W, then `steps` times s V keeping the first n
  columns (n = W's width: a data dependency, no gates, no nonlinearity),
  then s U; one `tf.function`, traced on the first call.

  Args:
    xs: the batches, (b, 9 d^2) tensors of W's dtype.
    w, v, u: the input (9 d^2, n), recurrent (n, 4 n) and readout (n, d^2)
      matrices.
    steps: how many recurrent products.

  Returns:
    A function of no arguments that returns the last batch's output as a
    NumPy array.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  n = int(w.shape[1])

  @tf.function
  def run(x):
    s = tf.matmul(x, w)
    acc = tf.zeros([], w.dtype)
    for _ in range(steps):
      z = tf.matmul(s, v)
      s = z[:, :n]  # a data dependency, no nonlinearity
      acc += z[0, 0]
    return tf.matmul(s, u), acc

  def all_products():
    for x in xs:
      out = run(x)
    return out[0].numpy()
  return all_products
