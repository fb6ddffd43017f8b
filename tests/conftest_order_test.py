"""The repository conftest's test order: slow tests first, shared among the
xdist workers' first batches, nothing added or lost."""

import importlib.util
import os
import types

from absl.testing import absltest

_CONFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                         "conftest.py")


def _conftest():
  spec = importlib.util.spec_from_file_location("repo_conftest", _CONFTEST)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


class _Item:
  """A collected test: its name and whether it is marked slow."""

  def __init__(self, name, slow=False):
    self.name, self.slow = name, slow

  def get_closest_marker(self, name):
    return object() if name == "slow" and self.slow else None


def _items(n, slow_at):
  return [_Item(f"t{i}", i in slow_at) for i in range(n)]


class OrderTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.hook = _conftest().pytest_collection_modifyitems

  def test_two_workers_each_start_with_their_share(self):
    items = _items(80, slow_at={5, 30, 31, 70, 79})
    before = [i.name for i in items]
    config = types.SimpleNamespace(workerinput={"workercount": 2})
    self.hook(config, items)
    names = [i.name for i in items]
    self.assertCountEqual(names, before)
    chunk = 80 // 2 // 4  # each worker's first batch under xdist's `load`
    first, second = names[:chunk], names[chunk:2 * chunk]
    self.assertEqual(first[:3], ["t5", "t31", "t79"])
    self.assertEqual(second[:2], ["t30", "t70"])
    light = [n for n in names if not items[names.index(n)].slow]
    self.assertEqual(light, [n for n in before if n not in
                             ("t5", "t30", "t31", "t70", "t79")])

  def test_without_xdist_slow_tests_run_first(self):
    items = _items(10, slow_at={3, 8})
    self.hook(types.SimpleNamespace(), items)
    self.assertEqual([i.name for i in items],
                     ["t3", "t8", "t0", "t1", "t2", "t4", "t5", "t6", "t7",
                      "t9"])

  def test_too_many_slow_tests_for_the_first_batches(self):
    items = _items(16, slow_at=set(range(10, 16)))
    self.hook(types.SimpleNamespace(workerinput={"workercount": 2}), items)
    self.assertEqual([i.name for i in items][:6],
                     [f"t{i}" for i in range(10, 16)])

  def test_no_slow_tests_no_change(self):
    items = _items(5, slow_at=set())
    self.hook(types.SimpleNamespace(workerinput={"workercount": 2}), items)
    self.assertEqual([i.name for i in items], [f"t{i}" for i in range(5)])

  def test_tensorflow_test_session_is_deselected_and_reported(self):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    class TfCase(tf.test.TestCase):
      pass

    class OwnCase(absltest.TestCase):
      def test_session(self):  # a test of its own by that name stays
        pass

    items = _items(4, slow_at={2})
    tf_session, own_session = _Item("test_session"), _Item("test_session")
    tf_session.cls, own_session.cls = TfCase, OwnCase
    items[1:1] = [tf_session, own_session]
    deselected = []
    config = types.SimpleNamespace(hook=types.SimpleNamespace(
        pytest_deselected=lambda items: deselected.extend(items)))
    self.hook(config, items)
    self.assertEqual(deselected, [tf_session])
    self.assertEqual([i.name for i in items],
                     ["t2", "t0", "test_session", "t1", "t3"])
    self.assertIs(items[2], own_session)


if __name__ == "__main__":
  absltest.main()
