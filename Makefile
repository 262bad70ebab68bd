# sf_platform: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sf_platform-installed

.PHONY: venv demo test lint validate ui bench system-deps clean

# Creates .venv if absent; reinstalls only when pyproject.toml changed (idempotent).
# torch/torchvision go first, pinned: they lie on local disk here, and an unpinned torch
# pulled in by another package would be a multi-GB download.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

venv: $(STAMP)

# Renders a synthetic sample source and materializes every asset for every sample partition
# into demo/store (file://), offline, with tiny random-weight models.
demo: venv
	$(VENV)/bin/sf-platform demo --dir demo

test: venv system-deps
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: venv
	$(VENV)/bin/ruff check sf_platform sf_platform_tests bench

validate: venv
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster definitions validate -w workspace.yaml

# The UI on the demo's instance and config (bound to 127.0.0.1).
ui: venv
	DAGSTER_HOME=$(CURDIR)/demo/dagster_home SF_PLATFORM_CONFIG=$(CURDIR)/demo/sources.yaml \
	  $(VENV)/bin/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# Headless Chromium for the report test (Debian package; the test suite needs it).
system-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

bench: venv
	$(PY) bench/ingest.py
	$(PY) bench/curation.py
	$(PY) bench/qa_throughput.py
	$(PY) bench/validate.py
	$(PY) bench/perception.py

clean:
	rm -rf demo .dagster_home
