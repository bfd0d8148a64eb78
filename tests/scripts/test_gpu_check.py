"""scripts/gpu_check.py (run by scripts/gpu-check.sh): what it does on a machine without CUDA."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


@pytest.fixture
def gpu_check(monkeypatch):
    """The script as a module, on a machine that has no CUDA (whatever this one has)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return module


def test_without_cuda_it_says_so_in_one_line_and_exits_0(gpu_check, capsys):
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("SKIP cuda: no CUDA device")


def test_without_cuda_require_gpu_is_a_failure(gpu_check, capsys):
    assert gpu_check.main(["--require-gpu"]) == 1
    assert capsys.readouterr().out.startswith("FAIL cuda: no CUDA device")


def test_a_failing_check_is_one_fail_line_and_the_run_goes_on(gpu_check, capsys):
    def broken():
        raise AssertionError("max|grad - pdist| 1e-2")

    assert gpu_check.run("uniform", broken) is False
    assert gpu_check.run("nccl", lambda: "SKIP:1 GPU(s)") is True
    assert gpu_check.run("crops", lambda: "max err 1e-6") is True
    fail, skip, ok = capsys.readouterr().out.splitlines()
    assert fail.startswith("FAIL uniform: AssertionError: max|grad - pdist| 1e-2 (")
    assert skip == "SKIP nccl: 1 GPU(s)"
    assert ok.startswith("PASS crops: max err 1e-6 (")
