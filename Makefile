# The two commands of the README. Both create .venv and install the pinned
# stack plus this package the first time (and again when setup.py changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean fuzz bench

setup: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/torch-grouped-conv demo

test: setup
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# A long property-based campaign (issue: coverage): prints "N passed, M failed"
# and writes failing configurations to fuzz_failures.json for replay.
N ?= 2000
fuzz: setup
	$(BIN)/python -m e2e_tests.fuzz --examples $(N) --out fuzz_failures.json

# The full benchmark (slow, ~1 h on 2 cores; see docs/performance.md): whole
# networks, core and extra shapes, f16/bf16 and dynamic-batch rows, 1 and 2 threads.
bench: setup
	$(BIN)/torch-grouped-conv bench --threads 1,2 --out-dir docs --update-doc docs/performance.md
