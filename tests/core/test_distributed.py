"""Real multi-process torch.distributed (gloo) tests: 2 ranks on halves == 1 process on the whole.

DDP averages parameter gradients over ranks; the gathered loss must therefore hand each rank
W x its share of the gradient (distributed.gather_with_grad). These tests would catch a
missing or doubled factor W for every loss term.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from alignuniform.core.distributed import gather_with_grad
from alignuniform.core.losses import moco_uniform_loss
from alignuniform.core.objective import Objective
from alignuniform.runs.rundir import RunDir, read_jsonl
from helpers.commands import free_port, train_args

EXPRESSIONS = [
    "align(alpha=2)",
    "align(alpha=1)",
    "uniform(t=2)",
    "contrastive(tau=0.1)",
    "0.98*align(alpha=2) + 0.96*uniform(t=2) + 0.5*contrastive(tau=0.5)",
]


class TinyEncoder(nn.Module):
    """Linear map then L2 normalisation (no batch statistics, so halves are independent)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, x):
        return nn.functional.normalize(self.net(x), dim=1)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(16, 12, generator=generator, dtype=torch.float64)
    return a, a + 0.3 * torch.randn(16, 12, generator=generator, dtype=torch.float64)


def loss_and_grads(model, expression, a, b, gather):
    loss = Objective.parse(expression)(gather(model(a)), gather(model(b))).total
    model.zero_grad()
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    a, b = batch()
    rows = slice(rank * 16 // world, (rank + 1) * 16 // world)
    report = {}
    for expression in EXPRESSIONS:
        reference = TinyEncoder().double()
        ref_loss, ref_grads = loss_and_grads(reference, expression, a, b, lambda x: x)
        model = nn.parallel.DistributedDataParallel(TinyEncoder().double())
        loss, grads = loss_and_grads(model, expression, a[rows], b[rows], gather_with_grad)
        report[expression] = {
            "loss": abs(loss - ref_loss),
            "grad": max((g - r).abs().max().item() for g, r in zip(grads, ref_grads, strict=True)),
            "grad_scale": max(r.abs().max().item() for r in ref_grads),
        }
    # MoCo Eq. 18: queries gathered with gradient, a shared queue.
    queue = nn.functional.normalize(
        torch.randn(40, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64), dim=1
    )
    reference = TinyEncoder().double()
    ref = moco_uniform_loss(reference(a), queue, 2.0)
    ref.backward()
    model = nn.parallel.DistributedDataParallel(TinyEncoder().double())
    loss = moco_uniform_loss(gather_with_grad(model(a[rows])), queue, 2.0)
    loss.backward()
    report["moco_eq18"] = {
        "loss": abs(loss.item() - ref.item()),
        "grad": max(
            (p.grad - r.grad).abs().max().item()
            for p, r in zip(model.parameters(), reference.parameters(), strict=True)
        ),
        "grad_scale": max(r.grad.abs().max().item() for r in reference.parameters()),
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_for_every_term(tmp_path):
    mp.start_processes(
        _worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert set(report) == {*EXPRESSIONS, "moco_eq18"}
        for name, diff in report.items():
            assert diff["loss"] < 1e-10, (rank, name, diff)
            assert diff["grad_scale"] > 1e-4, (rank, name, diff)  # the test has teeth
            assert diff["grad"] < 1e-5 * max(1.0, diff["grad_scale"]), (rank, name, diff)


def torchrun(data_dir: Path, out: Path, nproc: int, *extra: str) -> subprocess.Popen:
    """Start ``torchrun`` on the tiny dataset for 3 epochs."""
    args = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        *train_args(data_dir, out, 3, *extra),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), deepest last."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier]
        found += children
        frontier = children
    return found


def finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output


@pytest.mark.slow
def test_torchrun_training_resumes_after_kill_and_matches_one_process(fmnist_dir, tmp_path):
    two = torchrun(fmnist_dir, tmp_path / "two", 2)
    metrics = RunDir(tmp_path / "two").metrics
    deadline = time.time() + 300
    while len(read_jsonl(metrics)) < 1 and two.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    for pid in [two.pid, *descendants(two.pid)]:  # torchrun starts ranks in new sessions
        os.kill(pid, signal.SIGKILL)
    two.communicate(timeout=60)
    assert 1 <= len(read_jsonl(metrics)) < 3, "the run ended before it could be killed"
    finish(torchrun(fmnist_dir, tmp_path / "two", 2, "--resume"))
    finish(torchrun(fmnist_dir, tmp_path / "one", 1))
    two_records = read_jsonl(metrics)
    one_records = read_jsonl(RunDir(tmp_path / "one").metrics)
    assert [r["epoch"] for r in two_records] == [1, 2, 3]  # one directory, written by rank 0
    for a, b in zip(two_records, one_records, strict=True):
        # Same global batches and seed; augmentation draws and BatchNorm statistics are per rank.
        assert a["loss"] == pytest.approx(b["loss"], rel=0.05, abs=0.05)
