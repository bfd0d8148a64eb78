"""What only an accelerator can check, in a few minutes; one line a check (run by gpu-check.sh).

    python scripts/gpu_check.py [--device cuda] [--require-gpu] [--only NAME,...]

Checks (PASS / FAIL / SKIP, a name, the numbers behind the verdict):

- ``uniform``: the blockwise uniformity kernel on the device against ``torch.pdist``'s formula
  in float64 (value and gradient, N = 4096), and under bf16 autocast.
- ``crops``: the batched antialiased crop-resize on the device against the CPU path (torch's
  antialiased interpolate, PIL's filter), on the same boxes.
- ``preset NAME``: every shipped preset's dry run on tiny format-exact data written here (no
  download): preflight, then one measured training step at the preset's batch size and in its
  precision on the device (one per distinct step cost of a sweep).
- ``probe NAME``: each paper linear probe, one epoch, trained through an encoder on the device.
- ``nccl``: with two GPUs, two nccl processes give the one-process uniformity loss and
  gradient of the concatenated batch (the gather-with-gradient path); else SKIP.

Without CUDA it prints one SKIP line and exits 0, or 1 with ``--require-gpu``; any FAIL exits 1.
``--device cpu`` runs the same checks on the CPU (slow; a self-test of this script). Checks stop
(SKIP) once ``--budget`` seconds (default 450) have gone.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]  # this checkout; tests/helpers' writers

CHECKS = ("uniform", "crops", "presets", "probes", "nccl")


def say(verdict: str, name: str, detail: str) -> None:
    print(f"{verdict:4} {name}: {detail}", flush=True)


def check_uniform(device: str) -> str:
    """Value and gradient of uniform_loss against the pdist formula in float64."""
    import alignuniform as au

    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(4096, 128, dtype=torch.float64), dim=1)
    ref_x = x.clone().requires_grad_()
    reference = torch.pdist(ref_x).pow(2).mul(-2.0).exp().mean().log()
    reference.backward()
    ours_x = x.float().to(device).requires_grad_()
    ours = au.uniform_loss(ours_x, t=2.0)
    ours.backward()
    value_err = abs(float(ours.detach()) - float(reference.detach()))
    grad_err = float((ours_x.grad.double().cpu() - ref_x.grad).abs().max())
    grad_scale = float(ref_x.grad.abs().max())
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        half = au.uniform_loss(x.to(device, torch.bfloat16), t=2.0, normalize=True)
    half_err = abs(float(half) - float(reference))
    ok = value_err < 1e-4 and grad_err < 1e-4 * grad_scale and half_err < 2e-2
    detail = (
        f"N=4096 d=128 t=2 |value-pdist| {value_err:.1e}, max|grad-pdist| {grad_err:.1e} "
        f"(of {grad_scale:.1e}), bf16 |value-pdist| {half_err:.1e}"
    )
    if not ok:
        raise AssertionError(detail)
    return detail


def check_crops(device: str) -> str:
    """The device's batched crop-resize equals the CPU path (same PIL filter) on the same boxes."""
    from alignuniform.data.augment import (
        batched_resized_crops,
        random_resized_boxes,
        resized_crops,
    )

    torch.manual_seed(0)
    images = torch.rand(64, 3, 375, 500)
    boxes = random_resized_boxes(torch.tensor([[375, 500]]).expand(64, 2), (0.2, 1), (3 / 4, 4 / 3))
    cpu = resized_crops(images, boxes, 224)
    on_device = batched_resized_crops(images.to(device), boxes, 224).cpu()
    err = float((on_device - cpu).abs().max())
    detail = f"64 crops of 375x500 -> 224: max|device - cpu| {err:.1e}"
    if err > 2e-3:  # TF32 matmuls keep ~1e-3 of [0, 1] pixels
        raise AssertionError(detail)
    return detail


def tiny_data(root: Path) -> dict[str, Path]:
    """Format-exact datasets large enough for every preset's batch (768 STL-10, 512 MNIST,
    128 ImageNet-100 images of photo size, 128 NYU-Depth-V2 frames where its writer exists)."""
    from helpers import formats

    formats.write_stl(root / "stl10", n_train=500, n_test=100, n_unlabeled=400)
    formats.write_fashion_mnist(root / "fashion-mnist", n_train=1024, n_test=200)
    formats.write_imagenet_tree(root / "imagenet", per_class=2, size=(375, 500))
    data = {"stl10": root / "stl10", "fashion-mnist": root / "fashion-mnist",
            "imagenet100": root / "imagenet"}  # fmt: skip
    if hasattr(formats, "write_nyu"):
        train, test = tuple(range(1, 137)), tuple(range(137, 145))
        formats.write_nyu(root / "nyu", n=144, size=(96, 128), train=train, test=test)
        data["nyu-depth-v2"] = root / "nyu"
    return data


def check_preset(name: str, data: dict[str, Path], device: str, out: Path) -> str:
    """The preset's dry run on the device: preflight and one measured step."""
    from alignuniform.experiments.reproduce import preset_spec
    from alignuniform.experiments.sweep import plan_sweep

    dataset = preset_spec(name).points[0].values.get("dataset", "fashion-mnist")
    kind = dataset.partition(":")[0]
    if kind not in data:
        return f"SKIP:no tiny {kind} data here"
    overrides = [f"data_dir={data[kind]}", f"device={device}", "num_workers=0", "heldout=64"]
    spec = preset_spec(name, overrides)
    with contextlib.redirect_stdout(io.StringIO()):
        plans = plan_sweep(spec, out / name)
    measured = [plan for _, plan in plans if not plan.measured_on and plan.step_s]
    if not measured:
        raise AssertionError(f"{len(plans)} points, no step measured")
    config = measured[0].preflight.data.config
    return (
        f"{len(plans)} points, {len(measured)} measured; {config.encoder} {config.precision} on "
        f"{measured[0].device}, batch {config.batch_size}: "
        f"{max(p.step_s for p in measured):.3f} s a step, "
        f"peak {max(p.peak_memory for p in measured) / 2**20:.0f} MiB"
    )


def check_probe(protocol: str, data: dict[str, Path], device: str) -> str:
    """One epoch of a paper probe through a small encoder on the device."""
    from alignuniform.evaluate import evaluate_encoder
    from alignuniform.models import create_encoder

    if protocol == "paper":
        encoder, dataset, layers = create_encoder("small_alexnet"), "stl10", ["out", "fc7"]
        data_dir = data["stl10"]
    else:
        encoder, dataset = create_encoder("resnet18", in_channels=3), "imagenet100"
        layers, data_dir = ["penultimate"], data["imagenet100"]
    results = evaluate_encoder(
        encoder,
        dataset,
        data_dir=data_dir,
        layers=layers,
        protocols=["linear"],
        linear_protocol=protocol,
        paper_epochs=1,
        subset=256,
        device=device,
    )
    scores = ", ".join(
        f"{layer} {entry['linear']['accuracy']:.1f}%" for layer, entry in results["layers"].items()
    )
    return f"{results['linear_protocol']} on {dataset} ({scores}, untrained encoder)"


def _nccl_rank(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    import alignuniform as au
    from alignuniform.core.distributed import gather_with_grad

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", rank=rank, world_size=world)
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(512, 64), dim=1)
    share = x.chunk(world)[rank].cuda().requires_grad_()
    loss = au.uniform_loss(gather_with_grad(share), t=2.0)
    loss.backward()
    whole = x.clone().requires_grad_()
    au.uniform_loss(whole, t=2.0).backward()
    # every rank's loss is the global one; the gather's backward sums them (DDP then averages)
    expected = world * whole.grad.chunk(world)[rank]
    grad_err = float((share.grad.cpu() - expected).abs().max())
    torch.save({"loss": float(loss), "grad_err": grad_err}, Path(out, f"rank{rank}.pt"))
    dist.destroy_process_group()


def check_nccl() -> str:
    if torch.cuda.device_count() < 2:
        return f"SKIP:{torch.cuda.device_count()} GPU(s); the 2-rank nccl path needs two"
    import socket

    import torch.multiprocessing as mp

    import alignuniform as au

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.start_processes(_nccl_rank, args=(2, port, out), nprocs=2, start_method="spawn")
        ranks = [torch.load(Path(out, f"rank{r}.pt")) for r in range(2)]
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(512, 64), dim=1)
    reference = float(au.uniform_loss(x, t=2.0))
    value_err = max(abs(r["loss"] - reference) for r in ranks)
    grad_err = max(r["grad_err"] for r in ranks)
    detail = f"2 ranks x 256: |loss - one process| {value_err:.1e}, max|grad diff| {grad_err:.1e}"
    if value_err > 1e-5 or grad_err > 1e-6:
        raise AssertionError(detail)
    return detail


def run(name: str, check, *args) -> bool:
    """One check, one line; returns False on FAIL."""
    start = time.perf_counter()
    try:
        detail = check(*args)
    except Exception as err:  # a check that breaks is a FAIL line, never a stop
        last = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(last.filename).name}:{last.lineno}"
        say(
            "FAIL",
            name,
            f"{type(err).__name__}: {err} ({where}, {time.perf_counter() - start:.1f} s)",
        )
        return False
    if detail.startswith("SKIP:"):
        say("SKIP", name, detail[5:])
    else:
        say("PASS", name, f"{detail} ({time.perf_counter() - start:.1f} s)")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--require-gpu", action="store_true", help="no CUDA is a failure")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"subset of {','.join(CHECKS)}")
    parser.add_argument("--budget", type=float, default=450, help="seconds before the rest SKIP")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        verdict = "FAIL" if args.require_gpu else "SKIP"
        say(verdict, "cuda", f"no CUDA device (torch {torch.__version__}); nothing checked")
        return 1 if args.require_gpu else 0
    from alignuniform.experiments.reproduce import list_presets

    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    say("INFO", "device", f"{where}, torch {torch.__version__}, {torch.cuda.device_count()} GPU(s)")
    start, ok = time.perf_counter(), True
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        todo: list[tuple] = []
        if "uniform" in only:
            todo.append(("uniform", check_uniform, args.device))
        if "crops" in only:
            todo.append(("crops", check_crops, args.device))
        data = tiny_data(root / "data") if only & {"presets", "probes"} else {}
        if "presets" in only:
            todo += [
                (f"preset {n}", check_preset, n, data, args.device, root) for n in list_presets()
            ]
        if "probes" in only:
            todo += [
                (f"probe {p}", check_probe, p, data, args.device)
                for p in ("paper", "paper-imagenet100")
            ]
        if "nccl" in only:
            todo.append(("nccl", check_nccl))
        for name, check, *rest in todo:
            if time.perf_counter() - start > args.budget:
                say("SKIP", name, f"time budget of {args.budget:.0f} s spent")
                continue
            ok &= run(name, check, *rest)
    say(
        "INFO",
        "total",
        f"{time.perf_counter() - start:.0f} s, {'all passed' if ok else 'FAILURES'}",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
