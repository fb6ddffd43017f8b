"""Functions fit on a screen: none in the package, scripts or benchmarks is
longer than `MAX_LINES` (from its ``def`` line to its last line, docstring
included)."""

import ast
import pathlib

from absl.testing import absltest

MAX_LINES = 80
_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Known exceptions, each with its reason; remove an entry once it is split.
_ALLOWED = set()  # none left (study.run is split)


def long_functions(root=_ROOT, max_lines=MAX_LINES):
  """[(lines, path, line number, name)] of the functions over `max_lines`."""
  found = []
  files = sorted([*root.glob("tf_hbd/**/*.py"), *root.glob("scripts/*.py"),
                  *root.glob("benchmarks/*.py")])
  for path in files:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        lines = node.end_lineno - node.lineno + 1
        if lines > max_lines:
          found.append((lines, path.relative_to(root).as_posix(),
                        node.lineno, node.name))
  return found


class FunctionLengthTest(absltest.TestCase):

  def test_no_function_is_longer_than_a_screen(self):
    over = [f"{path}:{line} {name} ({n} lines)"
            for n, path, line, name in long_functions()
            if (path, name) not in _ALLOWED]
    self.assertEmpty(over, f"functions over {MAX_LINES} lines; split them")

  def test_the_check_finds_a_long_function(self):
    root = pathlib.Path(self.create_tempdir().full_path)
    (root / "scripts").mkdir()
    body = "".join(f"  x{i} = {i}\n" for i in range(MAX_LINES))
    (root / "scripts" / "long.py").write_text(
        f"def short():\n  return 1\n\n\ndef long():\n{body}")
    self.assertEqual(long_functions(root),
                     [(MAX_LINES + 1, "scripts/long.py", 5, "long")])


if __name__ == "__main__":
  absltest.main()
