# HematoVision — the two set-up commands a new user needs are `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
EXPORT_VENV := .venv-export
TOOLS_VENV := .venv-tools
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: serve test lint format venv export-venv tools-venv train promote evaluate evaluate-fields export-smoke bench bench-power build package-size clean

$(VENV)/.installed: pyproject.toml functions/classifier/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) -r functions/classifier/requirements.txt -r requirements-dev.txt
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

venv: $(VENV)/.installed

$(EXPORT_VENV)/.installed: pyproject.toml export/requirements.txt functions/classifier/requirements.txt
	$(PYTHON) -m venv $(EXPORT_VENV)
	$(EXPORT_VENV)/bin/pip install $(PIP_FLAGS) -r export/requirements.txt
	$(EXPORT_VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e .
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

## The README screenshot (docs/screenshot.png): the upload page with the committed model's real predictions
## on bccd TEST_SIMPLE photos, in Debian's Chromium (`apt-get install chromium`).
.PHONY: screenshot
screenshot: venv
	$(VENV)/bin/python -m tests.browser.readme_screenshot docs/screenshot.png

## Install everything the tests need, then run the whole suite.
test: venv export-venv tools-venv lint
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

## ruff (config in pyproject.toml): the formatter and the linter, zero findings; `make format` fixes what it can.
lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## Train the committed recipe (export/recipe.json) into a fresh run folder (train, ONNX export, evaluation, card;
## about an hour on 2 cores; not part of CI), then promote it to the shipped model.
train: export-venv
	run=build/runs/make-train-$$(date -u +%Y%m%d-%H%M%S) && \
	$(EXPORT_VENV)/bin/python -m export all --work $$run && \
	$(EXPORT_VENV)/bin/python -m export promote $$run

## Ship a finished run: make promote RUN=build/runs/NAME (refused unless its recipe is export/recipe.json at HEAD).
promote: export-venv
	$(EXPORT_VENV)/bin/python -m export promote $(RUN)

## Re-evaluate the committed model (export/artifacts + functions/classifier/model) and rewrite its card: the metrics,
## the third lab (dbn-select, dbn-report), the robustness table and, for a cell model, the thresholds' calibration;
## the card states the minutes it took and the machine's load average (docs/model-card.md, "Re-measure").
evaluate: export-venv
	$(EXPORT_VENV)/bin/python -m export evaluate

## The whole-field localiser on the report split of ../shared/data/fields (every set and robustness version, ~6 min):
## prints the figures and writes them into the model card's localisation section (docs/model-card.md).
evaluate-fields: venv
	$(VENV)/bin/python -m export.fields --split report --card

## The committed recipe on a few dozen images and 2 epochs, end to end, into build/smoke (~3 min).
export-smoke: export-venv
	rm -rf build/smoke
	$(EXPORT_VENV)/bin/python -m export all --smoke --work build/smoke

## Benchmarks against the paper's Keras path (about 6-8 min, on an idle machine): a markdown table on stdout
## and in docs/benchmarks.md. BENCH_ARGS="--model-dir build/smoke/model --keras-model build/smoke/classifier.keras"
## points it at the smoke model; `--quick` checks the code in a minute (see bench/__main__.py).
bench: venv export-venv
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

## Lambda power tuning, simulated (bench/power.py, ~5 min, needs root for the cgroups): the handler warm and cold under
## the CPU share and memory limit of 512-3008 MB, the price per 1,000 classifications; writes bench/results/power.json
## and its section of docs/benchmarks.md. POWER_ARGS="--model-dir DIR" points it at another model, "--quick" checks it.
bench-power: venv
	$(VENV)/bin/python -m bench.power $(POWER_ARGS)

## Post-deploy smoke test against any base URL (a stage's ApiUrl output, or a custom domain's root):
## make smoke URL=https://{api}.execute-api.{region}.amazonaws.com/dev KEY=...  (scripts/smoke.py: health, model card,
## a real cell photo classified 200, a wrong key 403, an unknown route 404). The key reaches it by the environment.
.PHONY: smoke
smoke: export HEMATOVISION_API_KEY = $(KEY)
smoke:
	@test -n "$(URL)" -a -n "$$HEMATOVISION_API_KEY" || { echo "usage: make smoke URL=https://... KEY=..." >&2; exit 2; }
	$(PYTHON) scripts/smoke.py "$(URL)"

## Build the Lambda package offline (sam build, no Docker; pip fetches python3.12/x86_64 wheels),
## then print its unzipped size. Deploy with: $(TOOLS_VENV)/bin/sam deploy --config-env dev (README "Deploy").
build: tools-venv
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1} SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam build $(SAM_BUILD_ARGS)
	$(MAKE) --no-print-directory package-size

## Unzipped size of the built package (.aws-sam/build/ClassifierFunction) against the budget.
package-size:
	@$(PYTHON) infra/package_size.py; status=$$?; [ $$status -le 1 ] || exit $$status

clean:
	rm -rf $(VENV) $(EXPORT_VENV) $(TOOLS_VENV) .aws-sam build
