# The two commands of the README. Both create .venv and install the pinned
# stack plus this package the first time (and again when setup.py changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast clean fuzz bench

setup: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/torch-grouped-conv demo

# The whole suite, `slow` tests included, in JOBS pytest-xdist workers;
# tests that share a compiled module run in the same worker (tests/conftest.py).
# test-fast: the same without the tests marked slow.
JOBS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup
test: setup
	$(PYTEST)

test-fast: setup
	$(PYTEST) -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# A long property-based campaign (every strategy in rotation, IREE on every
# config; docs/usage.md): N float configs, then QN quantized ones; each prints
# "N passed, M failed" and writes failing configurations to $(OUT) and
# quantized_$(OUT) for replay.
# Seeds split a campaign over processes: make fuzz N=500 QN=100 SEED=3 OUT=fuzz_3.json
N ?= 3000
QN ?= 400
SEED ?= 0
OUT ?= fuzz_failures.json
fuzz: setup
	$(BIN)/python -m tests.campaigns.fuzz --examples $(N) --seed $(SEED) --out $(OUT)
	$(BIN)/python -m tests.campaigns.fuzz_quantized --examples $(QN) --seed $(SEED) --out quantized_$(OUT)

# The full benchmark (slow, ~1 h on 2 cores; see docs/performance.md): whole
# networks, core and extra shapes, f16/bf16 and dynamic-batch rows, 1 and 2 threads.
bench: setup
	$(BIN)/torch-grouped-conv bench --threads 1,2 --out-dir bench-results

# The quantized-convolution campaign (exact i32 results, both runners on every config).
.PHONY: fuzz-quantized
fuzz-quantized: setup
	$(BIN)/python -m tests.campaigns.fuzz_quantized --examples $(N) --out quantized_fuzz_failures.json
