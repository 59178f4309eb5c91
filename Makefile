# `make demo` and `make test` install everything they need into .venv (pinned by constraints.txt).
VENV ?= .venv
PY := $(VENV)/bin/python
export YOLO_OFFLINE := 1
export MPLBACKEND := Agg

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $@

.PHONY: install demo test lint bench
install: $(VENV)/.installed

demo: install
	$(VENV)/bin/semiyolo demo

lint: install
	$(PY) -m ruff check src tests benchmarks

test: lint
	$(PY) -m pytest -n auto --dist loadfile  # one worker a core; a file's tests stay on one worker

bench: install
	$(PY) benchmarks/losses.py
	$(PY) benchmarks/bg_penalty_overhead.py
