#!/usr/bin/env bash
# Install everything the tests need, then run every tier: generated data, lint, types, unit,
# integration, system. Safe on a fresh machine and on a developer's: it only ever talks to
# loopback, and the system tier (root) builds and removes its own network namespaces.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
python=${PYTHON:-python3}

step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }

# Debian packages the tiers use: iproute2 (ip netns, veth), util-linux (setpriv, unshare,
# nsenter), systemd (systemd-analyze verify for the shipped units), shellcheck (shell
# scripts), heartbeat, keepalived and nftables (the namespace lab), resource-agents
# (ocf-tester and the OCF DTD) with libxml2-utils (xmllint), haproxy (the Ansible tier's
# `haproxy -c`), groff-base (the docs tier renders the manual page as man does), curl,
# openssl and dnsmasq-base (the HAProxy lab's clients, certificates and DNS catalog).
debs="iproute2 util-linux systemd shellcheck heartbeat keepalived nftables resource-agents libxml2-utils haproxy groff-base curl openssl dnsmasq-base"
missing=""
for pkg in $debs; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    step "installing Debian packages:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "scripts/test.sh: need root to install:$missing" >&2
        exit 1
    fi
    apt-get update -q
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

# Some tests run eipha as an unprivileged user (uid 65534), as production runs it from a
# world-readable install; a checkout in a private directory (mktemp -d makes it 0700) must be
# readable by that user too, so its top directory gets the mode a plain git clone has, and
# each directory above it that other users cannot pass through gets o+x (search only: its
# listing stays private).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
if [ "$(id -u)" -eq 0 ] && ! as_nobody test -x "$PWD/src"; then
    step "making the checkout readable by other users (chmod go+rx $PWD)"
    chmod go+rx "$PWD"
    above=$(dirname "$PWD")
    while [ "$above" != / ]; do
        if ! as_nobody test -x "$above"; then
            echo "    chmod o+x $above"
            chmod o+x "$above"
        fi
        above=$(dirname "$above")
    done
fi

step "installing into .venv"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -c requirements/constraints.txt -e '.[test,bench]'
export PATH="$PWD/.venv/bin:$PATH"

# The packaging and Ansible tiers install eipha into fresh virtualenvs with no index at all
# (--no-index --find-links build/wheelhouse), as an operator does on a node without one:
# the wheels of eipha's run-time dependencies are fetched here, once, at the tested versions.
step "wheelhouse of eipha's run-time dependencies (build/wheelhouse)"
mkdir -p build/wheelhouse
python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
    > build/runtime-requirements.txt
python -m pip wheel --quiet --disable-pip-version-check -c requirements/constraints.txt \
    -r build/runtime-requirements.txt -w build/wheelhouse

step "generated files (reduced botocore data, the OCF agent, the manual page) are up to date"
python tools/gen_ec2_model.py --check
python tools/gen_ocf_agent.py --check
python tools/gen_man.py --check

step "ruff"
ruff check .
ruff format --check .

step "shellcheck"
shellcheck scripts/*.sh .ci/run \
    src/eipha/resource_agents/heartbeat/eipha src/eipha/resource_agents/ocf/eipha \
    src/eipha/resource_agents/keepalived/eipha-notify \
    ansible/roles/keepalived/files/keepalived-config-test tests/ansible/bin/systemctl

step "mypy --strict"
mypy

step "import layers (lint-imports: the contracts in pyproject.toml)"
lint-imports --no-cache

# pytest exits 5 when it collects nothing; with set -e that fails the run, as it must.
step "unit tests"
pytest tests/unit "$@"

step "packaging (sdist and wheel built offline, twine check, the wheel in a fresh venv, install-agents)"
pytest tests/packaging "$@"

step "integration tests (moto server over HTTP, IMDSv2 doubles, eipha as a subprocess)"
pytest tests/integration "$@"

step "reliability tests (faults between eipha and EC2/IMDS, concurrency, SIGKILL, hostile input, secrets)"
pytest tests/reliability "$@"

step "docs (every example in README.md and docs/ checked by the real tools)"
pytest tests/docs "$@"

step "Ansible (yamllint, ansible-lint, syntax; as root: converges into a staging root, checked by the real tools)"
pytest tests/ansible "$@"

step "system tests (root: network namespaces, the real kernel)"
pytest tests/system "$@"

step "all tiers passed"
