"""eval.json is strict JSON: `write_results` goes through the one NaN -> null walker."""

from __future__ import annotations

import json
import math

from alignuniform.evaluate import write_results


def test_write_results_writes_nan_and_inf_as_null_and_keeps_finite_values(tmp_path):
    results = {
        "layers": {"out": {"alignment": math.nan, "uniformity": -3.25, "dim": 4}},
        "time_s": math.inf,
        "images": {"train": 8, "test": 4},
    }
    path = write_results(results, tmp_path)
    text = path.read_text()
    assert path == tmp_path / "eval.json"
    assert "NaN" not in text and "Infinity" not in text
    parsed = json.loads(text)
    assert parsed["layers"]["out"] == {"alignment": None, "uniformity": -3.25, "dim": 4}
    assert parsed["time_s"] is None
    assert parsed["images"] == {"train": 8, "test": 4}


def test_write_results_text_is_indented_json_with_a_final_newline(tmp_path):
    results = {"dataset": "x", "layers": {"out": {"knn": {"accuracy": 12.5}}}}
    text = write_results(results, tmp_path).read_text()
    assert text == json.dumps(results, indent=2) + "\n"
