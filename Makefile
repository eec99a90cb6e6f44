# Two commands do all set-up on a fresh machine:
#   make run    create .venv, install, start the API with the default model on :5000
#   make test   install the dev dependencies and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
BRAINTUMOR_DATA ?= ../shared/datasets/brain-tumor-mri
export BRAINTUMOR_DATA

.PHONY: run test lint bench train evaluate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/braintumor serve

test: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench

bench: $(DEV_STAMP)
	$(BIN)/python bench/bench_api.py

# The recipe of the shipped model (see models/MODEL_CARD.md); resumes if interrupted.
train: $(STAMP)
	$(BIN)/braintumor train --data $(BRAINTUMOR_DATA)/Training --arch compact --size 160 \
		--epochs 30 --seed 42 --run-dir runs/compact-160 --out models/braintumor-cnn.keras

evaluate: $(STAMP)
	$(BIN)/braintumor evaluate --model models/braintumor-cnn.keras \
		--data $(BRAINTUMOR_DATA)/Testing \
		--hard-subset $(BRAINTUMOR_DATA)/hard_test_subset.txt --out reports/default

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache src/*.egg-info
