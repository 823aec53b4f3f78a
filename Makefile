# sagemaker-loadtest. `make help` lists every target; `make run` and `make test` are the two that matter.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help venv tools run test e2e bench lint image run-local run-local-down clean helm-dashboards

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(INSTALLED) ## Create .venv with the project installed (editable) and the test tools

tools: ## Install the system tools the tests use (prometheus, chromium, helm, ...) where missing
	scripts/install-tools.sh

run: venv ## Demo: emulator + master + 2 workers for 30 s, summary per variant (SAGEMAKER_ENDPOINT_NAME=... targets a real endpoint)
	scripts/run.sh

test: venv tools ## Run the whole test suite: unit and integration tests with real processes
	$(BIN)/pytest tests/unit tests/integration

lint: venv ## Lint and check formatting with ruff
	$(BIN)/ruff check .

helm-dashboards: ## Copy the Grafana dashboards (docker/grafana/dashboards, the one source) into the Helm chart
	rm -f helm/sagemaker-loadtest/dashboards/*.json
	mkdir -p helm/sagemaker-loadtest/dashboards
	cp docker/grafana/dashboards/*.json helm/sagemaker-loadtest/dashboards/

clean: ## Remove the virtual environment, tools and caches
	rm -rf $(VENV) .tools .pytest_cache build *.egg-info
