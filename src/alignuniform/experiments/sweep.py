"""Run a sweep: train + evaluate every point into its own run directory, then tabulate.

Each point runs as ``alignuniform train --config <point>.yaml --out <sweep>/<name> --resume``
in a child process (locally, ``workers`` at a time, or as Slurm jobs through submitit), so a
crash in one point never stops the others, a finished point is skipped, and a point killed
mid-way resumes from its checkpoint. Results land in ``results.csv`` and ``table.md``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from alignuniform.checkpoint import atomic_write_text
from alignuniform.config import dump_config
from alignuniform.experiments.results import collect_results, write_results
from alignuniform.experiments.spec import SweepSpec
from alignuniform.rundir import RunDir, read_json, write_json

STATUS_FILE = "sweep.json"


def point_is_done(run_dir: Path, evaluate: bool) -> bool:
    run = RunDir(run_dir)
    return run.is_finished() and (run.eval.is_file() or not evaluate)


def point_command(spec_file: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "alignuniform",
        "train",
        "--config",
        str(spec_file),
        "--out",
        str(run_dir),
        "--resume",
        "--no-progress",
    ]


def run_local(command: list[str], log: Path, threads: int) -> tuple[int, str]:
    """Run one point's command, its output to ``log``; returns (exit code, last lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with open(log, "w") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    lines = log.read_text(errors="replace").strip().splitlines()
    return code, "\n".join(lines[-5:])


def run_slurm(commands: dict[str, list[str]], folder: Path, slurm: dict) -> dict[str, tuple]:
    """Submit every command as a Slurm job through submitit; wait; (exit code, message) each."""
    try:
        import submitit
    except ImportError as err:
        raise ValueError(
            "--launcher slurm needs submitit: pip install 'alignuniform[slurm]'"
        ) from err
    executor = submitit.AutoExecutor(folder=str(folder))
    executor.update_parameters(**slurm)
    jobs = {
        name: executor.submit(subprocess.run, cmd, check=True) for name, cmd in commands.items()
    }
    outcome = {}
    for name, job in jobs.items():
        try:
            job.result()
            outcome[name] = (0, "")
        except Exception as err:  # a failed job is recorded, not raised
            outcome[name] = (1, str(err)[-2000:])
    return outcome


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    launcher: str = "local",
    slurm: dict | None = None,
    progress: bool = True,
) -> Path:
    """Run every unfinished point of ``spec`` into ``out``; returns the sweep directory."""
    if launcher not in ("local", "slurm"):
        raise ValueError(f"launcher must be 'local' or 'slurm', got {launcher!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    root = Path(out)
    (root / "points").mkdir(parents=True, exist_ok=True)
    status_path = root / STATUS_FILE
    status = read_json(status_path) if status_path.is_file() else {}
    todo: dict[str, list[str]] = {}
    for point in spec.points:
        config = point.config().resolve()
        run_dir = root / point.name
        if point_is_done(run_dir, config.evaluate):
            status[point.name] = {"status": "finished", "tags": point.tags}
            continue
        spec_file = root / "points" / f"{point.name}.yaml"
        atomic_write_text(spec_file, dump_config(config))
        todo[point.name] = point_command(spec_file, run_dir)
        status[point.name] = {"status": "pending", "tags": point.tags}
    write_json(status_path, status)
    print(
        f"sweep {spec.name}: {len(spec.points)} points, {len(todo)} to run, "
        f"{len(spec.points) - len(todo)} already finished",
        flush=True,
    )
    if launcher == "slurm" and todo:
        outcomes = run_slurm(todo, root / "slurm", slurm or {})
    else:
        outcomes = _run_all_local(todo, root, workers, progress)
    for name, (code, message) in outcomes.items():
        status[name] = {
            **status[name],
            "status": "finished" if code == 0 else "failed",
            **({"error": message} if code else {}),
        }
        if code:
            print(
                f"point {name} failed (exit {code}); see {root / 'points' / (name + '.log')}",
                flush=True,
            )
    write_json(status_path, status)
    write_results(root, collect_results(root, spec, status), spec)
    return root


def _run_all_local(
    todo: dict[str, list[str]], root: Path, workers: int, progress: bool
) -> dict[str, tuple[int, str]]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    outcomes: dict[str, tuple[int, str]] = {}
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(todo), desc="sweep", disable=not progress, dynamic_ncols=True) as bar,
    ):
        futures = {
            name: pool.submit(run_local, cmd, root / "points" / f"{name}.log", threads)
            for name, cmd in todo.items()
        }
        for name, future in futures.items():
            outcomes[name] = future.result()
            bar.update()
    return outcomes
