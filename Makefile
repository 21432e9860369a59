# The two README commands. Each sets itself up from nothing: venv, pinned CPU torch, the package.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.eqrobot-installed
# Pinned CPU build: a bare `torch` requirement would pull a multi-GB CUDA build (shared/DESIGN.md section 4).
TORCH_PIN := torch==2.13.0

.PHONY: setup test test-slow demo lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev,ray,zoo]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-slow: setup
	$(PY) -m pytest -q -m slow

demo: setup
	$(PY) -m eqrobot.cli demo

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) *.egg-info runs
