"""The plan a ``--dry-run`` prints (train, sweep, reproduce)."""

from __future__ import annotations

from pathlib import Path

from alignuniform.core.formatting import duration
from alignuniform.runs.config import per_rank_batch


def format_plan(plan, out) -> str:
    """A few lines: what was checked, the run's size, and what one step costs here."""
    checked = plan.preflight
    config = checked.data.config
    per_rank = per_rank_batch(config.batch_size, plan.world_size)
    lines = [f"dry run: {out} (nothing written)"]
    lines += [f"  checked {line}" for line in checked.checked]
    lines += [
        f"  preflight: {checked.seconds:.2f} s",
        f"  {config.method} | {config.loss if config.method != 'supervised' else 'cross-entropy'}"
        f" | {config.encoder} | {config.precision} on {plan.device} x {plan.world_size}",
        f"  batch {config.batch_size} (global; {per_rank} per process), "
        f"{checked.steps_per_epoch} steps per epoch x {config.epochs} epochs = "
        f"{checked.total_steps} steps",
    ]
    shared = f" (measured on {plan.measured_on})" if plan.measured_on else ""
    if plan.step_s is None:
        lines.append("  nothing to train (0 epochs or no parameters)")
    else:
        lines.append(
            f"  one step{shared}: {plan.step_s:.3f} s = {plan.images_per_s:.1f} images/s -> "
            f"{duration(plan.training_s)} of training"
        )
    if plan.monitor_image_s is not None:
        heldout = len(checked.data.heldout)
        if plan.monitor_s:
            lines.append(
                f"  held-out monitor{shared}: {heldout} images x {config.epochs} epochs at "
                f"{plan.monitor_image_s * 1000:.2f} ms an image -> {duration(plan.monitor_s)}"
            )
        if config.evaluate:
            lines.append(evaluation_estimate(plan)[0])
        lines.append(f"  in all: about {duration(total_seconds(plan))}")
    lines.append(f"  peak memory: {plan.peak_memory / 2**20:.0f} MiB ({memory_kind(plan)})")
    return "\n".join(lines)


def total_seconds(plan) -> float:
    """Training, the held-out monitor and the evaluation, as far as the plan measured them."""
    evaluation = plan.monitor_image_s is not None and plan.preflight.data.config.evaluate
    return (
        (plan.training_s or 0.0)
        + (plan.monitor_s or 0.0)
        + (evaluation_estimate(plan)[1] if evaluation else 0.0)
    )


def evaluation_estimate(plan) -> tuple[str, float]:
    """The evaluation's line and seconds: its encoder passes (`evaluate.cost`), each a third of
    a monitored image (the monitor passes every image three times through the encoder)."""
    from alignuniform.evaluate.cost import encoder_passes

    config = plan.preflight.data.config
    images = plan.preflight.eval_images
    passes = encoder_passes(
        images["train"],
        images["test"],
        layers=len(config.eval_layers),
        protocols=config.eval_protocols,
        linear_protocol=config.eval_linear_protocol,
        folds=config.eval_folds,
        paper_epochs=config.eval_paper_epochs,
    )
    seconds = passes * plan.monitor_image_s / 3
    line = (
        f"  evaluation: {images['train']} train + {images['test']} test images, {passes} "
        f"encoder passes -> {duration(seconds)} (fitting probes on cached features not counted)"
    )
    return line, seconds


def print_sweep_plans(spec, out) -> None:
    """`sweep --dry-run` / `reproduce --dry-run`: every point's plan, then the total."""
    from alignuniform.experiments.sweep import plan_sweep

    plans = plan_sweep(spec, out)
    for name, plan in plans:
        print(format_plan(plan, Path(out) / name), flush=True)
    training = sum(plan.training_s or 0.0 for _, plan in plans)
    everything = sum(total_seconds(plan) for _, plan in plans)
    print(
        f"sweep {spec.name}: {len(plans)} points, {duration(training)} of training in all, "
        f"about {duration(everything)} with the monitor and the evaluations"
    )


def memory_kind(plan) -> str:
    if plan.device.startswith("cuda"):
        return "CUDA max_memory_allocated"
    return "growth of the process's peak RSS"
