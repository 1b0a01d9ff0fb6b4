# make demo: set up and decode with SVDD-PM on the DNA default.   make test: set up and run the tests.
# make docs: build the documentation site (site/) in strict mode.   make docs-serve: serve it locally.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-slow test-portable data clean docs docs-serve

setup: $(STAMP) data

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "setup: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the pins change. The constraints file keeps torch at the CPU build.
$(STAMP): $(VENV)/bin/python requirements.txt constraints.txt pyproject.toml
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements.txt
	# MOSES SMILES ship inside this wheel; its own dependencies fail to build, and we only read its data files.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps molsets==0.3.1
	# AntiBERTy's trained weights ship inside this wheel (1.0 ships none); its own dependencies want transformers 4, and
	# we read its weights and vocabulary by path into transformers 5's BertForMaskedLM (svdd_lightning/networks/antiberty.py).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps antiberty==0.1.3
	# Ehrlich functions and their genetic algorithm (domain=ehrlich): pytorch-holo pins numpy<2 in its metadata but runs
	# on numpy 2; what it really imports (botorch, pooch, pandas, hydra-core, wandb) comes from requirements.txt.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps pytorch-holo==0.0.5
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

data:
	bash scripts/fetch_data.sh

demo: setup
	$(PY) decode.py

test: setup
	$(PY) -m pytest -q --durations=15

test-slow: setup
	$(PY) -m pytest -q -m slow

# The rounding-sensitive tests under five kernel settings that stand in for other CPUs (scripts/test_portable.sh).
test-portable: setup
	PYTHON=$(PY) bash scripts/test_portable.sh

# The documentation site (docs/, mkdocs.yml): MkDocs + Material + mkdocstrings, built in strict mode into site/.
# Needs only the venv (not the main set-up stamp): the docs packages install under their own stamp.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(VENV)/bin/python requirements-docs.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

clean:
	rm -rf $(VENV) data outputs site
