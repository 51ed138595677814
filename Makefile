# HematoVision — the two set-up commands a new user needs are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
EXPORT_VENV := .venv-export
TOOLS_VENV := .venv-tools
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: serve test venv export-venv tools-venv train export-smoke bench build clean

$(VENV)/.installed: pyproject.toml functions/classifier/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r functions/classifier/requirements.txt -r requirements-dev.txt
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

venv: $(VENV)/.installed

$(EXPORT_VENV)/.installed: export/requirements.txt functions/classifier/requirements.txt
	$(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install $(PIP_FLAGS) -r export/requirements.txt
	touch $@

export-venv: $(EXPORT_VENV)/.installed

$(TOOLS_VENV)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install $(PIP_FLAGS) -r requirements-tools.txt
	touch $@

tools-venv: $(TOOLS_VENV)/.installed

## Serve the committed model locally, exactly as Lambda runs it (no AWS account, no Docker).
serve: venv
	$(VENV)/bin/hematovision serve $(SERVE_ARGS)

## Install everything the tests need, then run the whole suite.
test: venv export-venv tools-venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## Full training + evaluation + ONNX export (about an hour on 2 cores; not part of CI).
train: export-venv
	$(EXPORT_VENV)/bin/python -m export all

export-smoke: export-venv
	$(EXPORT_VENV)/bin/python -m export all --smoke --out build/smoke

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(TOOLS_VENV) .aws-sam build
