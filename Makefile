# The two set-up commands are `make up` and `make test`; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTEST_ARGS ?=

.PHONY: help up down env test test-unit check images binaries bench clean-state \
	kind-up kind-down kind-env kind-node-image test-kind

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

kind-node-image: ## build the kind node image offline (cached by a hash of its inputs)
	@bash hack/dockerd.sh start && bash hack/kind-node-image.sh

kind-up: ## kind cluster, operator installed from manifests/deploy/overlays/kind, sample stack Ready (KIND_NODE_IMAGE=kindest/node:... skips the node-image build)
	@bash hack/dockerd.sh start && bash hack/kind.sh up

kind-down: ## remove the kind cluster and its network; host sysctls as before kind-up
	@bash hack/kind.sh down

kind-env: ## print export lines for the kind cluster: eval "$$(make -s kind-env)"
	@bash hack/kind.sh env

test-kind: ## only the kind suite (makes the cluster if needed; KIND_NODE_IMAGE as for kind-up)
	@bash hack/deps.sh && bash hack/dockerd.sh start && KIND_SAMPLE=0 bash hack/kind.sh up \
		&& .venv/bin/python -m pytest -m kind tests/kind $(PYTEST_ARGS)
