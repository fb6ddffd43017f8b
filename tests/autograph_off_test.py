"""Every `tf.function` the package builds has ``autograph=False`` (issue 16).

AutoGraph's source conversion cost ~20 % of the CPU of every small training
process (``benchmarks/autograph_cost.py``); the traced bodies need none of
it: their tensor-dependent loops and branches are explicit `tf.while_loop` /
`tf.cond`. With ``autograph=False`` a Python ``if``/``while``/``for`` on a
tensor fails at trace time (the module tests trace every site), so this test
checks the other half: that no site of the package (tests excepted) is built
with AutoGraph on, be it a new one or one whose flag was dropped, except the
few listed in `NEEDS_AUTOGRAPH` (explicitly ``autograph=True``, with why).
"""

import ast
import os
import unittest

_PACKAGE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tf_hbd")


def _is_tf_function(node):
  """Whether `node` (an expression) is ``tf.function``."""
  return (isinstance(node, ast.Attribute) and node.attr == "function" and
          isinstance(node.value, ast.Name) and node.value.id == "tf")


def _autograph_off(call):
  return any(k.arg == "autograph" and isinstance(k.value, ast.Constant) and
             k.value.value is False for k in call.keywords)


def tf_function_sites(source):
  """[(line, autograph off)] of the ``tf.function`` uses in `source`: calls
  and decorators with arguments, bare ``@tf.function``, or the name passed
  on (the last two always with AutoGraph on)."""
  tree = ast.parse(source)
  calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
  sites = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and _is_tf_function(node.func):
      sites.append((node.lineno, _autograph_off(node)))
    elif _is_tf_function(node) and id(node) not in calls:
      sites.append((node.lineno, False))
  return sorted(sites)


def sites_with_autograph(source, name="<source>"):
  """["name:line"] of the ``tf.function`` uses in `source` without
  ``autograph=False``."""
  return [f"{name}:{line}" for line, off in tf_function_sites(source)
          if not off]


# Sites that keep AutoGraph, with why: third-party code they trace branches
# in Python on tensors. {module: number of sites}.
NEEDS_AUTOGRAPH = {
    # tensorflow_compression's GDN layer: ``if ... self.alpha == 1`` on a
    # tensor (the E2E model's training step and its SavedModel functions).
    os.path.join("baselines", "e2e.py"): 3,
    os.path.join("baselines", "training.py"): 1,
}


def package_sources():
  """{relative path: source} of the package's non-test modules."""
  out = {}
  for root, _, files in os.walk(_PACKAGE):
    for f in files:
      if f.endswith(".py") and not f.endswith("_test.py"):
        path = os.path.join(root, f)
        with open(path, encoding="utf-8") as fh:
          out[os.path.relpath(path, _PACKAGE)] = fh.read()
  return out


class AutographOffTest(unittest.TestCase):

  def test_every_package_tf_function_has_autograph_off(self):
    sources = package_sources()
    bad = [s for name, src in sorted(sources.items())
           for s in sites_with_autograph(src, name)]
    for name, count in NEEDS_AUTOGRAPH.items():
      self.assertEqual(sum(s.startswith(name + ":") for s in bad), count,
                       name)
      self.assertIn("autograph=True", sources[name])
    bad = [s for s in bad if s.split(":")[0] not in NEEDS_AUTOGRAPH]
    self.assertEqual(bad, [], "tf.function with AutoGraph on (pass "
                     "autograph=False; write tensor-dependent control flow "
                     "with tf.while_loop / tf.cond)")
    # The scan sees the known sites (a scan finding nothing proves nothing).
    found = sum(len(tf_function_sites(src)) for src in sources.values())
    self.assertGreaterEqual(found, 17)

  def test_detects_sites_with_autograph_on(self):
    src = ("import tensorflow as tf\n"
           "@tf.function\n"
           "def a(x): return x\n"
           "@tf.function(input_signature=[])\n"
           "def b(): return 1\n"
           "c = tf.function(a, autograph=True)\n"
           "d = tf.function(a, reduce_retracing=True)\n"
           "e = map(tf.function, [a])\n"
           "@tf.function(autograph=False, input_signature=[])\n"
           "def f(): return 1\n"
           "g = tf.function(a, autograph=False)\n")
    self.assertEqual(sites_with_autograph(src, "m.py"),
                     ["m.py:2", "m.py:4", "m.py:6", "m.py:7", "m.py:8"])


if __name__ == "__main__":
  unittest.main()
