# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup test test-gallery test-all lint format docs demo bench gallery gallery-docs clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: a bare `torch` requirement would pull the CUDA build.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==$(TORCH_VERSION)
	$(PIP) install -q -e ".[dev,docs,postgres]"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m ruff check src tests benchmarks examples docs
	$(PY) -m ruff format --check src tests benchmarks examples docs
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory docs

# The gallery's quick tier end to end (slow tests, a few minutes on 2 cores); CI runs it
# after make test.
test-gallery: setup
	$(PY) -m pytest -q -m slow tests/gallery

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

lint: setup
	$(PY) -m ruff check src tests benchmarks examples docs
	$(PY) -m ruff format --check src tests benchmarks examples docs

format: setup
	$(PY) -m ruff format src tests benchmarks examples docs
	$(PY) -m ruff check --fix src tests benchmarks examples docs

# The documentation site. Every warning fails the build (-W; -n: nitpicky, so a broken
# cross-reference fails too), and -E reads every page afresh so that no warning hides in
# an unchanged one. The loop checks that the site has every page it should.
DOC_PAGES := index getting-started optimizers schedules regularization data networks lab \
	parallel lectures gallery/index benchmarks speedrun contributing api/index \
	$(addprefix api/,optimlab optim curvature schedules regularize nn data problems train parallel lab run \
	viz gallery bench speedrun)

docs: setup
	$(PY) -m sphinx -E -W --keep-going -n -q -b html docs docs/_build/html
	@for page in $(DOC_PAGES); do \
		test -s docs/_build/html/$$page.html || { echo "docs: $$page.html missing"; exit 1; }; \
	done
	@echo "docs: docs/_build/html/index.html"

# The main job on the embedded digits problem; DATA=fmnist uses Fashion-MNIST's fmnist_mlp.
DATA ?= digits
DEMO_PROBLEM := $(if $(filter fmnist,$(DATA)),fmnist_mlp,digits_mlp)
DEMO_EPOCHS := $(if $(filter fmnist,$(DATA)),3,10)
LECTURE_OPTIMIZERS := sgd,momentum,nesterov,adagrad,rmsprop,adadelta,adam,nadam

demo: setup
	$(PY) -m optimlab.cli compare --problem $(DEMO_PROBLEM) --optimizers $(LECTURE_OPTIMIZERS) \
		--tune lr --lr-grid 1e-3,1,4 --seeds 3 --epochs $(DEMO_EPOCHS) --workers 2 \
		--name demo-$(DEMO_PROBLEM) --out runs/demo-$(DEMO_PROBLEM)

bench: setup
	$(PY) -m optimlab.cli bench optimizers

# The lectures' experiments rerun: runs/gallery/gallery.html. A rerun continues where a
# stopped one left off; TIER=standard or TIER=full for larger budgets.
TIER ?= quick
gallery: setup
	$(PY) -m optimlab.cli gallery --tier $(TIER) --workers 2 --out runs/gallery

# The same, and the documentation site's gallery page (docs/gallery) replaced by this run.
gallery-docs: setup
	$(PY) -m optimlab.cli gallery --tier $(TIER) --workers 2 --out runs/gallery --docs docs/gallery

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache docs/_build
