#!/usr/bin/env bash
# Static checks, the same locally and in CI.
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
bash hack/deps.sh
.venv/bin/ruff check operator tests
.venv/bin/ruff format --check operator tests
.venv/bin/lint-imports
.venv/bin/mypy
