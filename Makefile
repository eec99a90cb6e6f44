# Two commands do all set-up on a fresh machine:
#   make run    create .venv, install the serving set (no TensorFlow), start the API with
#               the default model on :5000
#   make test   install everything (dev includes the train extra) and run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
TRAIN_STAMP := $(VENV)/.installed-train
BRAINTUMOR_DATA ?= ../shared/datasets/brain-tumor-mri
export BRAINTUMOR_DATA
# Tumour slices of unknown type from another collection (partial labels; see the model card)
BRAINTUMOR_EXTRA_TUMOUR ?= ../shared/datasets/br35h-tumour
# Expert tumour outlines of the figshare Training slices (training and the localisation figures)
BRAINTUMOR_MASKS ?= ../shared/datasets/figshare-masks
export BRAINTUMOR_MASKS
# 3D volumes with label maps (manifest.tsv), for judging whole series
BRAINTUMOR_VOLUMES ?= ../shared/datasets/volumes
export BRAINTUMOR_VOLUMES

.PHONY: run test test-quick lint bench train train-seg evaluate evaluate-series clean check-java \
	bench-spark

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# TensorFlow, Keras, tf2onnx: training and exporting a model's ONNX graph
$(TRAIN_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[train]'
	touch $@

# pyspark, pandas, pyarrow: the Spark jobs and SPARK_ENABLED (the server runs without them)
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[spark]'
	touch $@

# scikit-image's sample photographs for the evaluation's out-of-distribution set
EVAL_STAMP := $(VENV)/.installed-eval
$(EVAL_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[eval]'
	touch $@

# The serving set only; TensorFlow (the train extra) too while the model to serve needs it
# (no current ONNX graph in the file: `braintumor export-onnx`; see README, Model runtimes),
# and Spark (the spark extra) with SPARK_ENABLED
run: $(STAMP) frontend-auto
	@$(BIN)/python -c "$$TENSORFLOW_INSTALLED" || $(BIN)/python -c "$$SERVES_WITHOUT_TENSORFLOW" \
		|| { echo "note: the model to serve needs TensorFlow: installing the train extra"; \
		$(MAKE) --no-print-directory $(TRAIN_STAMP); }
	@case "$$SPARK_ENABLED" in [Tt]rue|1|[Yy]es|[Oo]n) \
		echo "note: SPARK_ENABLED: installing the spark extra"; \
		$(MAKE) --no-print-directory $(SPARK_STAMP);; esac
	$(BIN)/braintumor serve

define TENSORFLOW_INSTALLED
import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("tensorflow") else 1)
endef
define SERVES_WITHOUT_TENSORFLOW
import sys
from braintumor.config import load_settings
from braintumor.model.runtime import needs_tensorflow
sys.exit(int(needs_tensorflow(load_settings().model)))
endef
export TENSORFLOW_INSTALLED SERVES_WITHOUT_TENSORFLOW

test: $(DEV_STAMP) check-java orthanc
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
	@$(MAKE) --no-print-directory frontend-test

# The inner loop: lint, types and the Python tests without Spark (no JVM), the browser
# or the slow real-dataset tests. `make test` stays the whole suite.
test-quick: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow" --ignore=tests/spark

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(DEV_STAMP)
	$(BIN)/python bench/bench_api.py
	$(BIN)/python bench/bench_operations.py   # the operational features' cost; the overload knee
	$(BIN)/python bench/bench_volume.py       # a 155-slice volume beside one slice
	$(BIN)/python bench/bench_onnx.py         # ONNX Runtime beside TensorFlow: start, RSS, latency

# Spark classify on local[2] and on standalone clusters of 1 and 2 one-core workers vs a
# plain loop over the Testing images; BENCH_SPARK_ARGS=--limit 40 for a short run
bench-spark: $(DEV_STAMP) check-java
	$(BIN)/python bench/bench_spark.py $(BENCH_SPARK_ARGS)

# pyspark 4 needs Java 17+: says how to install it (and does, as root with apt-get).
# `make run` does not depend on it: the API runs without Java unless SPARK_ENABLED=true.
check-java:
	@sh scripts/check-java.sh

# The recipe of the shipped model (see models/MODEL_CARD.md); each run resumes if
# interrupted and writes into its run folder. Four runs: the classifier (40 epochs), an
# outline decoder on its frozen backbone (`--backbone-from`, 12 epochs), the whole
# outline model fine-tuned from there (10 epochs at 0.0007), then 8 more epochs at 0.0005
# with the tumour volumes' mirrored hemispheres as healthy brains (`--mirror-hemispheres`);
# then the volume threshold is chosen on the volumes' validation cases and their derived
# healthy versions (`--derived`). About 2 h 10 min on 2 cores.
train: $(TRAIN_STAMP)
	$(BIN)/braintumor train --data $(BRAINTUMOR_DATA)/Training --arch compact --size 144 \
		--width 32 --framing head --extra-tumour $(BRAINTUMOR_EXTRA_TUMOUR) \
		--sources $(BRAINTUMOR_DATA)/sources.tsv --augment source-robust --label-smoothing 0.05 \
		--ema 0.995 --epochs 40 --patience 40 --memory-scope tumour-type --seed 42 \
		--run-dir runs/robust-144 --out runs/robust-144/candidate.keras
	$(BIN)/braintumor train $(SEG_COMMON) --epochs 12 \
		--backbone-from runs/robust-144/candidate.keras \
		--run-dir runs/seg-frozen --out runs/seg-frozen/braintumor-cnn.keras
	$(BIN)/braintumor train $(SEG_COMMON) --epochs 10 --lr 0.0007 \
		--init-weights runs/seg-frozen/train.best.weights.h5 \
		--run-dir runs/seg-ft --out runs/seg-ft/braintumor-cnn.keras
	$(BIN)/braintumor train $(SEG_COMMON) --epochs 8 --lr 0.0005 --mirror-hemispheres \
		--init-weights runs/seg-ft/train.best.weights.h5 \
		--run-dir runs/seg-mirror --out models/braintumor-cnn.keras
	$(BIN)/braintumor fit-series-threshold $(BRAINTUMOR_VOLUMES) --derived \
		--model models/braintumor-cnn.keras

# An outline model trained whole from scratch (the model card's candidates 1 and 2, not
# shipped), on the expert outlines and the volumes' train cases (BRAINTUMOR_MASKS,
# BRAINTUMOR_VOLUMES); `make train` shares its options (SEG_COMMON). Two runs:
# 10 epochs from scratch (the volumes' variants as three collections), then a warm restart
# from its best weights for 16 epochs at half the learning rate with the volumes as one
# collection; then the volume threshold is chosen on the validation volumes. Each run
# resumes if interrupted. It writes into its run folders only.
SEG_COMMON = --data $(BRAINTUMOR_DATA)/Training --arch compact-seg --size 144 --width 32 \
	--framing head --extra-tumour $(BRAINTUMOR_EXTRA_TUMOUR) \
	--sources $(BRAINTUMOR_DATA)/sources.tsv --augment source-robust --label-smoothing 0.05 \
	--ema 0.995 --patience 40 --memory-scope tumour-type --seed 42 \
	--masks $(BRAINTUMOR_MASKS)/training --volumes $(BRAINTUMOR_VOLUMES)
train-seg: $(TRAIN_STAMP)
	$(BIN)/braintumor train $(SEG_COMMON) --epochs 10 --volume-collections per-variant \
		--run-dir runs/seg-144 --out runs/seg-144/braintumor-cnn.keras
	$(BIN)/braintumor train $(SEG_COMMON) --epochs 16 --lr 0.001 \
		--init-weights runs/seg-144/train.best.weights.h5 \
		--run-dir runs/seg-144-r2 --out runs/seg-144-r2/braintumor-cnn.keras
	$(BIN)/braintumor fit-series-threshold $(BRAINTUMOR_VOLUMES) \
		--model runs/seg-144-r2/braintumor-cnn.keras

# Testing figures, by collection, and the extra tumour slices the training run held out
evaluate: $(EVAL_STAMP)
	$(BIN)/braintumor evaluate --model models/braintumor-cnn.keras \
		--data $(BRAINTUMOR_DATA)/Testing \
		--hard-subset $(BRAINTUMOR_DATA)/hard_test_subset.txt \
		--sources $(BRAINTUMOR_DATA)/sources.tsv --extra-tumour $(BRAINTUMOR_EXTRA_TUMOUR) \
		--out reports/default

# The volumes' test cases (split by case) through the series endpoint's path, and their
# derived healthy versions (skull-stripped, mirrored; reported apart): per-series and
# per-slice figures, a plot per volume; EVALUATE_SERIES_ARGS=--cases val for the other side
evaluate-series: $(EVAL_STAMP)
	$(BIN)/braintumor evaluate-series $(BRAINTUMOR_VOLUMES) --model models/braintumor-cnn.keras \
		--derived --out reports/series $(EVALUATE_SERIES_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache src/*.egg-info

# ---- web frontend: frontend/ (React + Vite), built into frontend/dist, served by Flask ----
FRONTEND := frontend
NPM ?= npm
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
FRONTEND_DEPS := $(FRONTEND)/node_modules/.installed
FRONTEND_BUILT := $(FRONTEND)/dist/index.html
FRONTEND_SOURCES := $(shell find $(FRONTEND)/src -type f 2>/dev/null) $(wildcard \
	$(addprefix $(FRONTEND)/,index.html package.json package-lock.json tsconfig.json vite.config.ts))
# Vite 8 needs Node.js 20.19 or newer
NODE_CHECK := command -v $(NPM) >/dev/null 2>&1 && node -e 'const [a, b] = \
	process.versions.node.split(".").map(Number); process.exit(a > 20 || (a == 20 && b >= 19) ? 0 : 1)'
NODE_MISSING := Node.js 20.19+ with npm is needed for the web frontend (found: $$(node --version 2>/dev/null || echo no node))

.PHONY: frontend frontend-auto frontend-test chromium

$(FRONTEND_DEPS): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && $(NPM) ci --no-audit --no-fund
	touch $@

$(FRONTEND_BUILT): $(FRONTEND_DEPS) $(FRONTEND_SOURCES)
	cd $(FRONTEND) && $(NPM) run build

# Build the page (again when a source is newer than the build).
frontend:
	@$(NODE_CHECK) || { echo "error: $(NODE_MISSING)"; exit 1; }
	@$(MAKE) --no-print-directory $(FRONTEND_BUILT)

# What `make run` does first: build when it can, otherwise say so and serve the API alone.
frontend-auto:
	@if $(NODE_CHECK); then \
		$(MAKE) --no-print-directory $(FRONTEND_BUILT) \
			|| echo "warning: the web frontend did not build (see above): serving the API only"; \
	else \
		echo "note: $(NODE_MISSING); serving the API only (then 'make frontend' adds the web page)"; \
	fi

# Component tests, production build, then the browser against the real server and model.
frontend-test: $(STAMP) chromium
	@$(NODE_CHECK) || { echo "error: $(NODE_MISSING)"; exit 1; }
	@$(MAKE) --no-print-directory $(FRONTEND_DEPS)
	cd $(FRONTEND) && $(NPM) test
	cd $(FRONTEND) && $(NPM) run build
	cd $(FRONTEND) && $(NPM) run e2e

# The end-to-end tests drive Debian's Chromium (Playwright's own browser download cannot work).
chromium:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Chromium not found at $(CHROMIUM): installing Debian's chromium package (apt-get) for the end-to-end tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit 1; \
		else \
			echo "error: the end-to-end tests need Chromium at $(CHROMIUM): install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM=/path/to/chromium"; \
			exit 1; \
		fi; \
	fi

# The DICOMweb tests (tests/dicomweb) run a real Orthanc with its DICOMweb plugin and check
# the SR and Secondary Capture with dciodvfy: Debian's orthanc, orthanc-dicomweb and
# dicom3tools packages, installed here when missing (as root).
ORTHANC ?= /usr/sbin/Orthanc
ORTHANC_DICOMWEB ?= /usr/share/orthanc/plugins/libOrthancDicomWeb.so
export ORTHANC
.PHONY: orthanc
orthanc:
	@if [ ! -x "$(ORTHANC)" ] || [ ! -f "$(ORTHANC_DICOMWEB)" ] || ! command -v dciodvfy >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "Orthanc, its DICOMweb plugin or dciodvfy not found: installing Debian's orthanc, orthanc-dicomweb and dicom3tools packages (apt-get) for the DICOMweb tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends orthanc orthanc-dicomweb dicom3tools >/dev/null || exit 1; \
		else \
			echo "error: the DICOMweb tests need Orthanc at $(ORTHANC) with $(ORTHANC_DICOMWEB), and dciodvfy: install them (Debian/Ubuntu: sudo apt-get install orthanc orthanc-dicomweb dicom3tools) or set ORTHANC=/path/to/Orthanc"; \
			exit 1; \
		fi; \
	fi
