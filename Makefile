# Each target creates .venv on first use, so a fresh clone needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-soak lint format bench clean

# torch and torchvision are installed first, pinned to the builds this project is tested
# with (a range in pyproject.toml admits others); the rest comes from pyproject.toml.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[dev,fidelity]"
	touch $(STAMP)

# The main job on the embedded default: local Ray, MLflow in ./mlflow.db, sweeps in ./sweeps.
demo: $(STAMP)
	$(BIN)/gansweep sweep --space quick --num-samples 8 --max-concurrent 2

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# The short soak alone (it is in test-slow too): driver, worker, MLflow and PostgreSQL
# killed at random times, nothing lost (docs/results.md, "A soak that loses nothing").
test-soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_overhead.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
