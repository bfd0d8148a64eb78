"""What happens after training: evaluation, the report, and the summary a person reads."""

from __future__ import annotations

from pathlib import Path

from alignuniform.runs.config import load_config
from alignuniform.runs.rundir import RunDir, read_jsonl


def finish_run(run_dir: str | Path, *, evaluate: bool = True) -> dict:
    """Evaluate the run (unless told not to), write its report, print a summary; returns eval."""
    run = RunDir(Path(run_dir))
    config = load_config(run.config)
    results: dict = {}
    if evaluate:
        from alignuniform.evaluate import evaluate_run, format_table
        from alignuniform.training.runtime import resolve_device

        try:
            results = evaluate_run(
                run.root, config.eval_options(), device=str(resolve_device(config.device))
            )
        except BaseException as err:  # a failed or interrupted evaluation never reads finished
            run.mark("failed", error=f"evaluation: {err}")
            raise
        run.mark("finished")
        print(format_table(results))
    from alignuniform.report.build import write_report

    html, _ = write_report(run.root)
    print(summary_text(run), flush=True)
    print(f"report: {html}")
    return results


def summary_text(run: RunDir) -> str:
    """A few lines: what was trained, where it ended, where everything is."""
    config = load_config(run.config)
    records = read_jsonl(run.metrics)
    status = run.read_status()
    objective = "cross-entropy" if config.method == "supervised" else config.loss
    lines = [
        f"run: {run.root}",
        f"  {config.method} | {objective if config.epochs else 'untrained'} | "
        f"{config.dataset} | {config.encoder} (out_dim {config.out_dim}) | "
        f"{len(records)}/{config.epochs} epochs | {status.get('wall_time_s', 0):.0f} s training",
    ]
    if records:
        last = records[-1]
        lines.append(
            f"  final: loss {last['loss']:.4f}, L_align {last['align']:.4f}, "
            f"L_uniform {last['uniform']:.4f}, {last['samples_per_s']:.0f} img/s"
        )
    return "\n".join(lines)
