"""The MoCo variant: Eq. 17/18 against float64 references, queue and EMA mechanics, a short run."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from alignuniform.core.losses import moco_uniform_loss
from alignuniform.core.objective import Objective
from alignuniform.runs.config import TrainConfig
from alignuniform.runs.rundir import RunDir, read_jsonl
from alignuniform.training.methods import MocoMethod
from alignuniform.training.trainer import train
from helpers.commands import child
from helpers.distributed import free_port
from helpers.runs import tiny_config


def sphere(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def eq18_reference(q: torch.Tensor, queue: torch.Tensor, t: float) -> torch.Tensor:
    """Paper Eq. 18, literally: 2/(2NK + K(K-1)) (sum_ij G(q_i, Q_j) + sum_{i<j} G(q_i, q_j))."""
    k, n = q.shape[0], queue.shape[0]
    cross = torch.cdist(q, queue).pow(2).mul(-t).exp().sum()
    within = torch.pdist(q).pow(2).mul(-t).exp().sum()
    return torch.log(2 / (2 * n * k + k * (k - 1)) * (cross + within))


@pytest.mark.parametrize("t", [0.5, 2.0, 3.0])
def test_eq18_equals_its_float64_definition(t):
    q, queue = sphere(37, 16, 0), sphere(301, 16, 1)
    assert moco_uniform_loss(q, queue, t).item() == pytest.approx(
        eq18_reference(q, queue, t).item(), rel=1e-9
    )


def test_eq17_is_the_queue_only_mean():
    q, queue = sphere(20, 8, 2), sphere(50, 8, 3)
    expected = torch.cdist(q, queue).pow(2).mul(-2.0).exp().mean().log()
    assert moco_uniform_loss(q, queue, 2.0, form="eq17").item() == pytest.approx(
        expected.item(), rel=1e-9
    )


def test_eq18_gradient_matches_autograd_of_the_definition():
    q = sphere(12, 6, 4).requires_grad_()
    queue = sphere(30, 6, 5)
    (grad,) = torch.autograd.grad(moco_uniform_loss(q, queue, 2.0), q)
    (expected,) = torch.autograd.grad(eq18_reference(q, queue, 2.0), q)
    torch.testing.assert_close(grad, expected, rtol=1e-7, atol=1e-10)


def make_method(queue_size: int = 10, momentum: float = 0.9) -> MocoMethod:
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    return MocoMethod(
        encoder,
        nn.Identity(),
        Objective.parse("align + uniform"),
        out_dim=3,
        queue_size=queue_size,
        momentum=momentum,
    )


def test_enqueue_replaces_the_oldest_keys_and_wraps_around():
    method = make_method(queue_size=10)
    first, second = sphere(6, 3, 6).float(), sphere(6, 3, 7).float()
    method.enqueue(first)
    method.enqueue(second)
    torch.testing.assert_close(method.queue[6:10], second[:4])
    torch.testing.assert_close(method.queue[0:2], second[4:])
    torch.testing.assert_close(method.queue[2:6], first[2:])
    assert int(method.queue_ptr) == 2


def test_key_encoder_is_an_exponential_moving_average():
    method = make_method(momentum=0.9)
    before = [p.detach().clone() for p in method.key_encoder.parameters()]
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    method.update_key_encoder()
    for key, old, query in zip(
        method.key_encoder.parameters(), before, method.encoder.parameters(), strict=True
    ):
        torch.testing.assert_close(key, 0.9 * old + 0.1 * query)
        assert not key.requires_grad


@pytest.mark.slow
def test_short_moco_run_trains_without_nan(fmnist_dir, tmp_path):
    config = tiny_config(
        fmnist_dir,
        subset=256,
        epochs=2,
        method="moco",
        moco_queue=128,
        moco_bn_groups=4,  # shuffled BN on one process: four groups of 16 keys
        loss="align(alpha=2) + uniform(t=3)",
    )
    run_dir = train(config, tmp_path / "moco", progress=False)
    records = read_jsonl(RunDir(run_dir).metrics)
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert all(math.isfinite(v) for v in record["terms"].values())
        assert math.isfinite(record["align"]) and math.isfinite(record["uniform"])


@pytest.mark.slow
def test_eq18_at_batch_256_and_queue_65536_stays_under_1_gib():
    script = textwrap.dedent("""
        import resource, torch
        from torch.nn.functional import normalize
        from alignuniform.core.losses import moco_uniform_loss
        q = normalize(torch.randn(256, 128), dim=1).requires_grad_()
        queue = normalize(torch.randn(65536, 128), dim=1)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        moco_uniform_loss(q, queue, 2.0).backward()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
    """)
    out = child("-c", script, check=True)
    assert int(out.stdout.split()[-1]) < 2**30


class BatchNormKeys(nn.Module):
    """A key encoder whose output depends on its batch (BatchNorm in training mode); it records
    the inputs it sees."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 4))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.net(x)


def _shuffle_bn_worker(rank: int, world: int, port: int, out: str) -> None:
    import json
    import os

    import torch.distributed as dist

    from alignuniform.training.methods.moco import global_keys

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    views = torch.randn(4 * world, 6, generator=torch.Generator().manual_seed(5))
    share = views.chunk(world)[rank]
    encoder = BatchNormKeys()
    torch.manual_seed(7)  # rank 0 draws the permutation from this state
    keys = global_keys(encoder, share, shuffle_bn=True, groups=3)  # groups: one process only
    # the one-process reference: the same permutation, each share encoded on its own (as its
    # process would, with its own batch statistics), then the original order restored
    order = torch.randperm(len(views), generator=torch.Generator().manual_seed(7))
    reference = BatchNormKeys()
    shares = views[order].chunk(world)
    encoded = torch.cat([reference(s) for s in shares])
    expected = torch.empty_like(encoded)
    expected[order] = nn.functional.normalize(encoded, dim=1)
    unshuffled = nn.functional.normalize(BatchNormKeys()(share), dim=1)
    report = {
        "saw_its_shuffled_share": torch.equal(encoder.seen[0], shares[rank]),
        "saw_its_own_share": torch.equal(encoder.seen[0], share),
        "keys_error": (keys - expected).abs().max().item(),
        "differs_from_no_shuffle": (keys[rank * 4 : rank * 4 + 4] - unshuffled).abs().max().item(),
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


@pytest.mark.slow
def test_shuffling_bn_encodes_a_permuted_batch_and_restores_the_order(tmp_path):
    import json

    import torch.multiprocessing as mp

    mp.start_processes(
        _shuffle_bn_worker,
        args=(2, free_port(), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="spawn",
    )
    for rank in range(2):
        report = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert report["saw_its_shuffled_share"] and not report["saw_its_own_share"], report
        assert report["keys_error"] < 1e-6, report
        assert report["differs_from_no_shuffle"] > 1e-3, report  # the test has teeth


def grouped_reference(views: torch.Tensor, order: torch.Tensor, groups: int) -> torch.Tensor:
    """Shuffled BN on one process, written out: each group of the permuted batch through a fresh
    copy of the key encoder (its own batch statistics), then row ``order[i]`` gets key i."""
    encoder = BatchNormKeys()
    encoded = torch.cat([encoder(part) for part in views[order].tensor_split(groups)])
    keys = torch.empty_like(encoded)
    keys[order] = nn.functional.normalize(encoded, dim=1)
    return keys


def test_one_process_shuffled_bn_encodes_groups_with_their_own_statistics():
    from alignuniform.training.methods.moco import global_keys

    views = torch.randn(12, 6, generator=torch.Generator().manual_seed(5))
    encoder = BatchNormKeys()
    torch.manual_seed(7)
    keys = global_keys(encoder, views, shuffle_bn=True, groups=3)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(7))
    assert [len(seen) for seen in encoder.seen] == [4, 4, 4]
    assert all(torch.equal(a, b) for a, b in zip(encoder.seen, views[order].chunk(3), strict=True))
    assert (keys - grouped_reference(views, order, 3)).abs().max() < 1e-6
    whole = nn.functional.normalize(BatchNormKeys()(views), dim=1)
    assert (keys - whole).abs().max() > 1e-3  # per-group statistics change the keys
    # one group, or shuffling off: the whole batch at once, as before
    for groups, shuffle in ((1, True), (3, False)):
        plain = global_keys(BatchNormKeys(), views, shuffle_bn=shuffle, groups=groups)
        assert torch.allclose(plain, whole, atol=1e-6)


def test_one_process_shuffled_bn_puts_every_key_back_on_its_row():
    """A key encoder without batch statistics (BN in eval mode): grouping and shuffling must then
    change nothing, so every key is back on its own query's row."""
    from alignuniform.training.methods.moco import global_keys

    views = torch.randn(10, 6, generator=torch.Generator().manual_seed(1))
    encoder = BatchNormKeys().eval()
    torch.manual_seed(3)
    grouped = global_keys(encoder, views, shuffle_bn=True, groups=4)  # uneven: 3, 3, 2, 2
    assert [len(seen) for seen in encoder.seen] == [3, 3, 2, 2]
    assert not torch.equal(torch.cat(encoder.seen), views)  # the groups saw a shuffled batch
    expected = nn.functional.normalize(BatchNormKeys().eval()(views), dim=1)
    assert torch.allclose(grouped, expected, atol=1e-6)
    encoder.seen.clear()
    global_keys(encoder, views[:5], shuffle_bn=True, groups=4)  # two keys a group at least
    assert [len(seen) for seen in encoder.seen] == [3, 2]


def test_moco_bn_groups_is_read_from_the_config_and_checked():
    config = TrainConfig(method="moco", batch_size=8, moco_bn_groups=4, out_dim=8)
    method = MocoMethod.from_config(
        nn.Linear(4, 8), nn.Identity(), config.validate(), train_data=None
    )
    assert method.bn_groups == 4 and method.shuffle_bn
    with pytest.raises(ValueError, match="moco_bn_groups: must be an integer >= 1"):
        TrainConfig(method="moco", moco_bn_groups=0).validate()
