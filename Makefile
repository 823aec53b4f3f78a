# sagemaker-loadtest. `make help` lists every target; `make run` and `make test` are the two that matter.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help venv tools run test unit e2e bench lint image run-local run-local-down clean

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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

test: venv tools lint ## The whole test suite: lint, unit and integration tests with real processes
	$(BIN)/pytest tests/unit tests/integration

unit: venv ## Unit tests only: no system tools, under a minute
	$(BIN)/pytest -q tests/unit

# ---- Docker (docs/docker.md) -------------------------------------------------------------------
IMAGE ?= sagemaker-loadtest:dev
BASE_IMAGE ?= python:3.12-slim
WORKERS ?= 2
# An engine without the default bridge network (like the test engine) builds on the host network.
DOCKER_BUILD_NETWORK = $(shell docker network inspect bridge >/dev/null 2>&1 || echo --network host)
# A real endpoint (SAGEMAKER_ENDPOINT_NAME=...) replaces the emulator with AWS: docker/compose.aws.yaml.
COMPOSE = scripts/compose.sh -f docker/compose.yaml $(if $(SAGEMAKER_ENDPOINT_NAME),-f docker/compose.aws.yaml)
COMPOSE_UP = up --detach --scale worker=$(WORKERS)

image: ## Build the image sagemaker-loadtest:dev (IMAGE=name:tag, BASE_IMAGE=... e.g. smload/base:bookworm)
	docker build $(DOCKER_BUILD_NETWORK) --build-arg BASE_IMAGE=$(BASE_IMAGE) \
		--build-arg VERSION=$$(git describe --tags --always --dirty 2>/dev/null || echo dev) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		-t $(IMAGE) .

# Your own request bodies and locustfile, mounted into the master and every worker:
#   make run-local PAYLOADS=bodies/ (or one file) LOCUSTFILE=tests/my_locustfile.py
ifdef PAYLOADS
run-local: export SMLOAD_PAYLOAD_DIR = $(abspath $(if $(wildcard $(PAYLOADS)/.),$(PAYLOADS),$(dir $(PAYLOADS))))
run-local: export LOCUST_PAYLOAD = /mnt/payloads$(if $(wildcard $(PAYLOADS)/.),,/$(notdir $(PAYLOADS)))
endif
ifdef LOCUSTFILE
run-local: export SMLOAD_LOCUST_DIR = $(abspath $(dir $(LOCUSTFILE)))
run-local: export LOCUST_LOCUSTFILE = /mnt/locust/$(notdir $(LOCUSTFILE))
endif
run-local: export LOCUST_EXPECT_WORKERS ?= $(WORKERS)
# No ~/.aws (credentials from AWS_* variables only): mount an empty directory instead.
run-local: export SMLOAD_AWS_DIR ?= $(if $(wildcard $(HOME)/.aws/.),$(HOME)/.aws,$(CURDIR)/docker/no-aws-config)

run-local: image ## Local stack: emulator, master, WORKERS=2 workers, Prometheus, Grafana (SAGEMAKER_ENDPOINT_NAME=... AWS_REGION=... for a real endpoint)
	mkdir -p reports
	SMLOAD_IMAGE=$(IMAGE) SMLOAD_UID=$$(id -u) SMLOAD_GID=$$(id -g) $(COMPOSE) $(COMPOSE_UP)
	@echo
	@echo "  Locust web UI  http://127.0.0.1:$${SMLOAD_WEB_PORT:-8089}"
	@echo "  Grafana        http://127.0.0.1:$${SMLOAD_GRAFANA_PORT:-3000}"
	@echo "  Prometheus     http://127.0.0.1:$${SMLOAD_PROMETHEUS_PORT:-9090}"
	@echo
	@echo "  more workers: make run-local WORKERS=4   logs: scripts/compose.sh -f docker/compose.yaml logs -f   stop: make run-local-down"

run-local-down: ## Stop the local stack and remove its containers (the reports in ./reports stay)
	scripts/compose.sh -f docker/compose.yaml down --remove-orphans

e2e: venv tools ## Container tests: own Docker engine, base image and image builds, containers on the host network
	$(BIN)/pytest --timeout 900 tests/e2e

.PHONY: emulator bench-emulator bench-llm-emulator bench-core bench-exporter bench-master-scale bench-calibration bench-helm bench-docker bench-ab bench-sigv4 bench-autoscaling bench-open-loop bench-llm-client peers
emulator: venv ## Run the emulator alone on 127.0.0.1:8080 with emulator/examples/ab-test.yaml (Ctrl-C stops it)
	$(BIN)/smload emulator --config emulator/examples/ab-test.yaml

# Benchmarks: each takes the machine-wide lock so that two never share the cores; bench/RESULTS.md
# holds the recorded results and the command behind each table.
bench: bench-emulator bench-llm-emulator bench-core bench-exporter bench-master-scale bench-calibration bench-helm bench-ab bench-sigv4 bench-autoscaling bench-open-loop bench-llm-client ## Every benchmark but the image's (bench/RESULTS.md)

bench-emulator: venv tools ## Emulator throughput benchmark, pinned to one core next to a bare uvloop server (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_emulator.py

bench-llm-emulator: venv tools ## LLM emulator: tokens/s of 1-ms decode steps on one core, OpenAI route and response stream (bench/RESULTS.md)
	flock /tmp/smload-bench.lock $(BIN)/python bench/bench_llm_emulator.py

bench-core: venv ## Load generator: req per CPU-second of fast vs boto3 vs FastHttpUser, and latency honesty (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_core.py

bench-exporter: venv ## Exporter cost: scrape time and master CPU, 50 names x 4 workers at 2,000 req/s (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_exporter.py

bench-master-scale: venv ## Master at scale: 100 simulated workers x 20 names reporting every 3 s; master CPU, fold per round, /metrics scrape (bench/RESULTS.md)
	flock /tmp/smload-bench.lock $(BIN)/python bench/bench_master_scale.py

bench-calibration: venv ## Calibration against emulator endpoints of known capacity: knee error and time (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_calibration.py

bench-helm: venv ## Workers added mid-test: time until they hold users, with and without --enable-rebalancing (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_helm.py --rounds 3

bench-ab: venv ## A/B statistics: false positives, coverage and power of the intervals, simulated (bench/RESULTS.md)
	flock /tmp/smload-bench.lock $(BIN)/python bench/bench_ab.py

bench-sigv4: venv ## The signer: microseconds per sign() on one core (bench/RESULTS.md)
	flock /tmp/smload-bench.lock taskset -c 0 $(BIN)/python bench/bench_sigv4.py --repeat 9

bench-autoscaling: venv ## Autoscaling simulation: seconds per simulated day and policy (bench/RESULTS.md)
	flock /tmp/smload-bench.lock $(BIN)/python bench/bench_autoscaling.py

bench-open-loop: venv peers ## Open loop at full length: rate truth, overload, stall, scale; lag beside locust-plugins (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env PYTHONPATH=tests $(BIN)/python bench/bench_open_loop.py

bench-llm-client: venv peers ## LLM client: tokens per CPU-second and TTFT/ITL error beside AIPerf and GuideLLM (bench/RESULTS.md)
	flock /tmp/smload-bench.lock $(BIN)/python bench/bench_llm_client.py --seconds 20

peers: bench/.peers/bin/guidellm ## The peers the benchmarks run beside ours (AIPerf, GuideLLM, locust-plugins), from PyPI, in bench/.peers
bench/.peers/bin/guidellm:
	$(PYTHON) -m venv bench/.peers
	bench/.peers/bin/pip install --quiet torch==2.13.0
	bench/.peers/bin/pip install --quiet aiperf guidellm locust-plugins==5.0.3

bench-docker: venv ## Image size and build/start times on the local base image; starts its own Docker engine (bench/RESULTS.md)
	flock /tmp/smload-bench.lock env BENCH_BASE=1 bench/bench_docker.sh

lint: venv ## ruff (lint and formatting) and the import contracts of the house (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	BIN=$(BIN) scripts/lint-imports.sh

clean: ## Remove the virtual environment, tools and caches
	rm -rf $(VENV) .tools .pytest_cache build *.egg-info

# ---- Generated documentation (docs/development.md "Documentation") ------------------------------
.PHONY: docs helm-docs
docs: venv ## Regenerate the generated parts of the docs: docs/options.md's tables and the chart's values table
	$(BIN)/python scripts/docs_options.py
	$(BIN)/python scripts/helm_values_table.py

helm-docs: venv ## Regenerate the Helm chart's values table (helm/sagemaker-loadtest/README.md) from its schema
	$(BIN)/python scripts/helm_values_table.py
