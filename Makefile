# gpu-inference: run `make help` for the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

##@ Settings (override on the command line: make demo SHAPE=spike)
PYTHON        ?= python3.11
VENV          ?= .venv
TOOLS_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/gpu-inference/tools
TOOLS_SOURCE  ?= build
CLUSTER_NAME  ?= gpu-inference
RELEASE       ?= gpu-inference
NAMESPACE     ?= gpu-inference
REGION        ?=
PROFILE       ?=
SHAPE         ?= step
VALUES        ?=
SET           ?=
OUT           ?= out
PYTEST_ARGS   ?=

export TOOLS_CACHE TOOLS_SOURCE
# make < 4.4 does not export variables to $(shell): pass the settings explicitly, so the PATH below
# names the directory `make tools` fills, also for `make demo TOOLS_CACHE=... TOOLS_SOURCE=...`.
TOOLS_BIN := $(shell TOOLS_CACHE='$(TOOLS_CACHE)' TOOLS_SOURCE='$(TOOLS_SOURCE)' hack/build-tools.sh --print-bin)
export PATH := $(TOOLS_BIN):$(abspath $(VENV))/bin:$(PATH)
export GPU_INFERENCE_TOOLS_BIN := $(TOOLS_BIN)
CLI := $(VENV)/bin/gpu-inference

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target> [SETTING=value]\n"} \
	  /^[A-Z_]+ +\?=/ { split($$0, kv, /[ ]+\?= */); printf "  \033[33m%-16s\033[0m default: %s\n", kv[1], kv[2] } \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Setup
.PHONY: tools
tools: ## Build the pinned tools (helm, kwok, Kubernetes, etcd, Prometheus, prometheus-adapter) into the versioned cache; TOOLS_SOURCE=release downloads official binaries.
	@hack/build-tools.sh

.PHONY: keda
keda: ## Build KEDA v2.21.0 (operator, metrics API server) for `local up --autoscaler keda` into its own cache; about 17 min cold, skips what is built.
	@hack/keda/build.sh

$(VENV)/.installed: tooling/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'pip==25.3'
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e 'tooling[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the Python environment with pinned dependencies.

.PHONY: checkov
checkov: ## Install the pinned policy scanner (checkov) into its own venv in the tool cache.
	tests/chart/policy/ensure-checkov.sh >/dev/null

.PHONY: setup
setup: tools venv checkov ## Everything the tests and the demo need.

##@ Development
.PHONY: lint
lint: setup ## ruff, mypy, import layers (lint-imports) and helm lint --strict.
	cd tooling && ../$(VENV)/bin/ruff check src ../tests ../loadtest && ../$(VENV)/bin/ruff format --check src ../tests ../loadtest
	cd tooling && ../$(VENV)/bin/mypy
	cd tooling && ../$(VENV)/bin/lint-imports --no-cache
	helm lint --strict charts/gpu-inference

.PHONY: test
test: setup ## Run every test: unit, chart and the local-cluster integration tests.
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: setup ## Only the fast tests (no cluster).
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

.PHONY: test-integration
test-integration: setup ## Only the local-cluster integration tests.
	$(VENV)/bin/pytest -m integration $(PYTEST_ARGS)

##@ Local cluster (no GPU, no Docker, no cloud; GPUs are simulated)
.PHONY: local-up
local-up: setup ## Start the local cluster and install the chart.
	$(CLI) local up --name $(CLUSTER_NAME) $(foreach f,$(VALUES),--values $(f)) $(foreach s,$(SET),--set $(s))

.PHONY: local-down
local-down: ## Stop the local cluster and remove everything it left.
	$(CLI) local down --name $(CLUSTER_NAME)

.PHONY: demo
demo: setup ## Local cluster, chart, a load test that must prove scale-up, a cost report.
	$(CLI) demo --name $(CLUSTER_NAME) --shape $(SHAPE) --out $(OUT)/demo \
	  $(foreach f,$(VALUES),--values $(f)) $(foreach s,$(SET),--set $(s))

##@ AWS (billable: read docs/runbook.md first)
.PHONY: deploy
deploy: setup ## Create the EKS cluster from eksctl/cluster.yaml and install the stack (REGION, PROFILE).
	$(CLI) deploy --config eksctl/cluster.yaml --release $(RELEASE) --namespace $(NAMESPACE) \
	  $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE))

.PHONY: destroy
destroy: setup ## Remove the stack and the cluster, then audit that nothing billable is left (REGION, PROFILE).
	$(CLI) destroy --config eksctl/cluster.yaml --release $(RELEASE) --namespace $(NAMESPACE) \
	  $(if $(REGION),--region $(REGION)) $(if $(PROFILE),--profile $(PROFILE))

.PHONY: clean
clean: ## Remove build outputs in the checkout (keeps the tool cache).
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache
