# The two set-up commands are `make up` and `make test`; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help up down env test test-unit check images binaries bench clean-state

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

up: ## bare machine -> control plane, dockerd, images, CRDs, operator, sample stack
	@bash hack/up.sh

down: ## stop everything `make up` started; leaves no process, container or mount
	@bash hack/down.sh

env: ## print export lines: eval "$$(make -s env)"
	@bash hack/env.sh

test: ## install what is missing, then run the whole suite (unit, integration, e2e)
	@bash hack/test.sh $(PYTEST_ARGS)

test-unit: ## only the fast tests, no engines
	@bash hack/deps.sh && .venv/bin/python -m pytest -m unit -q $(PYTEST_ARGS)

check: ## ruff, mypy, import-linter
	@bash hack/check.sh

images: ## build the images (unchanged ones are skipped)
	@bash hack/dockerd.sh start && bash hack/build-images.sh all

binaries: ## build kube-apiserver, kubectl and etcd (cached per pinned version)
	@bash hack/build-binaries.sh all

clean-state: down ## also forget the control plane's data and certificates
	@rm -rf .local
