# Two entry points on a fresh machine: `make test` and `make report`. Both create the venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= quick

.PHONY: venv test test-slow report corpus lab clean

venv: $(STAMP)

# Re-install only when the dependency list changes; a second call does nothing.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q

test-slow: venv
	$(PY) -m pytest -q -m slow

corpus: venv
	$(VENV)/bin/mixkit corpus build

report: venv
	$(VENV)/bin/mixkit corpus build
	$(VENV)/bin/mixkit report --preset $(PRESET)

lab: venv
	$(PY) -m ipykernel install --sys-prefix --name mixkit --display-name "mixkit (.venv)"
	$(VENV)/bin/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root,)

clean:
	rm -rf $(VENV) reports
