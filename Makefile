# `make quickstart` and `make test` each create .venv when missing, install the kit into it
# (a second run skips the install until setup.cfg or pyproject.toml change), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# --durations: each group's slowest tests in the log, to keep `make test` under 20 minutes and CI under 40
PYTEST := $(BIN)/python -m pytest -q -ra --timeout=900 --durations=15

.PHONY: setup quickstart test test-e2e test-fast browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

setup: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/mobilekit quickstart

# Keras 3 tests, then the tf_keras (Keras 2) tests in their own processes: the Keras generation is
# chosen once per process, at import time. The Keras 3 tests run one group at a time, each in fresh
# processes: TensorFlow's function tracing slows down as a process accumulates traced functions (a
# SavedModel export took minutes at the end of one process, under a minute in a fresh one).
# Each group is shared by WORKERS pytest-xdist worker processes (default 2, the CI machine's cores;
# WORKERS=0 runs a group in one process): the tests are bound by Python, tracing and the converter,
# each on one core, so two workers on 2 cores take about half the wall time. `--dist loadfile` keeps
# a test file on one worker, so its module-scoped fixtures (models trained or converted once for the
# file) are built once. Tests write under tmp_path (or a run folder inside it), servers take free
# ports and Xvfb a free display, and the cached venvs of tests/cached_venv.py are built under a lock,
# so the workers share nothing else.
WORKERS ?= 2
XDIST := -n $(WORKERS) --dist loadfile
# With several workers, each worker's TensorFlow (and every process it starts) runs one thread per op
# and one op at a time: TensorFlow's default pools (a thread per core in every process) oversubscribed
# the cores; the mobilekit e2e group took 1306 s with them, 837 s without (the QSFM job 515 -> 49 s).
TF_THREADS := $(if $(filter 0 1,$(WORKERS)),,TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1)
TEST_GROUPS := tests/demo_app tests/keras_layers tests/models tests/mobilekit tests/tflite "$(wildcard tests/test_*.py)"
test: $(STAMP)
	for group in $(TEST_GROUPS); do $(TF_THREADS) $(PYTEST) $(XDIST) -m "not legacy_keras and not e2e" $$group || exit 1; done
	$(TF_THREADS) TF_USE_LEGACY_KERAS=1 $(PYTEST) $(XDIST) -m legacy_keras

# The jobs end to end: the three quickstarts (training, export, validation, timing in child
# processes, the demo), the zoo, and the experiment commands (binary, optimize, qsfm, export
# --qat/--prune, several in tf_keras child processes). Minutes each, so a target of their own;
# CI runs it after `make test`.
test-e2e: $(STAMP) browser-deps
	for group in $(TEST_GROUPS); do $(TF_THREADS) $(PYTEST) $(XDIST) -m e2e $$group; status=$$?; [ $$status = 0 ] || [ $$status = 5 ] || exit 1; done

# The browser and X server the e2e tests drive (the live page, the demo window): Debian packages,
# installed only when missing (with sudo unless root).
browser-deps:
	command -v chromium >/dev/null && command -v Xvfb >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium xvfb; }

test-fast: $(STAMP)
	$(TF_THREADS) $(PYTEST) $(XDIST) -m "not legacy_keras and not slow and not e2e"

clean:
	rm -rf $(VENV) .venv-device .venv-mediapipe runs *.egg-info
