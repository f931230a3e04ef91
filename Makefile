# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check bench mutation clean

install: $(STAMP)

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/planet-tiles demo --output demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# The quick subset for the edit-test loop: unit tests, no pipeline runs, no training.
check: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

bench: $(STAMP)
	$(BIN)/python benchmarks/chip_throughput.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/scan_memory.py
	$(BIN)/python benchmarks/scan_cost.py
	$(BIN)/python benchmarks/basin_enumeration.py
	$(BIN)/python benchmarks/concurrent_scans.py

# Mutation score of the pure modules (setup.cfg [mutmut]); not part of `make test`.
mutation: $(STAMP)
	$(BIN)/pip install --quiet 'mutmut==3.8.1'
	$(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache mutants
