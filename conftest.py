"""pytest configuration shared by every test in the repository."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

# absltest / tf.test helpers (create_tempdir, ...) read absl flags; under pytest
# nobody parses them, so mark the defaults as parsed.
if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()


def _first_chunk(config, n_items):
  """(workers, tests in each worker's first batch) under pytest-xdist.

  xdist's default `load` scheduler (3.8) first sends each of its w workers
  n / w / 4 consecutive tests, then hands out the rest as workers free up.
  (1, n) without xdist.
  """
  workerinput = getattr(config, "workerinput", None)
  if not workerinput:
    return 1, n_items
  workers = int(workerinput["workercount"])
  return workers, max(2, n_items // workers // 4)


def _tf_session_placeholder(item) -> bool:
  """True for `tf.test.TestCase.test_session`: a deprecated session helper
  that pytest collects as a test of every tf.test.TestCase class and that
  TensorFlow then skips ("Not a test"). It is no test of this repository."""
  if item.name != "test_session":
    return False
  method = getattr(getattr(item, "cls", None), "test_session", None)
  return getattr(method, "__qualname__", "") == (
      "TensorFlowTestCase.test_session")


def pytest_collection_modifyitems(config, items):
  """Drops TensorFlow's `test_session` pseudo-tests; starts the tests marked
  `slow` first, shared among the xdist workers.

  Every tf.test.TestCase class inherits a method named `test_session` that
  pytest collects and TensorFlow skips; left in, they were the suite's only
  skips (101 of them), so a real skip would go unnoticed among them. They
  are reported as deselected instead, and any skip left is a real one.

  Under ``-n 2`` (`make test`) a test of several minutes that starts late
  leaves one worker running alone at the end. Here each worker's first
  batch begins with its share of the slow tests (dealt in turn), so they
  overlap each other and the short tests fill the end. Real tests are only
  reordered, never added or removed, and every worker computes the same
  order (as xdist requires). Without xdist the slow tests simply run first.

  Args:
    config: the pytest configuration.
    items: the collected tests, reordered in place.
  """
  dropped = [item for item in items if _tf_session_placeholder(item)]
  if dropped:
    config.hook.pytest_deselected(items=dropped)
    gone = set(map(id, dropped))
    items[:] = [item for item in items if id(item) not in gone]
  slow = [item for item in items if item.get_closest_marker("slow")]
  if not slow:
    return
  marked = set(map(id, slow))
  rest = [item for item in items if id(item) not in marked]
  workers, chunk = _first_chunk(config, len(items))
  shares = [slow[w::workers] for w in range(workers)]
  if workers == 1 or len(shares[0]) > chunk:  # not enough room: slow first
    items[:] = slow + rest
    return
  order = []
  for share in shares:
    take = chunk - len(share)
    order += share + rest[:take]
    rest = rest[take:]
  items[:] = order + rest
