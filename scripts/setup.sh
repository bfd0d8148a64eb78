#!/usr/bin/env bash
# Create .venv with PyTorch and alignuniform; install Fashion-MNIST from Debian when we can.
# Idempotent: a second run only re-checks. Usage: scripts/setup.sh [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras="io"
[[ "${1:-}" == "--test" ]] && extras="io,test"

if [[ ! -x .venv/bin/python ]]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    echo "[setup] installing torch==2.14.1 torchvision==0.29.1 (a few minutes)"
    .venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
fi
stamp=".venv/.alignuniform-${extras//,/-}"
if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
    echo "[setup] installing alignuniform[$extras]"
    .venv/bin/pip install -q -e ".[$extras]"
    touch "$stamp"
fi

fmnist=/usr/share/datasets/fashion-mnist
if [[ ! -f "$fmnist/train-images-idx3-ubyte.gz" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "[setup] installing Debian's dataset-fashion-mnist"
        apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
    else
        echo "[setup] Fashion-MNIST not found in $fmnist."
        echo "        Install it with 'sudo apt-get install dataset-fashion-mnist', or pass"
        echo "        --data-dir DIR (the four IDX .gz files), or --download to fetch it via torchvision."
    fi
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
