#!/usr/bin/env bash
# Install everything the tests need, then run every tier: generated data, lint, types, unit,
# integration. Safe on a fresh machine and on a developer's: it only ever talks to loopback.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
python=${PYTHON:-python3}

step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }

step "installing into .venv"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c requirements/constraints.txt -e '.[test,bench]'
export PATH="$PWD/.venv/bin:$PATH"

step "generated botocore data matches the installed botocore"
python tools/gen_ec2_model.py --check

step "ruff"
ruff check .
ruff format --check .

step "mypy --strict"
mypy

# pytest exits 5 when it collects nothing; with set -e that fails the run, as it must.
step "unit tests"
pytest tests/unit "$@"

step "integration tests (moto server over HTTP, IMDSv2 doubles, eipha as a subprocess)"
pytest tests/integration "$@"

step "all tiers passed"
