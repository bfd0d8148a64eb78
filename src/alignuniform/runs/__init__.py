"""What a run is on disk: one config schema, the run and sweep directories, checkpoints, atomic
writes and the lock that makes one process the owner of a directory.

    config.py      TrainConfig (the one schema), load_config / dump_config, parse_overrides
    rundir.py      RunDir, SweepDir: every path inside a run or sweep directory
    checkpoint.py  save_checkpoint, load_checkpoint (safe loads), load_encoder
    atomic.py      atomic_write_text / atomic_write_bytes (temporary file, fsync, rename)
    lock.py        claim_run, claim_sweep: the run lock
    families.py, yamlfile.py: the loss families' table, YAML read strictly

The names below load their module on first use (the CLI's help imports this package).
"""

from alignuniform.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "RunDir": "alignuniform.runs.rundir",
        "SweepDir": "alignuniform.runs.rundir",
        "TrainConfig": "alignuniform.runs.config",
        "atomic_write_bytes": "alignuniform.runs.atomic",
        "atomic_write_text": "alignuniform.runs.atomic",
        "claim_run": "alignuniform.runs.lock",
        "claim_sweep": "alignuniform.runs.lock",
        "dump_config": "alignuniform.runs.config",
        "load_checkpoint": "alignuniform.runs.checkpoint",
        "load_config": "alignuniform.runs.config",
        "load_encoder": "alignuniform.runs.checkpoint",
        "parse_overrides": "alignuniform.runs.config",
        "save_checkpoint": "alignuniform.runs.checkpoint",
    },
)
del lazy_exports
