# `make quickstart` and `make test` each create .venv when missing, install the kit into it
# (a second run skips the install until setup.cfg or pyproject.toml change), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST := $(BIN)/python -m pytest -q -ra --timeout=900

.PHONY: setup quickstart test test-e2e test-fast browser-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

setup: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/mobilekit quickstart

# Keras 3 tests, then the tf_keras (Keras 2) tests in their own process: the Keras
# generation is chosen once per process, at import time. The Keras 3 tests run in one process
# per group: TensorFlow's function tracing slows down as a process accumulates traced functions
# (a SavedModel export took minutes at the end of one process, under a minute in a fresh one).
TEST_GROUPS := tests/demo_app tests/keras_layers tests/models tests/mobilekit tests/tflite "$(wildcard tests/test_*.py)"
test: $(STAMP)
	for group in $(TEST_GROUPS); do $(PYTEST) -m "not legacy_keras and not e2e" $$group || exit 1; done
	TF_USE_LEGACY_KERAS=1 $(PYTEST) -m legacy_keras

# The jobs end to end: the three quickstarts (training, export, validation, timing in child
# processes, the demo), the zoo, and the experiment commands (binary, optimize, qsfm, export
# --qat/--prune, several in tf_keras child processes). Minutes each, so a target of their own;
# CI runs it after `make test`.
test-e2e: $(STAMP) browser-deps
	for group in $(TEST_GROUPS); do $(PYTEST) -m e2e $$group; status=$$?; [ $$status = 0 ] || [ $$status = 5 ] || exit 1; done

# The browser and X server the e2e tests drive (the live page, the demo window): Debian packages,
# installed only when missing (with sudo unless root).
browser-deps:
	command -v chromium >/dev/null && command -v Xvfb >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium xvfb; }

test-fast: $(STAMP)
	$(PYTEST) -m "not legacy_keras and not slow and not e2e"

clean:
	rm -rf $(VENV) .venv-device .venv-mediapipe runs *.egg-info
