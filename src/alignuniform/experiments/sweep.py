"""Run a sweep: train + evaluate every point into its own run directory, then tabulate.

Each point runs as ``alignuniform train --config <point>.yaml --out <sweep>/<name> --resume``
in a child process (locally, ``workers`` at a time, or as Slurm jobs through submitit), so a
crash in one point never stops the others, a finished point is skipped (or only evaluated
again when its eval_* settings changed), and a point killed mid-way resumes from its
checkpoint. Results land in ``results.csv`` and ``table.md`` as each point ends.

sweep.json records each point's training fingerprint (`runs.config.fingerprint`). When the
spec (or ``--set``) changes what a point trains, its old run is moved, untouched, to
``superseded/<point>-<old fingerprint>/`` and the point is trained afresh: nothing is
overwritten, and no result stands for settings the spec no longer asks for. A sweep owns
its folder (the sweep lock) while it runs; each point's ``train`` owns the point's run.

Messages (the sweep's counts, each point's outcome, a run set aside) go to ``on_event``, one
line of text each: the CLI prints them; by default they go to this module's logger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from alignuniform.core.errors import InvalidValueError
from alignuniform.experiments.results import collect_results, write_results
from alignuniform.experiments.spec import SweepSpec
from alignuniform.runs.atomic import atomic_write_text, check_no_link
from alignuniform.runs.config import TrainConfig, dump_config, fingerprint, load_config
from alignuniform.runs.lock import claim_sweep, hold_lock
from alignuniform.runs.rundir import RunDir, SweepDir, read_json, write_json

PointOutcome = Callable[..., None]  # (point name, exit code, last lines of output[, interrupted])
OnEvent = Callable[[str], None]  # receives each message, one line of text (or several)
_log = logging.getLogger(__name__).info


def point_is_done(run_dir: Path, config: TrainConfig) -> bool:
    """Trained, and evaluated as ``config`` asks (changed eval_* settings: evaluate again)."""
    run = RunDir(run_dir)
    if not run.is_finished() or not run.config.is_file():
        return False
    evaluated = run.eval.is_file() or not config.evaluate
    return evaluated and eval_settings(load_config(run.config)) == eval_settings(config)


def eval_settings(config: TrainConfig) -> dict:
    return config.values("eval")


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


def run_local(
    command: list[str], log: Path, threads: int, children: Children | None = None
) -> tuple[int | None, str]:
    """Run one point's command, its output to ``log``; returns (exit code, last lines), or
    (None, "") when a stop was requested before it started."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    check_no_link(log)
    with open(log, "a") as out:  # a resumed point adds to the log of its earlier attempts
        if children is None:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
        else:
            code = children.run(command, out, env)
            if code is None:
                return None, ""
    lines = log.read_text(errors="replace").strip().splitlines()
    return code, "\n".join(lines[-5:])


class Children:
    """The running points' processes. While active (main thread), SIGINT / SIGTERM are passed
    on to each of them and no new point starts: every point stops cleanly (its `train` saves
    a checkpoint and marks itself interrupted) before the sweep itself stops."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.procs: set[subprocess.Popen] = set()
        self.stopping: int | None = None
        self.lock = threading.Lock()
        self.previous: dict = {}

    def run(self, command: list[str], out, env: dict) -> int | None:
        with self.lock:
            if self.stopping is not None:
                return None
            proc = subprocess.Popen(  # its own session: a Ctrl-C reaches it once, from here
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            self.procs.add(proc)
        try:
            return proc.wait()
        finally:
            with self.lock:
                self.procs.discard(proc)

    def _forward(self, signum, frame) -> None:
        with self.lock:
            self.stopping = signum
            for proc in self.procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)

    def __enter__(self) -> Children:
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._forward) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)


def run_slurm(
    commands: dict[str, list[str]], folder: Path, slurm: dict, record: PointOutcome
) -> None:
    """Submit every command as a Slurm job through submitit; ``record`` each as it ends."""
    try:
        import submitit
    except ImportError as err:
        raise InvalidValueError(
            "--launcher slurm needs submitit: pip install 'alignuniform[slurm]'"
        ) from err
    executor = submitit.AutoExecutor(folder=str(folder))
    executor.update_parameters(**slurm)
    jobs = {
        name: executor.submit(subprocess.run, cmd, check=True) for name, cmd in commands.items()
    }
    for name, job in jobs.items():
        try:
            job.result()
            record(name, 0, "")
        except Exception as err:  # a failed job is recorded, not raised
            record(name, 1, str(err)[-2000:])


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    launcher: str = "local",
    slurm: dict | None = None,
    progress: bool = True,
    on_event: OnEvent = _log,
) -> Path:
    """Run every unfinished point of ``spec`` into ``out``; returns the sweep directory.
    ``on_event`` receives the messages (see the module docstring)."""
    if launcher not in ("local", "slurm"):
        raise InvalidValueError(f"launcher must be 'local' or 'slurm', got {launcher!r}")
    if workers < 1:
        raise InvalidValueError(f"workers must be >= 1, got {workers}")
    root = Path(out)
    with claim_sweep(SweepDir(root)):
        _run_points(spec, SweepDir(root), workers, launcher, slurm, progress, on_event)
    return root


def _run_points(
    spec: SweepSpec,
    sweep: SweepDir,
    workers: int,
    launcher: str,
    slurm: dict | None,
    progress: bool,
    on_event: OnEvent,
) -> None:
    root = sweep.root
    sweep.points.mkdir(parents=True, exist_ok=True)
    status_path = sweep.status
    status = read_json(status_path) if status_path.is_file() else {}
    if not isinstance(status, dict):
        raise InvalidValueError(f"{status_path} does not hold the sweep's status; delete it")
    todo: dict[str, list[str]] = {}
    for point in spec.points:
        config = point.config().resolve()
        run_dir = sweep.run(point.name).root
        known = status.get(point.name)
        trained_as = known.get("fingerprint") if isinstance(known, dict) else None
        if trained_as and trained_as != fingerprint(config) and run_dir.exists():
            aside = set_aside(sweep, point.name, trained_as)
            on_event(f"point {point.name}: training settings changed; old run set aside in {aside}")
        entry = {"tags": point.tags, "fingerprint": fingerprint(config)}
        if point_is_done(run_dir, config):
            status[point.name] = {"status": "finished", **entry}
            continue
        spec_file = sweep.point_config(point.name)
        atomic_write_text(spec_file, dump_config(config))
        todo[point.name] = point_command(spec_file, run_dir)
        status[point.name] = {"status": "pending", **entry}
    write_json(status_path, status)
    on_event(
        f"sweep {spec.name}: {len(spec.points)} points, {len(todo)} to run, "
        f"{len(spec.points) - len(todo)} already finished"
    )

    def record(name: str, code: int, message: str, interrupted: bool = False) -> None:
        """One point's outcome, into sweep.json and results.csv/table.md as soon as it ends;
        a point stopped by a signal to the sweep is "interrupted" (resumed by a rerun)."""
        kept = {k: v for k, v in status[name].items() if k != "error"}
        state = "finished" if code == 0 else "interrupted" if interrupted else "failed"
        status[name] = {
            **kept,
            "status": state,
            **({"error": message} if state == "failed" else {}),
        }
        write_json(status_path, status)
        write_results(root, collect_results(root, spec, status), spec)
        done = sum(status[n]["status"] != "pending" for n in todo)
        outcome = (
            state if state != "failed" else f"failed (exit {code}); see {sweep.point_log(name)}"
        )
        on_event(f"[{done}/{len(todo)}] point {name} {outcome}")

    if launcher == "slurm" and todo:
        run_slurm(todo, sweep.slurm, slurm or {}, record)
    else:
        _run_all_local(todo, root, workers, progress, record)
    write_results(root, collect_results(root, spec, status), spec)


def set_aside(sweep: SweepDir, name: str, trained_as: str) -> Path:
    """Move point ``name``'s run (trained with fingerprint ``trained_as``) out of the way,
    untouched, into ``superseded/``; returns where it went."""
    run = sweep.run(name)
    base = sweep.superseded_run(name, trained_as).root
    target, n = base, 1
    while target.exists():  # set aside before (settings changed there and back)
        n += 1
        target = base.with_name(f"{base.name}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with hold_lock(run.lock, "run"):  # not while a `train` of its own still runs in it
        run.root.rename(target)
    return target


def plan_sweep(spec: SweepSpec, out: str | os.PathLike) -> list[tuple[str, object]]:
    """``--dry-run``: every point's preflight, and a measured step for each distinct step cost
    (points that differ only in loss, seed or evaluation share one), as (point name, plan);
    points that differ only in loss or seed also share the preflight (their own loss and output
    folder are still checked); nothing is written."""
    from alignuniform.training.plan import dry_run, step_cost
    from alignuniform.training.preflight import check_output

    sweep, plans, measured, checked = SweepDir(Path(out)), [], {}, {}
    for point in spec.points:
        config = point.config()
        cost = step_cost(config)
        same = repr((cost, eval_settings(config)))
        run = sweep.run(point.name)
        if same in checked:
            name, first = checked[same]
            check_output(run, True)
            config = config.resolve()  # the point's own loss
            data = first.preflight.data
            own = dataclasses.replace(data.config, loss=config.loss, seed=config.seed)
            preflight = dataclasses.replace(
                first.preflight, data=dataclasses.replace(data, config=own)
            )
            plans.append(
                (point.name, dataclasses.replace(first, preflight=preflight, measured_on=name))
            )
            continue
        plan = dry_run(config, run.root, resume=True, measure=cost not in measured)
        if cost in measured:
            name, first = measured[cost]
            plan = dataclasses.replace(
                plan,
                step_s=first.step_s,
                monitor_image_s=first.monitor_image_s,
                peak_memory=first.peak_memory,
                measured_on=name,
            )
        else:
            measured[cost] = (point.name, plan)
        checked[same] = (point.name, plan)
        plans.append((point.name, plan))
    return plans


def _run_all_local(
    todo: dict[str, list[str]], root: Path, workers: int, progress: bool, record: PointOutcome
) -> None:
    from tqdm.auto import tqdm

    threads = max(1, (os.cpu_count() or 1) // workers)
    with (
        Children() as children,
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(todo), desc="sweep", disable=not progress, dynamic_ncols=True) as bar,
    ):
        futures = {
            pool.submit(run_local, cmd, SweepDir(root).point_log(name), threads, children): name
            for name, cmd in todo.items()
        }
        for future in as_completed(futures):
            code, lines = future.result()
            if code is None:  # never started: stays pending
                continue
            interrupted = children.stopping is not None and code != 0
            record(futures[future], code, lines, interrupted)
            bar.update()
    if children.stopping is not None:
        raise KeyboardInterrupt(f"signal {children.stopping}")
