# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install vendor demo test check lint bench mutation mutation-changed clean

install: $(STAMP) vendor

# Leaflet for the report's map, from the npm registry (npm verifies the package's integrity), written into
# every report page so that it is viewed without network.
LEAFLET := pipelines/analysis/vendor/leaflet-1.9.4
vendor: $(LEAFLET)/leaflet.js

$(LEAFLET)/leaflet.js:
	mkdir -p $(LEAFLET)
	cd $(LEAFLET) && npm pack --silent leaflet@1.9.4 >/dev/null && \
	  tar -xzf leaflet-1.9.4.tgz --strip-components=2 package/dist/leaflet.js package/dist/leaflet.css && \
	  tar -xzf leaflet-1.9.4.tgz --strip-components=1 package/LICENSE && rm leaflet-1.9.4.tgz

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP) vendor
	$(BIN)/planet-tiles demo --output demo-output

# Unit tests on every core (pytest-xdist), then the slow tests on every core, a module's tests on one
# worker, the demo run once for all (tests/conftest.py).
test: lint vendor
	$(BIN)/python -m pytest -q -m "not slow" -n auto tests
	$(BIN)/python -m pytest -q -m slow -n auto --dist loadgroup --durations=10 tests

# Style and layer rules (ruff.toml; setup.cfg [importlinter]): part of `make check` and `make test`.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The quick subset for the edit-test loop: unit tests, no pipeline runs, no training.
check: lint vendor
	$(BIN)/python -m pytest -q -m "not slow" -n auto tests

bench: $(STAMP)
	$(BIN)/python benchmarks/chip_throughput.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/model_throughput.py
	$(BIN)/python benchmarks/scan_throughput.py
	$(BIN)/python benchmarks/scan_memory.py
	$(BIN)/python benchmarks/scan_cost.py
	$(BIN)/python benchmarks/basin_enumeration.py
	$(BIN)/python benchmarks/concurrent_scans.py
	$(BIN)/python benchmarks/report_scale.py
	$(BIN)/python benchmarks/recipe_options.py
	$(BIN)/python benchmarks/tta.py
	$(BIN)/python benchmarks/kaggle_real.py --recipe kaggle-32
	$(BIN)/python benchmarks/delineation.py

# Mutation score of the pure modules (setup.cfg [mutmut]); not part of `make test`.
mutation: $(STAMP)
	$(BIN)/pip install --quiet 'mutmut==3.8.1'
	$(BIN)/mutmut run --max-children 2

# The edit loop's mutation check: only the mutants of those modules changed since main.
mutation-changed: $(STAMP)
	$(BIN)/pip install --quiet 'mutmut==3.8.1'
	$(BIN)/python tools/mutation_changed.py
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache mutants pipelines/analysis/vendor
