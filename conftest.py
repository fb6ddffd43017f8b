"""pytest configuration shared by every test in the repository."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

# absltest / tf.test helpers (create_tempdir, ...) read absl flags; under pytest
# nobody parses them, so mark the defaults as parsed.
if not flags.FLAGS.is_parsed():
  flags.FLAGS.mark_as_parsed()
