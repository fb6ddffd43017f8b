"""Tests of tf_hbd.training.loop, the machinery both training loops share."""

import os
import signal
import threading

import pytest
import numpy as np
import tensorflow as tf

from tf_hbd.training import checkpoints
from tf_hbd.training import loop


class RunCheckpointTest(tf.test.TestCase):

  def _saver(self, directory, **kwargs):
    step = tf.Variable(0, dtype=tf.int64)
    value = tf.Variable(0.0)
    ckpt = tf.train.Checkpoint(step=step, value=value)
    return loop.RunCheckpoint(ckpt, directory, step, log=lambda _: None,
                              **kwargs), step, value

  def test_saves_by_step_number_and_restores(self):
    directory = self.create_tempdir().full_path
    saver, step, value = self._saver(directory, max_to_keep=2)
    self.assertIsNone(saver.restore())  # a fresh run
    for n in (1, 2, 3):
      step.assign(n)
      value.assign(10.0 * n)
      saver.save()
    self.assertEqual([os.path.basename(p) for p in
                      checkpoints.checkpoints_on_disk(directory)],
                     ["ckpt-2", "ckpt-3"])
    again, step2, value2 = self._saver(directory)
    self.assertEqual(again.restore(), os.path.join(directory, "ckpt-3"))
    self.assertEqual((int(step2.numpy()), float(value2.numpy())), (3, 30.0))

  def test_torn_state_file_falls_back_to_the_files_on_disk(self):
    directory = self.create_tempdir().full_path
    saver, step, _ = self._saver(directory)
    step.assign(4)
    saver.save()
    with open(os.path.join(directory, "checkpoint"), "w") as f:
      f.write('model_checkpoint_path: "ckpt')
    again, step2, _ = self._saver(directory)
    self.assertEqual(again.restore(), os.path.join(directory, "ckpt-4"))
    self.assertEqual(int(step2.numpy()), 4)
    # the state file was repaired: the manager lists the checkpoint again
    self.assertEqual(again.latest, os.path.join(directory, "ckpt-4"))

  def test_due_every_steps_or_seconds(self):
    directory = self.create_tempdir().full_path
    by_steps, _, _ = self._saver(directory, every_steps=3)
    self.assertEqual([n for n in range(1, 10) if by_steps.due(n)], [3, 6, 9])
    never, _, _ = self._saver(directory)
    self.assertFalse(any(never.due(n) for n in range(1, 10)))
    self.assertTrue(self._saver(directory, every_seconds=0.0)[0].due(1))
    self.assertFalse(self._saver(directory, every_seconds=1e9)[0].due(1))


class BudgetTest(tf.test.TestCase):

  def test_steps_and_seconds(self):
    self.assertFalse(loop.Budget().spent(10**9, 1e9))
    self.assertTrue(loop.Budget(max_steps=5).spent(5))
    self.assertFalse(loop.Budget(max_steps=5).spent(4, 1e9))
    self.assertTrue(loop.Budget(max_steps=0).spent(0))
    self.assertTrue(loop.Budget(max_seconds=60.0).spent(0, 60.0))
    self.assertFalse(loop.Budget(10, 60.0).spent(9, 59.9))


class TimedTest(tf.test.TestCase):

  def test_adds_the_step_time_to_the_clock(self):
    clock = tf.Variable(5.0, dtype=tf.float64)
    out, seconds = loop.timed(lambda: "done", clock)
    self.assertEqual(out, "done")
    self.assertGreaterEqual(seconds, 0.0)
    self.assertAllClose(clock.numpy(), 5.0 + seconds)


class WarmupTest(tf.test.TestCase):

  def test_fresh_optimizer_ramps_its_rate(self):
    v = tf.Variable([1.0, -2.0])
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
    rates = []

    def step(_):
      rates.append(float(optimizer.learning_rate.numpy()))
      optimizer.apply_gradients([(tf.constant([1.0, 1.0]), v)])
      return {}

    scheduled = loop.with_warmup(step, optimizer, 1e-2, 4)
    for _ in range(6):
      scheduled(None)
    self.assertAllClose(rates, [2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2, 1e-2])
    # each update moved the weights by its ramped rate (constant gradient)
    self.assertAllClose(v.numpy()[0] - (1.0 - 2.5e-3 - 5e-3 - 7.5e-3 - 3e-2),
                        0.0, atol=1e-4)
    # an optimizer past its ramp (a resumed run) is left at its rate
    rates.clear()
    optimizer.learning_rate.assign(3e-3)
    loop.with_warmup(step, optimizer, 3e-3, 4)(None)
    self.assertEqual(rates, [pytest.approx(3e-3)])

  def test_resumed_optimizer_gets_the_rate_of_the_call(self):
    v = tf.Variable([1.0])
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
    for _ in range(3):
      optimizer.apply_gradients([(tf.constant([1.0]), v)])
    lines = []
    loop.with_warmup(lambda: None, optimizer, 5e-4, 2, lines.append)()
    self.assertAllClose(optimizer.learning_rate.numpy(), 5e-4)
    self.assertEqual(lines, ["learning rate 0.0005 (the checkpoint had 0.01)"])

  def test_resumed_optimizer_at_the_same_rate_logs_nothing(self):
    # 1e-2 is not a float32: the stored rate reads back as 0.009999999776.
    v = tf.Variable([1.0])
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
    for _ in range(3):
      optimizer.apply_gradients([(tf.constant([1.0]), v)])
    lines = []
    loop.with_warmup(lambda: None, optimizer, 1e-2, 2, lines.append)()
    self.assertEqual(lines, [])

  def test_decay_multiplies_the_rate_at_every_step(self):
    v = tf.Variable([1.0])
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-2)
    factors = iter([1.0, 0.5, 0.25])
    rates = []

    def step():
      rates.append(float(optimizer.learning_rate.numpy()))
      optimizer.apply_gradients([(tf.constant([1.0]), v)])

    scheduled = loop.with_warmup(step, optimizer, 1e-2, 0,
                                 decay=lambda: next(factors))
    for _ in range(3):
      scheduled()
    self.assertAllClose(rates, [1e-2, 5e-3, 2.5e-3])


class CosineTailTest(tf.test.TestCase):

  def test_flat_then_half_a_cosine_to_the_final_fraction(self):
    tail = lambda p: loop.cosine_tail(p, 0.5, 0.05)
    self.assertEqual(tail(0.0), 1.0)
    self.assertEqual(tail(0.5), 1.0)
    self.assertAllClose(tail(0.75), 0.05 + 0.95 * 0.5)
    self.assertAllClose(tail(1.0), 0.05)
    self.assertAllClose(tail(3.0), 0.05)  # held past the budget
    values = [tail(p) for p in np.linspace(0.5, 1.0, 11)]
    self.assertTrue(all(a > b for a, b in zip(values, values[1:])))
    self.assertEqual(loop.cosine_tail(0.9, 1.0, 0.05), 1.0)  # never starts


class JsonlTest(tf.test.TestCase):

  def test_records_and_a_torn_last_line(self):
    path = os.path.join(self.create_tempdir().full_path, "h.jsonl")
    self.assertEqual(loop.read_jsonl(path), [])
    loop.append_jsonl(path, {"step": 1})
    loop.append_jsonl(path, {"step": 2, "loss": 0.5})
    with open(path, "a") as f:
      f.write('{"step": 3, "lo')  # killed while writing
    self.assertEqual(loop.read_jsonl(path),
                     [{"step": 1}, {"step": 2, "loss": 0.5}])


class StopSignalsTest(tf.test.TestCase):

  def test_a_signal_is_recorded_not_fatal_and_handlers_come_back(self):
    before = {s: signal.getsignal(s) for s in loop.StopSignals.SIGNALS}
    with loop.StopSignals() as stop:
      self.assertIsNone(stop.requested)
      os.kill(os.getpid(), signal.SIGTERM)
      self.assertEqual(stop.requested, "SIGTERM")  # still running
    self.assertEqual({s: signal.getsignal(s) for s in before}, before)

  def setUp(self):
    super().setUp()  # a suite started with `&` inherits an ignored SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    self.addCleanup(signal.signal, signal.SIGINT, previous)

  def test_an_ignored_signal_stays_ignored(self):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with loop.StopSignals() as stop:
      self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)
      os.kill(os.getpid(), signal.SIGINT)  # ignored: no request, no stop
      self.assertIsNone(stop.requested)
      self.assertIsNot(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)
    self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)

  def test_a_second_signal_stops_at_once(self):
    with self.assertRaises(KeyboardInterrupt):
      with loop.StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        self.assertEqual(stop.requested, "SIGINT")
        os.kill(os.getpid(), signal.SIGINT)  # asked twice: interrupt now
        self.fail("the second SIGINT did not interrupt")
    self.assertIs(signal.getsignal(signal.SIGINT), signal.default_int_handler)

  def test_off_the_main_thread_it_does_nothing(self):
    seen = []
    def body():
      with loop.StopSignals() as stop:
        seen.append(stop.requested)
    t = threading.Thread(target=body)
    t.start()
    t.join()
    self.assertEqual(seen, [None])


class RunTest(tf.test.TestCase):
  """`loop.run`, the loop both trainings run through."""

  def setUp(self):
    super().setUp()  # a suite started with `&` inherits an ignored SIGINT
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    self.addCleanup(signal.signal, signal.SIGINT, previous)

  def _run(self, directory, value, events, *, until=None, max_steps=None,
           max_seconds=None, stop_at=None, every_steps=0, **kwargs):
    """A run whose step adds 1 to `value`; `events` records the calls."""
    step = tf.Variable(0, dtype=tf.int64)
    clock = tf.Variable(0.0, dtype=tf.float64)
    saver = loop.RunCheckpoint(
        tf.train.Checkpoint(step=step, clock=clock, value=value), directory,
        step, every_steps=every_steps, log=events.append)

    def step_fn(n):
      events.append(("step", n))
      value.assign_add(1.0)
      if stop_at == n + 1:  # e.g. `kill <pid>` during that step
        os.kill(os.getpid(), signal.SIGTERM)
      return float(value.numpy())

    ended = loop.run(
        step_fn, saver, clock, loop.Budget(max_steps, max_seconds),
        until=until,
        on_resume=lambda prefix: events.append(("resume", prefix)),
        on_step=lambda n, out, s: events.append(("on_step", n, out)),
        on_budget=lambda n: events.append(("budget", n)),
        on_stop=lambda n: events.append(("stop", n)), **kwargs)
    return ended, int(step.numpy()), float(clock.numpy())

  def test_steps_actions_checkpoints_and_resume(self):
    directory = self.create_tempdir().full_path
    value, events = tf.Variable(0.0), []
    every = [
        loop.Every(2, lambda n: events.append(("log", n)), last=True),
        loop.Every(3, lambda n: events.append(("eval", n)), checkpoint=True)]
    ended, step, clock = self._run(directory, value, events, max_steps=4,
                                   every=every)
    self.assertEqual(ended, loop.BUDGET)
    self.assertEqual((step, float(value.numpy())), (4, 4.0))
    self.assertGreater(clock, 0.0)
    self.assertEqual(events, [
        ("resume", None),
        ("step", 0), ("on_step", 1, 1.0),
        ("step", 1), ("on_step", 2, 2.0), ("log", 2),
        ("step", 2), ("on_step", 3, 3.0), ("eval", 3),
        ("step", 3), ("on_step", 4, 4.0), ("log", 4),
        ("budget", 4)])
    # the evaluation's checkpoint only: the end is the caller's to save
    self.assertEqual([os.path.basename(p) for p in
                      checkpoints.checkpoints_on_disk(directory)], ["ckpt-3"])
    value.assign(-100.0)  # a new session: what was in memory is gone
    events.clear()
    ended, step, _ = self._run(directory, value, events, until=5,
                               max_steps=10, every_steps=5)
    self.assertEqual(ended, loop.UNTIL)
    self.assertEqual(events[0], ("resume", os.path.join(directory,
                                                         "ckpt-3")))
    self.assertEqual([e for e in events if e[0] == "step"],
                     [("step", 3), ("step", 4)])
    self.assertEqual((step, float(value.numpy())), (5, 5.0))
    self.assertEqual(os.path.basename(checkpoints.checkpoints_on_disk(
        directory)[-1]), "ckpt-5")  # every_steps=5
    events.clear()  # complete: no step at all
    self.assertEqual(self._run(directory, value, events, until=5)[0],
                     loop.UNTIL)
    self.assertEqual([e[0] for e in events], ["resume"])

  def test_a_time_budget_counts_the_restored_seconds(self):
    directory = self.create_tempdir().full_path
    value, events = tf.Variable(0.0), []
    self._run(directory, value, events, max_steps=2, every_steps=2)
    spent = tf.train.load_variable(tf.train.latest_checkpoint(directory),
                                   "clock/.ATTRIBUTES/VARIABLE_VALUE")
    self.assertGreater(spent, 0.0)
    events.clear()
    ended, step, clock = self._run(directory, value, events,
                                   max_seconds=spent)
    self.assertEqual((ended, step, clock), (loop.BUDGET, 2, spent))
    self.assertEqual([e[0] for e in events], ["resume", "budget"])

  def test_a_signal_checkpoints_the_current_step_then_stops(self):
    directory = self.create_tempdir().full_path
    value, events = tf.Variable(0.0), []
    handler = signal.getsignal(signal.SIGTERM)
    with self.assertRaisesRegex(
        loop.Stopped, r"^SIGTERM after batch 3, checkpoint "
        r".*ckpt-3 saved"):
      self._run(directory, value, events, until=10, stop_at=3, unit="batch")
    self.assertEqual(events[-1], ("stop", 3))
    self.assertEqual(signal.getsignal(signal.SIGTERM), handler)
    self.assertTrue(tf.train.latest_checkpoint(directory).endswith("ckpt-3"))
    value.assign(-100.0)
    events.clear()
    _, step, _ = self._run(directory, value, events, until=5)
    self.assertEqual((step, float(value.numpy())), (5, 5.0))

  def test_an_exception_in_a_step_leaves_the_last_checkpoint(self):
    directory = self.create_tempdir().full_path
    value, events = tf.Variable(0.0), []
    def fail(n):
      raise FloatingPointError(f"at {n}")
    every = [loop.Every(2, lambda n: None, checkpoint=True),
             loop.Every(3, fail)]
    with self.assertRaisesRegex(FloatingPointError, "at 3"):
      self._run(directory, value, events, until=10, every=every)
    self.assertTrue(tf.train.latest_checkpoint(directory).endswith("ckpt-2"))

  def test_every(self):
    every = loop.Every(3, print)
    self.assertEqual([n for n in range(1, 8) if every.due(n, False)], [3, 6])
    self.assertTrue(loop.Every(3, print, last=True).due(4, True))
    self.assertFalse(every.due(4, True))
    self.assertFalse(any(loop.Every(0, print).due(n, False)
                         for n in range(1, 5)))


if __name__ == "__main__":
  tf.test.main()
