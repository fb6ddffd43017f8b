# tf_hbd: every target creates/uses the local virtualenv .venv by itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY      = $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: quickstart test test-all test-fast clean-venv

$(VENV)/.installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "tf_hbd needs Python 3.11 (TensorFlow 2.14); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip<25"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,beam]'
	touch $@

# The main job on the embedded default data (scikit-image's photographs).
quickstart: $(VENV)/.installed
	$(PY) -m tf_hbd.workflows.quickstart

# The test suite CI runs: every test, the `slow` ones (a minute or more each:
# multi-process training, kill -9 resume, tfds/beam builds, the tiny
# reproduction) included; under 20 min on 2 cores.
test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --durations=25 $(PYTEST_ARGS)

# Same as `test` (kept for old habits).
test-all: test

# A quick local run without the tests marked `slow`. It keeps a quick form
# of each slow check where one exists, e.g. the two-replica gradient
# equality of BPTT, UORO and SnAp-1 (tf_hbd/training/distributed_test.py).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow" -n 2 --durations=15 $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
