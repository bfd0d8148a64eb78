"""The plan a ``--dry-run`` prints (train, sweep, reproduce)."""

from __future__ import annotations

from pathlib import Path

from alignuniform.core.formatting import duration


def format_plan(plan, out) -> str:
    """A few lines: what was checked, the run's size, and what one step costs here."""
    checked = plan.preflight
    config = checked.data.config
    per_rank = config.batch_size // plan.world_size
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
    if plan.step_s is None:
        lines.append("  nothing to train (0 epochs or no parameters)")
    else:
        shared = f" (measured on {plan.measured_on})" if plan.measured_on else ""
        lines.append(
            f"  one step{shared}: {plan.step_s:.3f} s = {plan.images_per_s:.1f} images/s -> "
            f"{duration(plan.training_s)} of training (monitor and evaluation extra)"
        )
    lines.append(f"  peak memory: {plan.peak_memory / 2**20:.0f} MiB ({memory_kind(plan)})")
    return "\n".join(lines)


def print_sweep_plans(spec, out) -> None:
    """`sweep --dry-run` / `reproduce --dry-run`: every point's plan, then the total."""
    from alignuniform.experiments.sweep import plan_sweep

    plans = plan_sweep(spec, out)
    for name, plan in plans:
        print(format_plan(plan, Path(out) / name), flush=True)
    times = [plan.training_s for _, plan in plans if plan.training_s]
    print(f"sweep {spec.name}: {len(plans)} points, {duration(sum(times))} of training in all")


def memory_kind(plan) -> str:
    if plan.device.startswith("cuda"):
        return "CUDA max_memory_allocated"
    return "growth of the process's peak RSS"
