# neurosim — install · demo · test · bench. Every target creates .venv if it is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg
# PyTorch's CPU-only wheels, e.g. `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu`: from PyPI alone,
# torch on Linux is the CUDA build (GBs of nvidia-* packages). Empty: pip's own indexes decide.
TORCH_INDEX ?=
PIP_INDEX := $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX),)

.PHONY: install demo test test-fast test-min bench clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_INDEX) -c requirements/constraints.txt -e ".[dev,audio]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neurosim demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The suite against the oldest supported versions (pyproject's lower bounds, pinned in requirements/minimum.txt),
# in a separate .venv-min: what a user whose other packages hold dependencies back would get.
test-min:
	test -x .venv-min/bin/python || $(PY) -m venv .venv-min
	.venv-min/bin/python -m pip install --quiet $(PIP_INDEX) -c requirements/minimum.txt -e ".[dev,audio]"
	.venv-min/bin/python -m pytest -q

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .venv-min build *.egg-info .pytest_cache
