"""Training: one loop for every method and objective, on one process or many (torchrun).

    run_dir = train(TrainConfig(dataset="fashion-mnist", epochs=1), "runs/a")

    trainer.py     train(config, run_dir), Trainer: the epoch loop, checkpoints, run.json
    methods/       METHODS, create_method: what one step computes (two views, MoCo, supervised)
    preflight.py   every split and setting checked before the first step
    plan.py        dry_run: the preflight plus measured steps (``--dry-run``), writes nothing
    monitor.py     the per-epoch record: loss terms, held-out L_align / L_uniform, throughput
    sampling.py, runtime.py, stop.py: batches, device and precision, Ctrl-C / SIGTERM

The names below load their module on first use (none is named like a module: ``from
alignuniform.training import preflight`` is the module).
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "METHODS": "alignuniform.training.methods",
        "Trainer": "alignuniform.training.trainer",
        "create_method": "alignuniform.training.methods",
        "dry_run": "alignuniform.training.plan",
        "train": "alignuniform.training.trainer",
    },
)
del lazy_exports
