"""The module map of the package docstring lists every module, once."""

import os
import re

from absl.testing import absltest

import tf_hbd

_ROOT = os.path.dirname(tf_hbd.__file__)
# A map line: two spaces, a dotted module name, two or more spaces, text.
_LINE = re.compile(r"^  ([a-z_][a-z0-9_.]*)  +\S")


def mapped_modules(docstring):
  """The dotted names (below tf_hbd) of the docstring's module map lines."""
  _, _, body = docstring.partition("Module map")
  return [m.group(1) for m in map(_LINE.match, body.splitlines()) if m]


def package_modules(root):
  """Every module file below `root` as a dotted name: no tests, no
  ``__init__``, no ``conftest``."""
  out = []
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if os.path.isfile(
        os.path.join(folder, d, "__init__.py")))
    rel = os.path.relpath(folder, root)
    prefix = "" if rel == "." else rel.replace(os.sep, ".") + "."
    out += [prefix + f[:-3] for f in sorted(files)
            if f.endswith(".py") and not f.endswith("_test.py")
            and f not in ("__init__.py", "conftest.py")]
  return out


class ModuleMapTest(absltest.TestCase):

  def test_every_module_has_one_line(self):
    listed = mapped_modules(tf_hbd.__doc__)
    self.assertGreater(len(listed), 50)
    self.assertEqual(sorted(set(listed)), sorted(listed), "listed twice")
    modules = set(package_modules(_ROOT))
    self.assertEqual(
        {"modules without a line": sorted(modules - set(listed)),
         "lines without a module": sorted(set(listed) - modules)},
        {"modules without a line": [], "lines without a module": []},
        "tf_hbd/__init__.py's module map is out of date")

  def test_a_new_or_removed_module_is_noticed(self):
    root = self.create_tempdir().full_path
    for name in ("a.py", "sub/__init__.py", "sub/b.py", "sub/b_test.py",
                 "notes/c.py"):
      os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
      open(os.path.join(root, name), "w").close()
    self.assertEqual(package_modules(root), ["a", "sub.b"])
    doc = "x\n\nModule map:\n\n  a     one\n  sub.b   two\n  not a line\n"
    self.assertEqual(mapped_modules(doc), ["a", "sub.b"])
    self.assertEqual(mapped_modules(doc.replace("  sub.b   two\n", "")),
                     ["a"])


if __name__ == "__main__":
  absltest.main()
