#!/usr/bin/env bash
# The checks that need an accelerator, in under 8 minutes, one line each (scripts/gpu_check.py):
# the uniformity kernel against torch.pdist, the batched antialiased crops, one step of every
# shipped preset in its precision on tiny format-exact data written here (nothing downloaded),
# each paper linear probe, and the 2-rank nccl path when two GPUs exist.
#
#   scripts/gpu-check.sh                  # no CUDA: one SKIP line, exit 0
#   scripts/gpu-check.sh --require-gpu    # no CUDA: one FAIL line, exit 1
#   scripts/gpu-check.sh --only uniform,crops
#
# Exit 0: every check passed or was skipped; 1: a FAIL line (or no CUDA with --require-gpu).
# PYTHON picks the interpreter (default: .venv/bin/python of this checkout, else python3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
exec timeout --signal=INT 470 "$python" "$root/scripts/gpu_check.py" "$@"
